"""``keel data add|status|diff|log|checkout|push|pull|show|profile|list``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keel.cli.render import size, user_text, when

app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                  help="Version datasets, compare and move them.")
console = Console()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return "-" if value is None else str(value)


@app.command()
def add(path: Path = typer.Argument(..., help="file or folder to snapshot"),
        name: str = typer.Option(..., "--name", "-n", help="dataset name"),
        message: str = typer.Option("", "--message", "-m", help="what changed"),
        check: bool = typer.Option(False, "--check", help="validate the checks declared in "
                                                          "keel.toml before creating the version"),
        allow_failing: bool = typer.Option(False, "--allow-failing",
                                           help="create the version even if checks fail"),
        follow_symlinks: bool = typer.Option(False, "--follow-symlinks",
                                             help="also version the files that symlinks in the "
                                                  "folder point to outside it (refused "
                                                  "otherwise)")
        ) -> None:
    """Snapshot PATH as the next version of a dataset (nothing new if unchanged)."""
    import keel.data
    from keel.cli.progress import RichProgress
    from keel.errors import ChecksFailed

    try:
        result = keel.data.add(path, name, message, check=check, allow_failing=allow_failing,
                               progress=RichProgress(), follow_symlinks=follow_symlinks)
    except ChecksFailed as exc:
        _print_reports(exc.reports)
        raise
    if result.checks:
        _print_reports(result.checks)
    v = result.version
    if result.created:
        console.print(f"Created [bold]{v.ref}[/]: {v.files:,} files, {size(v.bytes)}"
                      + (f" — {v.message}" if v.message else ""))
    else:
        console.print(f"No changes: {path} is identical to [bold]{v.ref}[/]; "
                      "no new version created.")


def _print_reports(reports: list[Any]) -> None:
    for report in reports:
        table = Table("check", "result", "failing rows", "examples",
                      title=f"quality checks: {report.source} ({report.rows:,} rows)")
        for r in report.results:
            result = Text("pass", style="green") if r.passed else Text("FAIL", style="bold red")
            examples = "; ".join(json.dumps(e, default=str) for e in r.examples)
            table.add_row(r.check, result, f"{r.failing:,}", examples or r.message)
        console.print(table)


@app.command()
def status(name: str = typer.Argument(..., help="dataset name (compares with its latest "
                                                "version) or NAME@N"),
           path: Path = typer.Option(None, help="folder to compare (default: where the data "
                                                "was added from)")) -> None:
    """Files added, removed or modified since the latest version."""
    import keel.data

    changes = keel.data.status(name, path)
    if not changes.changed:
        console.print(f"{name}: up to date, nothing changed.")
        return
    for label, style, items in (("added", "green", changes.added),
                                ("removed", "red", changes.removed),
                                ("modified", "yellow", changes.modified)):
        for item in items:
            console.print(Text(f"  {label:<9}{item}", style=style))
    console.print(f"{len(changes.added)} added, {len(changes.removed)} removed, "
                  f"{len(changes.modified)} modified")


@app.command()
def diff(old: str = typer.Argument(..., help="NAME@N"),
         new: str = typer.Argument(..., help="NAME@M"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """File changes and, for CSV/Parquet, row count, schema and statistic changes."""
    import keel.data

    result = keel.data.diff(old, new)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    files = result.files
    console.print(f"[bold]{result.old.ref} -> {result.new.ref}[/]: {len(files.added)} added, "
                  f"{len(files.removed)} removed, {len(files.modified)} modified")
    for label, items in (("+", files.added), ("-", files.removed), ("~", files.modified)):
        for item in items[:50]:
            console.print(f"  {label} {item}")
    for path, change in result.tables.items():
        _print_table_change(path, change)


def _print_table_change(path: str, change: Any) -> None:
    data = change.to_dict()
    console.print(f"\n[bold]{path}[/]: rows {data.get('rows_old')} -> {data.get('rows_new')}")
    for key in ("added_columns", "removed_columns"):
        if data.get(key):
            console.print(f"  {key.replace('_', ' ')}: {', '.join(data[key])}")
    for col, (old_t, new_t) in (data.get("type_changes") or {}).items():
        console.print(f"  type of {col}: {old_t} -> {new_t}")
    table = Table("column", "mean", "std", "nulls", "shift", "moved")
    # Moved columns first; columns whose statistics did not change at all are
    # only counted, so a wide table's diff shows what matters.
    same = [c for c in change.columns if not c.moved and c.mean_old == c.mean_new
            and c.std_old == c.std_new and c.null_fraction_old == c.null_fraction_new]
    shown = sorted((c for c in change.columns if c not in same), key=lambda c: not c.moved)
    for col in shown:
        c = col.to_dict()
        table.add_row(
            c["name"], f"{_fmt(c.get('mean_old'))} -> {_fmt(c.get('mean_new'))}",
            f"{_fmt(c.get('std_old'))} -> {_fmt(c.get('std_new'))}",
            f"{_fmt(c.get('null_fraction_old'))} -> {_fmt(c.get('null_fraction_new'))}",
            f"{c.get('score_name', '')} {_fmt(c.get('score'))}",
            Text("yes", style="bold red") if c.get("moved") else Text("no", style="dim"))
    console.print(table)
    if same:
        console.print(f"  {len(same)} other column(s) unchanged")


@app.command()
def log(name: str) -> None:
    """Every version of a dataset."""
    import keel.data

    table = Table("version", "created", "user", "files", "size", "checks", "message",
                  title=f"dataset {name}")
    for v in keel.data.log(name):
        checks = {None: "-", True: "[green]pass", False: "[red]fail"}[v.checks_passed]
        table.add_row(v.ref, when(v.created_at), user_text(v.user), f"{v.files:,}",
                      size(v.bytes), checks, user_text(v.message))
    console.print(table)


@app.command("list")
def list_() -> None:
    """Every dataset with its latest version."""
    from keel.cli.workspace import workspace

    table = Table("dataset", "latest", "created", "files", "size")
    for v in workspace().store.list_datasets():
        table.add_row(v.dataset, v.ref, when(v.created_at), f"{v.files:,}", size(v.bytes))
    console.print(table)


@app.command()
def show(ref: str = typer.Argument(..., help="NAME@N"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """A version's details and every run that read or wrote it."""
    import keel.data
    from keel.cli.workspace import workspace

    ws = workspace()
    v = keel.data.get(ref)
    links = ws.store.runs_of_dataset_version(v.id)
    if as_json:
        typer.echo(json.dumps(v.to_dict() | {"runs": [{"run_id": r, "role": role}
                                                      for r, role in links]}, indent=2))
        return
    console.print(f"[bold]{v.ref}[/] — {v.files:,} files, {size(v.bytes)}, added "
                  f"{when(v.created_at)} by ", user_text(v.user), " from ", user_text(v.source),
                  sep="")
    if v.message:
        console.print("  ", user_text(v.message), sep="")
    console.print(f"  manifest {v.manifest_digest}")
    table = Table("run", "name", "experiment", "role", "status", title="runs")
    for run_id, role in links:
        run = ws.store.get_run(run_id)
        table.add_row(run.id[:12], user_text(run.name), user_text(run.experiment), role,
                      run.status)
    console.print(table)


