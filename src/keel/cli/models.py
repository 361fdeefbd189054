"""``keel model register|list|show|history|promote|evaluate|importance|delete|restore|tag|
describe``."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from keel.cli import gate_options as g
from keel.cli.render import markup_text, when
from keel.cli.workspace import workspace as _ws

app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                  help="Register model versions, move aliases through gates, evaluate them.")
console = Console()
err_console = Console(stderr=True)



def _pairs(items: list[str] | None) -> dict[str, str]:
    from keel.errors import InvalidInput

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"bad tag {item!r}", hint="write KEY=VALUE")
        out[key] = value
    return out


@app.command()
def register(source: str = typer.Argument(..., help="runs:/<run id>/model or a package folder"),
             name: str = typer.Option(..., "--name", "-n", help="model name, e.g. churn"),
             description: str = typer.Option("", "--description", "-d"),
             tag: list[str] = typer.Option(None, "--tag", help="KEY=VALUE (repeatable)")) -> None:
    """Register a logged model as the next (immutable) version of NAME."""
    from keel.models.registry import register as do_register

    version = do_register(source, name, description, _pairs(tag), ws=_ws())
    console.print(f"Registered [bold]{version.ref}[/] from {markup_text(version.source)} "
                  f"(package {version.package_digest[:12]})")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every registered model with its latest version and aliases."""
    models = _ws().store.list_registered_models()
    if as_json:
        typer.echo(json.dumps([m.to_dict() for m in models], indent=2))
        return
    table = Table("model", "latest", "aliases", "description", title=f"{len(models)} models")
    for m in models:
        aliases = ", ".join(f"{a} -> {v}" for a, v in m.aliases.items()) or "-"
        table.add_row(m.name, str(m.latest_version or "-"), aliases, m.description)
    console.print(table)


