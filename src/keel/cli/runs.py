"""``keel runs list|show|compare|delete|restore``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Column, Table
from rich.text import Text

from keel.cli.render import columns, number, plural, user_text, when
from keel.cli.workspace import store as _store
from keel.cli.workspace import workspace as _workspace
from keel.names import printable

if TYPE_CHECKING:  # `keel --help` imports this module: no entities
    from keel.entities import Run

app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                  help="List, inspect, compare and delete runs.")
console = Console()
STATUS_STYLE = {"FINISHED": "green", "FAILED": "red", "KILLED": "yellow", "RUNNING": "cyan"}



def _status(run: Run) -> Text:
    return Text(run.status, style=STATUS_STYLE.get(run.status, ""))


@app.command("list")
def list_(experiment: list[str] = typer.Option(None, "--experiment", "-e",
                                               help="experiment name (repeatable)"),
          filter_: str = typer.Option("", "--filter", "-f",
                                      help="e.g. \"metrics.acc > 0.9 AND params.model = 'rf'\""),
          order_by: list[str] = typer.Option(None, "--order-by", "-o",
                                             help="e.g. 'metrics.acc DESC' (repeatable)"),
          max_results: int = typer.Option(100, "--max-results", "-n"),
          all_: bool = typer.Option(False, "--all", help="include deleted runs"),
          as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List runs, newest first, filtered and ordered like search_runs."""
    store = _workspace().reader  # no SQLAlchemy unless a filter or an order needs it
    exp_ids = [store.get_experiment(e).id for e in experiment] if experiment else None
    found = store.search_runs(exp_ids, filter_, order_by or [], max_results,
                              include_deleted=all_)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in found], indent=2))
        return
    # A few metrics fit a terminal; `runs show` and --json have them all.
    metric_keys = sorted({k for r in found for k in r.metrics})[:3]
    headers = ["run", "name", "experiment", "status", "started", "duration", *metric_keys]
    rows = [[r.id, printable(r.name), printable(r.experiment), r.status,
             when(r.start_time)[5:16],
             f"{r.duration_s:.1f}s" if r.duration_s is not None else "-",
             *[number(r.metrics[k]) if k in r.metrics else "" for k in metric_keys]]
            for r in found]
    typer.echo(columns(headers, rows, right=frozenset(range(5, len(headers)))))
    typer.echo(plural(len(found), "run") + (f" (the newest {max_results}; -n for more)"
                                             if len(found) == max_results else ""))


@app.command()
def show(run_id: str = typer.Argument(..., help="run id or a unique prefix of it"),
         as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Everything about one run: params, metrics, tags, provenance, artifacts."""
    from keel.entities import DELETED

    store = _store()
    run = store.get_run(store.resolve_run_id(run_id))
    artifacts = store.list_artifacts(run.id)
    children = store.child_runs(run.id)
    datasets = store.datasets_of_run(run.id)
    if as_json:
        data = run.to_dict() | {"artifacts": [a.to_dict() for a in artifacts],
                                "children": children,
                                "datasets": [{"ref": v.ref, "role": role} for v, role in datasets]}
        typer.echo(json.dumps(data, indent=2))
        return
    head = Table.grid(padding=(0, 2))
    rows: list[tuple[str, str | Text]] = [
        ("run", run.id), ("name", user_text(run.name)),
        ("experiment", user_text(run.experiment)),
        ("status", _status(run)), ("user", run.user), ("started", when(run.start_time)),
        ("ended", when(run.end_time)), ("parent", run.parent_id or "-"),
        ("children", ", ".join(children) or "-"),
        ("deleted", "yes" if run.lifecycle == DELETED else "no")]
    for label, cell in rows:
        head.add_row(Text(label, style="bold"), cell)
    parts: list = [head]
    parts.append(_kv_table("params", run.params))
    metrics = Table("metric", "latest", "points", title="metrics", title_justify="left")
    for key, value in sorted(run.metrics.items()):
        metrics.add_row(key, number(value), str(len(store.metric_history(run.id, key))))
    parts.append(metrics)
    user_tags = {k: v for k, v in run.tags.items() if not k.startswith("keel.")}
    origin = {k.removeprefix("keel."): v for k, v in run.tags.items() if k.startswith("keel.")}
    parts.append(_kv_table("tags", user_tags))
    parts.append(_kv_table("provenance", origin))
    files = Table("artifact", "size", "digest", title="artifacts", title_justify="left")
    for a in artifacts:
        files.add_row(a.path, f"{a.size:,} B", a.digest[:16])
    parts.append(files)
    used = Table("dataset", "role", "files", "manifest", title="datasets", title_justify="left")
    for version, role in datasets:
        used.add_row(version.ref, role, f"{version.files:,}", version.manifest_digest[:16])
    parts.append(used)
    if run.error:
        parts.append(Panel(run.error.strip(), title="error", border_style="red"))
    console.print(Panel(Group(*parts), title=Text("run ") + user_text(run.name)))


def _kv_table(title: str, items: dict[str, str]) -> Table:
    table = Table("key", "value", title=title, title_justify="left")
    for key, value in sorted(items.items()):
        table.add_row(key, value)
    return table


@app.command()
def compare(run_ids: list[str] = typer.Argument(..., help="two or more run ids (prefixes ok)"),
            as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Params and metrics side by side; rows whose values differ are highlighted."""
    store = _store()
    found = [store.get_run(store.resolve_run_id(r)) for r in run_ids]
    rows: list[tuple[str, list[str]]] = [("status", [r.status for r in found])]
    for key in sorted({k for r in found for k in r.params}):
        rows.append((f"params.{key}", [r.params.get(key, "") for r in found]))
    for key in sorted({k for r in found for k in r.metrics}):
        rows.append((f"metrics.{key}", [number(r.metrics[key]) if key in r.metrics else ""
                                        for r in found]))
    if as_json:
        typer.echo(json.dumps({"runs": [r.id for r in found],
                               "rows": {name: values for name, values in rows}}, indent=2))
        return
    table = Table("", *[Column(user_text(r.name) + Text("\n" + r.id[:12], style="dim"))
                        for r in found],
                  title="differences highlighted")
    for name, values in rows:
        differs = len(set(values)) > 1
        style = "bold yellow" if differs else "dim"
        table.add_row(Text(name, style=style), *[Text(v, style=style) for v in values])
    console.print(table)


@app.command()
def delete(run_id: str) -> None:
    """Soft-delete a run (hidden from lists and search; `restore` undoes it)."""
    from keel.entities import DELETED

    store = _store()
    run = store.set_run_lifecycle(store.resolve_run_id(run_id), DELETED)
    console.print(f"Deleted run {run.id} (undo: keel runs restore {run.id})")


@app.command()
def restore(run_id: str) -> None:
    """Restore a deleted run."""
    store = _store()
    run = store.set_run_lifecycle(store.resolve_run_id(run_id), "active")
    console.print(f"Restored run {run.id}")