@app.command()
def profile(ref: str = typer.Argument(..., help="NAME@N")) -> None:
    """Per-column statistics of every CSV/Parquet file in a version."""
    import keel.data

    found = keel.data.profiles(ref)
    if not found:
        console.print(f"{ref} has no CSV or Parquet files to profile.")
    for path, prof in found.items():
        rows = prof.summary_rows()
        table = Table(*rows[0].keys() if rows else ["column"],
                      title=f"{path}: {prof.rows:,} rows")
        for row in rows:
            table.add_row(*[_fmt(v) for v in row.values()])
        console.print(table)


@app.command()
def checkout(ref: str = typer.Argument(..., help="NAME@N"),
             dest: Path = typer.Argument(None, help="where to write (default: where the "
                                                    "data was added from)"),
             force: bool = typer.Option(False, "--force", help="overwrite local changes")
             ) -> None:
    """Write a version's files back; refuses to overwrite local edits without --force."""
    import keel.data
    from keel.cli.progress import RichProgress

    result = keel.data.checkout(ref, dest, force=force, progress=RichProgress())
    console.print(f"Checked out [bold]{result.version.ref}[/] to {result.dest}: "
                  f"{len(result.written)} written, {len(result.removed)} removed, "
                  f"{result.unchanged} already up to date")


@app.command()
def push(names: list[str] = typer.Argument(None, help="datasets (default: all)"),
         remote: str = typer.Option(None, "--remote", "-r",
                                    help="fsspec URL or folder (default: keel.toml [remote])")
         ) -> None:
    """Send dataset versions to a remote: only blobs it lacks, in parallel."""
    import keel.data
    from keel.cli.progress import RichProgress

    result = keel.data.push(remote, names or None, progress=RichProgress(unit="blobs"))
    console.print(f"Pushed {len(result.versions)} version(s) to {result.remote}: "
                  f"{result.blobs_sent} blobs sent ({size(result.bytes_sent)}), "
                  f"{result.blobs_present} already there")


@app.command()
def pull(names: list[str] = typer.Argument(None, help="datasets (default: all)"),
         remote: str = typer.Option(None, "--remote", "-r",
                                    help="fsspec URL or folder (default: keel.toml [remote])")
         ) -> None:
    """Fetch dataset versions from a remote; every blob is verified on arrival."""
    import keel.data
    from keel.cli.progress import RichProgress

    result = keel.data.pull(remote, names or None, progress=RichProgress(unit="blobs"))
    console.print(f"Pulled {len(result.versions)} new version(s) from {result.remote}: "
                  f"{result.blobs_sent} blobs fetched ({size(result.bytes_sent)}), "
                  f"{result.blobs_present} already here")