@app.command()
def show(ref: str = typer.Argument(..., help="churn, churn/3 or churn@champion"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """A model's versions, or one version with its package manifest."""
    from keel.models.registry import get_version
    from keel.models.uri import parse_model_ref
    from keel.packaging.manifest import PackageManifest
    from keel.packaging.signature import Signature

    ws = _ws()
    parsed = parse_model_ref(ref, allow_path=False)
    if parsed.version is None and parsed.alias is None:
        model = ws.store.get_registered_model(parsed.name)
        versions = ws.store.list_model_versions(parsed.name, include_deleted=True)
        if as_json:
            typer.echo(json.dumps(model.to_dict() | {"versions": [v.to_dict() for v in versions]},
                                  indent=2))
            return
        table = Table("version", "aliases", "run", "registered", "by", "state", "description",
                      title=f"model {model.name}")
        for v in versions:
            table.add_row(str(v.version), ", ".join(v.aliases) or "-",
                          (v.run_id or "-")[:12], when(v.created_at), v.user, v.lifecycle,
                          v.description)
        console.print(table)
        return
    version = get_version(parsed, ws, allow_deleted=True)
    manifest = PackageManifest.from_yaml(ws.blobs.get_bytes(version.package_digest))
    if as_json:
        typer.echo(json.dumps(version.to_dict() | {"manifest": json.loads(json.dumps(
            manifest.__dict__, default=lambda o: o.__dict__))}, indent=2, default=str))
        return
    grid = Table.grid(padding=(0, 2))
    for label, value in (("version", version.ref), ("aliases", ", ".join(version.aliases) or "-"),
                         ("state", version.lifecycle), ("source", version.source),
                         ("registered", f"{when(version.created_at)} by {version.user}"),
                         ("package", version.package_digest), ("flavor", manifest.flavor),
                         ("task", manifest.task or "-"),
                         ("inputs", Signature.from_dict(manifest.signature).describe()),
                         ("requirements", ", ".join(f"{k} {v}" for k, v in
                                                    manifest.requirements.items())),
                         ("metrics", ", ".join(f"{k}={v:.4g}" for k, v in
                                               sorted(manifest.metrics.items())) or "-"),
                         ("tags", ", ".join(f"{k}={v}" for k, v in version.tags.items()) or "-"),
                         ("description", version.description or "-")):
        grid.add_row(f"[bold]{label}", markup_text(str(value)))
    console.print(grid)


@app.command()
def history(name: str = typer.Argument(..., help="model name"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Every registration and alias move: who, when, from -> to, reason, gate results."""
    events = _ws().store.model_history(name)
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in events], indent=2, default=str))
        return
    table = Table("when", "who", "action", "alias", "from -> to", "reason", "gates",
                  title=f"history of {name}")
    table.columns[-1].min_width = 24
    style = {"refuse": "red", "force": "yellow", "promote": "green", "delete": "red"}
    for e in events:
        move = f"{e.from_version or '-'} -> {e.to_version or '-'}" if e.alias else \
            str(e.version or "-")
        gates = _gate_summary(e.evidence.get("results", []))
        table.add_row(when(e.time), e.user,
                      f"[{style.get(e.action, 'white')}]{e.action}", e.alias or "-", move,
                      markup_text(e.reason or "-"), markup_text(gates))
    console.print(table)


def _gate_summary(results: list[dict[str, object]]) -> str:
    """``all 3 passed`` or ``FAIL: <failed gates>``, short enough for a table cell."""
    if not results:
        return "-"
    failed = [str(r["gate"]) for r in results if not r["passed"]]
    if not failed:
        return f"all {len(results)} passed"
    return f"FAIL ({len(failed)} of {len(results)}): " + "; ".join(failed)


@app.command()
def promote(ref: str = typer.Argument(..., help="the version to promote, e.g. churn/4"),
            alias: str = typer.Option(..., "--alias", "-a", help="e.g. champion"),
            reason: str = typer.Option("", "--reason", help="why (stored in the history)"),
            require: list[str] = g.REQUIRE, holdout: str = g.HOLDOUT,
            max_regression: float = g.MAX_REGRESSION, metric: str = g.METRIC,
            label: str = g.LABEL,
            force: bool = typer.Option(False, "--force",
                                       help="move the alias even if gates fail (needs "
                                            "--reason; audited)")) -> None:
    """Point ALIAS at a version once its gates pass (keel.toml and options)."""
    from keel.errors import GateFailed
    from keel.models.promote import promote as do_promote
    from keel.models.registry import get_version

    ws = _ws()
    version = get_version(ref, ws)
    model_alias = alias.partition("@")[2] or alias
    rules = g.policy(version.name, model_alias, require, holdout, max_regression, metric, label)
    try:
        done = do_promote(ref, alias, reason, rules, force, ws=ws)
    except GateFailed as exc:
        g.print_report(exc.report, err_console)
        err_console.print("[red]refused:[/] the refusal is recorded in "
                          f"`keel model history {version.name}`")
        raise
    g.print_report(done.report, console)
    forced = " [yellow](forced past failing gates)[/]" if done.forced else ""
    console.print(f"[bold]{version.name}@{done.alias}[/] -> version {done.version.version} "
                  f"(was {done.previous or 'unset'}){forced}")


@app.command()
def evaluate(ref: str = typer.Argument(..., help="churn/4, churn@champion or runs:/<id>/model"),
             data: str = typer.Option(..., "--data", help="holdout@3, holdout@3:FILE or a file"),
             label: str = typer.Option(None, "--label", help="label column"),
             slice_by: list[str] = typer.Option(None, "--slice-by",
                                                help="report metrics per value of this column"),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Metrics, per-slice metrics and plots, stored as an evaluation run."""
    from keel.models.evaluate import evaluate as do_evaluate

    found = do_evaluate(ref, data, label=label, slice_by=slice_by or [], ws=_ws())
    if as_json:
        typer.echo(json.dumps(found.to_dict(), indent=2))
        return
    table = Table("metric", "value", title=f"{found.model} on {found.data} ({found.rows:,} rows, "
                                           f"label {found.label!r})")
    for key, value in found.metrics.items():
        table.add_row(key, f"{value:.4f}")
    console.print(table)
    for column, groups in found.slices.items():
        keys = [k for k in next(iter(groups.values())) if k != "rows"] if groups else []
        sliced = Table(column, "rows", *keys, title=f"by {column}")
        for group, scores in groups.items():
            sliced.add_row(group, f"{int(scores['rows']):,}",
                           *[f"{scores[k]:.4f}" if k in scores else "-" for k in keys])
        console.print(sliced)
    console.print(f"stored as run [bold]{found.run_id}[/] with plots: {', '.join(found.plots)}")


@app.command()
def delete(ref: str = typer.Argument(..., help="churn/3"),
           reason: str = typer.Option("", "--reason"),
           force: bool = typer.Option(False, "--force",
                                      help="delete even if an alias names it")) -> None:
    """Delete a version (its package stays, for lineage; `restore` undoes it)."""
    from keel.models.registry import delete_version

    version = delete_version(ref, reason, force, ws=_ws())
    console.print(f"Deleted {version.ref}.")


@app.command()
def restore(ref: str = typer.Argument(..., help="churn/3")) -> None:
    """Restore a deleted version."""
    from keel.models.registry import restore_version

    console.print(f"Restored {restore_version(ref, ws=_ws()).ref}.")


@app.command()
def tag(ref: str = typer.Argument(..., help="churn or churn/3"),
        pairs: list[str] = typer.Argument(..., help="KEY=VALUE ...")) -> None:
    """Set tags on a model or one of its versions."""
    from keel.models.registry import get_version
    from keel.models.uri import parse_model_ref
    from keel.tracking.keys import check_key
    from keel.tracking.provenance import current_user

    ws = _ws()
    parsed = parse_model_ref(ref, allow_path=False)
    number = get_version(parsed, ws).version if parsed.version or parsed.alias else 0
    if not number:
        ws.store.get_registered_model(parsed.name)
    for key, value in _pairs(pairs).items():
        ws.store.set_model_tag(parsed.name, number, check_key(key, "tag key"), value,
                               current_user())
    console.print(f"Tagged {ref}.")


@app.command()
def describe(ref: str = typer.Argument(..., help="churn or churn/3"),
             text: str = typer.Argument(..., help="the description")) -> None:
    """Set the description of a model or one of its versions."""
    from keel.models.registry import get_version
    from keel.models.uri import parse_model_ref
    from keel.tracking.provenance import current_user

    ws = _ws()
    parsed = parse_model_ref(ref, allow_path=False)
    number = get_version(parsed, ws).version if parsed.version or parsed.alias else 0
    if not number:
        ws.store.get_registered_model(parsed.name)
    ws.store.set_model_description(parsed.name, number, text, current_user())
    console.print(f"Described {ref}.")


@app.command()
def importance(ref: str = typer.Argument(..., help="churn/4 or churn@champion"),
               data: str = typer.Option(..., "--data", help="holdout@3, holdout@3:FILE or a file"),
               label: str = typer.Option(..., "--label", help="label column"),
               repeats: int = typer.Option(5, "--repeats", min=1,
                                           help="shuffles of each feature"),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Permutation feature importance: how much worse the version scores with each
    feature shuffled (kept on the version, so asking again is free)."""
    from keel.monitoring.explain import importance_report

    report = importance_report(ref, data, label, repeats=repeats, ws=_ws())
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    table = Table("rank", "feature", f"{report.metric} drop",
                  title=markup_text(f"{report.model} on {report.data}"))
    for rank, (feature, value) in enumerate(report.importance.items(), 1):
        table.add_row(str(rank), markup_text(feature), f"{value:.4f}")
    console.print(table)
    cached = f" (from the cache on {report.model})" if report.cached else ""
    console.print(f"{report.rows:,} rows, label {markup_text(repr(report.label))}, "
                  f"{report.repeats} shuffles per feature: the drop in {report.metric} when "
                  f"the feature is shuffled{cached}")
