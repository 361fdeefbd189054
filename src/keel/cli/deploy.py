"""``keel deploy create|canary|ab|shadow|promote|rollback|status|history|log|list``."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from keel.cli.render import columns, markup_text, when
from keel.cli.workspace import workspace as _ws
from keel.names import printable

app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                  help="Roll model versions out: canary, A/B, shadow, promote, rollback.")
console = Console()


def _done(deployment: Any, what: str) -> None:
    from keel.serving.spec import DeploymentSpec

    spec = DeploymentSpec.from_dict(deployment.spec)
    console.print(f"{what} (revision {deployment.revision}): {describe_routes(spec)}")


def describe_routes(spec: Any) -> str:
    parts = [f"{r.version}{f' ({r.label})' if r.label else ''} {r.weight:g}% {r.role}"
             for r in spec.routes]
    parts += [f"{r.version}{f' ({r.label})' if r.label else ''} shadow" for r in spec.shadows]
    return markup_text(", ".join(parts))


@app.command()
def create(name: str = typer.Argument(..., help="deployment name, e.g. prod"),
           model: str = typer.Option(..., "--model", "-m", help="churn@champion or churn/3"),
           sticky_header: str = typer.Option(None, "--sticky-header",
                                             help="header whose value pins a caller to a "
                                                  "version (X-User-Id)"),
           sample: float = typer.Option(1.0, "--sample",
                                        help="share of predictions logged (0..1)"),
           replace: bool = typer.Option(False, "--replace",
                                        help="reset the deployment to MODEL if it exists"),
           reason: str = typer.Option("", "--reason")) -> None:
    """Create a deployment sending all traffic to MODEL."""
    from keel.serving.rollout import create as do

    _done(do(name, model, _ws(), sticky_header=sticky_header, sample=sample, reason=reason,
             replace=replace), f"{'Set' if replace else 'Created'} deployment {name}")
    console.print(f"Serve it with: keel serve --deployment {name}")


@app.command()
def canary(name: str = typer.Argument(...),
           model: str = typer.Option(..., "--model", "-m", help="churn@challenger or churn/4"),
           percent: float = typer.Option(10.0, "--percent", help="share of traffic (0-100)"),
           max_error_rate: float = typer.Option(0.01, "--max-error-rate",
                                                help="roll back when the canary's error "
                                                     "rate exceeds stable's by this"),
           max_p99_ratio: float = typer.Option(2.0, "--max-p99-ratio",
                                               help="roll back when canary p99 > ratio x "
                                                    "stable p99"),
           min_requests: int = typer.Option(100, "--min-requests",
                                            help="judge after this many canary requests"),
           max_prediction_shift: float = typer.Option(None, "--max-prediction-shift",
                                                      help="roll back when the prediction "
                                                           "distributions differ by more "
                                                           "(total variation, 0-1)"),
           reason: str = typer.Option("", "--reason")) -> None:
    """Send PERCENT of traffic to MODEL, watched and rolled back automatically on breach."""
    from keel.serving.rollout import canary as do
    from keel.serving.spec import CanaryLimits

    limits = CanaryLimits(max_error_rate, max_p99_ratio, min_requests, max_prediction_shift)
    limits.check()
    _done(do(name, model, percent, _ws(), limits=limits, reason=reason),
          f"Canary started on {name}")


@app.command()
def ab(name: str = typer.Argument(...),
       split: str = typer.Option(..., "--split", help="champion=50,challenger=50"),
       sticky_header: str = typer.Option(None, "--sticky-header",
                                         help="requests with the same value of this header "
                                              "always reach the same version"),
       reason: str = typer.Option("", "--reason")) -> None:
    """Split traffic between versions (stable hash-based assignment with --sticky-header)."""
    from keel.serving.rollout import ab as do

    _done(do(name, split, _ws(), sticky_header=sticky_header, reason=reason),
          f"A/B split set on {name}")


@app.command()
def shadow(name: str = typer.Argument(...),
           model: str = typer.Option(None, "--model", "-m", help="churn@challenger"),
           off: bool = typer.Option(False, "--off", help="stop mirroring (to MODEL, or all)"),
           reason: str = typer.Option("", "--reason")) -> None:
    """Mirror every request to MODEL: answers logged (role shadow), never returned."""
    from keel.serving.rollout import shadow as do

    _done(do(name, model, _ws(), off=off, reason=reason),
          f"Shadow {'stopped' if off else 'started'} on {name}")


@app.command()
def promote(name: str = typer.Argument(...),
            step: float = typer.Option(None, "--step", help="move the canary forward by this "
                                                            "many percentage points"),
            arm: str = typer.Option(None, "--arm", help="A/B: the winning arm"),
            reason: str = typer.Option("", "--reason")) -> None:
    """Move the canary forward (--step) or all the way; or pick an A/B winner (--arm)."""
    from keel.serving.rollout import promote as do

    _done(do(name, step, _ws(), arm=arm, reason=reason), f"Promoted on {name}")


@app.command()
def rollback(name: str = typer.Argument(...),
             reason: str = typer.Option("", "--reason")) -> None:
    """All traffic back to the stable version (or the one before the last promotion)."""
    from keel.serving.rollout import rollback as do

    _done(do(name, _ws(), reason=reason or "rolled back by hand"), f"Rolled back {name}")


@app.command()
def status(name: str = typer.Argument(...),
           as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Versions, split, shadows, and live requests/errors/latency per version."""
    from keel.serving.rollout import get, live_figures
    from keel.serving.stats import summarise

    ws = _ws()
    deployment, spec = get(name, ws)
    figures = [summarise(s) for s in live_figures(name, ws)]
    if as_json:
        typer.echo(json.dumps({"deployment": deployment.to_dict(), "live": figures},
                              indent=2, default=str))
        return
    console.print(f"[bold]deployment {markup_text(name)}[/] revision {deployment.revision}, "
                  f"changed {when(deployment.updated_at)} UTC; model {markup_text(spec.model)}"
                  + (f"; sticky header {markup_text(spec.sticky_header)}"
                     if spec.sticky_header else "")
                  + f"; log sample {spec.sample:g}")
    by_key = {(f["version"], f["role"]): f for f in figures}
    rows = []
    for route in (*spec.routes, *spec.shadows):
        f = by_key.get((route.version, route.role), {})
        shown = f"{route.version} ({route.label})" if route.label else route.version
        rows.append([printable(shown), route.role,
                     "mirror" if route.role == "shadow" else f"{route.weight:g}%",
                     f"{f.get('requests', 0):,}", f"{f.get('errors', 0):,}",
                     f"{f['error_rate'] * 100:.2f}" if f else "-", _ms(f.get("p50_ms")),
                     _ms(f.get("p99_ms"))])
    typer.echo(columns(["version", "role", "traffic", "requests", "errors", "err %", "p50 ms",
                        "p99 ms"], rows, right=frozenset(range(2, 8))))
    since = spec.canary_since or deployment.updated_at
    console.print(f"live figures since {when(since)} UTC, summed over every worker"
                  + (f"; canary limits: {spec.limits.to_dict()}" if spec.canary else ""))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@app.command("list")
def list_() -> None:
    """Every deployment and where its traffic goes."""
    from keel.serving.spec import DeploymentSpec

    deployments = _ws().store.list_deployments()
    if not deployments:
        console.print("No deployments yet: keel deploy create prod --model churn@champion")
        return
    table = Table("name", "revision", "changed (UTC)", "routes")
    for d in deployments:
        table.add_row(markup_text(d.name), str(d.revision), when(d.updated_at),
                      describe_routes(DeploymentSpec.from_dict(d.spec)))
    console.print(table)


@app.command()
def history(name: str = typer.Argument(...),
            as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Every change of the deployment: who, what, why, with the figures behind it."""
    from keel.serving.rollout import history as do
    from keel.serving.spec import DeploymentSpec

    events = do(name, _ws())
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in events], indent=2, default=str))
        return
    table = Table("rev", "time (UTC)", "action", "by", "routes", "reason")
    for e in events:
        table.add_row(str(e.revision), when(e.time), e.action, markup_text(e.user),
                      describe_routes(DeploymentSpec.from_dict(e.spec)),
                      markup_text(e.reason) + (_figures(e.figures) if e.figures else ""))
    console.print(table)


def _figures(figures: dict[str, Any]) -> str:
    canary, stable = figures.get("canary") or {}, figures.get("stable") or {}
    if not canary:
        return ""
    def line(f: dict[str, Any]) -> str:
        p99 = f.get("p99_ms")
        return (f"{f.get('requests', 0)} req, {f.get('error_rate', 0):.2%} errors, p99 "
                f"{'-' if p99 is None else f'{p99:.1f} ms'}")
    text = f"\n  canary {canary.get('version')}: {line(canary)}"
    if stable:
        text += f"\n  stable {stable.get('version')}: {line(stable)}"
    return text


@app.command()
def log(name: str = typer.Argument(..., help="deployment (or served model) name"),
        since: str = typer.Option("1h", "--since", help="how far back: 30m, 1h, 7d, or an "
                                                        "ISO time"),
        until: str = typer.Option(None, "--until"),
        role: str = typer.Option(None, "--role", help="live or shadow"),
        limit: int = typer.Option(50, "--limit", "-n", help="rows shown (newest)"),
        as_json: bool = typer.Option(False, "--json", help="print JSON lines")) -> None:
    """The inference log: recent predictions with their version, latency and label."""
    from keel.errors import InvalidInput
    from keel.serving.inference_log import InferenceLog

    if role not in (None, "live", "shadow"):
        raise InvalidInput(f"--role {role!r}: use live or shadow")
    table = InferenceLog(name, _ws()).read(start=since, end=until, role=role)
    shown = table.tail(limit)
    if as_json:
        for record in shown.to_dict(orient="records"):
            typer.echo(json.dumps(record, default=str))
        return
    if shown.empty:
        console.print(f"No predictions logged for {markup_text(name)} since {since}.")
        return
    meta = {"request_id", "row", "time", "deployment", "model_version", "role", "latency_ms",
            "prediction", "label"}
    features = [c for c in shown.columns if c not in meta]
    rows = []
    for record in shown.to_dict(orient="records"):
        feats = ", ".join(f"{c}={record[c]}" for c in features[:4])
        more = f", +{len(features) - 4}" if len(features) > 4 else ""
        rows.append([record["time"].strftime("%H:%M:%S.%f")[:-3], record["request_id"],
                     str(record["row"]), record["model_version"], record["role"],
                     f"{record['latency_ms']:.2f}", printable(str(record["prediction"])),
                     "-" if record["label"] is None else printable(str(record["label"])),
                     printable(feats + more)])
    typer.echo(columns(["time (UTC)", "request id", "row", "version", "role", "ms",
                        "prediction", "label", "inputs"], rows, right=frozenset({2, 5})))
    console.print(f"{len(shown):,} of {len(table):,} row(s) since {since}")
