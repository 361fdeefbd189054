"""``keel monitor run|report|watch|history|alerts``: drift and performance of
deployments and data."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from keel.cli.render import columns, markup_text, when
from keel.cli.workspace import workspace as _ws

app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                  help="Watch deployments and data for drift and falling performance.")
console = Console()

_DEPLOYMENT = typer.Option(None, "--deployment", "-d",
                           help="a deployment: its inference log is the current data")
_WINDOW = typer.Option("1h", "--window", "-w",
                       help="how far back the current window reaches (30m, 1h, 7d), a start "
                            "time (2026-11-29T10:00), or 'all'")
_REFERENCE = typer.Option(None, "--reference", "-r",
                          help="FILE or DATASET@N to compare with (default for a deployment: "
                               "the data its model was trained on)")
_REFERENCE_WINDOW = typer.Option(None, "--reference-window",
                                 help="an earlier window of the deployment's own log as the "
                                      "reference: START..END, e.g. 7d..1d")
_CURRENT = typer.Option(None, "--current", "-c",
                        help="FILE or DATASET@N as the current data (instead of a deployment)")
_COLUMN = typer.Option(None, "--column", help="compare only this column (repeatable)")
_CATEGORICAL = typer.Option(None, "--categorical",
                            help="treat this column as categorical (repeatable)")
_METHOD = typer.Option(None, "--method",
                       help="ks|wasserstein|psi|chi2|jensenshannon for every feature, or "
                            "FEATURE=METHOD (repeatable)")
_ALERT = typer.Option(None, "--alert", help="alert rule, e.g. 'drift_share > 0.3' (repeatable)")
_WEBHOOK = typer.Option(None, "--webhook", help="URL alerts are POSTed to as JSON")


def _methods(values: list[str] | None) -> str | dict[str, str] | None:
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    out = {}
    for value in values:
        feature, sep, method = value.rpartition("=")
        if not sep:
            from keel.errors import InvalidInput

            raise InvalidInput(f"--method {value!r}: write FEATURE=METHOD, or one METHOD alone")
        out[feature] = method
    return out


def _window(value: str) -> str | None:
    return None if value.strip().lower() in ("all", "") else value


def _pass(deployment: str | None, window: str, reference: str | None, current: str | None,
          column: list[str] | None, categorical: list[str] | None, method: list[str] | None,
          alert: list[str] | None, webhook: str | None, save: bool = True,
          reference_window: str | None = None) -> Any:
    from keel.monitoring import monitor

    return monitor.run(deployment=deployment, window=_window(window), reference=reference,
                       current=current, columns=column or None, categorical=categorical or None,
                       methods=_methods(method), alerts=alert, webhook=webhook, save=save,
                       reference_window=reference_window, ws=_ws())


@app.command("run")
def run_(deployment: str = _DEPLOYMENT, window: str = _WINDOW, reference: str = _REFERENCE,
         reference_window: str = _REFERENCE_WINDOW,
         current: str = _CURRENT, column: list[str] = _COLUMN,
         categorical: list[str] = _CATEGORICAL, method: list[str] = _METHOD,
         alert: list[str] = _ALERT, webhook: str = _WEBHOOK,
         output: Path = typer.Option(None, "--output", "-o",
                                     help="also write the HTML report here"),
         as_json: bool = typer.Option(False, "--json", help="print the result as JSON")) -> None:
    """Compare the current data with the reference and store a monitoring record."""
    result = _pass(deployment, window, reference, current, column, categorical, method, alert,
                   webhook, reference_window=reference_window)
    if output:
        _write_report(result, output)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    show(result)
    if output:
        console.print(f"report: {output}")


@app.command()
def report(deployment: str = _DEPLOYMENT, window: str = _WINDOW, reference: str = _REFERENCE,
           reference_window: str = _REFERENCE_WINDOW, current: str = _CURRENT,
           column: list[str] = _COLUMN,
           categorical: list[str] = _CATEGORICAL, method: list[str] = _METHOD,
           output: Path = typer.Option(Path("report.html"), "--output", "-o",
                                       help="where to write the HTML report"),
           label: str = typer.Option(None, "--label",
                                     help="the reference's label column (for feature "
                                          "importance)")) -> None:
    """Write a self-contained HTML report: distributions, drift scores and their
    trend, performance over time, alerts (opens without a network)."""
    result = _pass(deployment, window, reference, current, column, categorical, method, None,
                   None, reference_window=reference_window)
    _write_report(result, output, label)
    show(result)
    console.print(f"report: {output}")


@app.command()
def watch(deployment: str = typer.Option(..., "--deployment", "-d"),
          every: str = typer.Option("5m", "--every", help="time between passes (30s, 5m, 1h)"),
          window: str = typer.Option(None, "--window", "-w",
                                     help="the window of each pass (default: --every)"),
          reference: str = _REFERENCE, alert: list[str] = _ALERT, webhook: str = _WEBHOOK,
          count: int = typer.Option(0, "--count", help="stop after this many passes (0: never)"),
          output: Path = typer.Option(None, "--output", "-o",
                                      help="rewrite this HTML report after every pass")) -> None:
    """Monitor a deployment every interval until stopped (Ctrl-C) or --count passes."""
    from keel.durations import parse_duration
    from keel.errors import KeelError

    seconds = parse_duration(every, "--every")
    if seconds <= 0:
        from keel.errors import InvalidInput

        raise InvalidInput("--every must be longer than 0 s")
    done = 0
    try:
        while True:
            started = time.monotonic()
            try:
                result = _pass(deployment, window or every, reference, None, None, None, None,
                               alert, webhook)
                if output:
                    _write_report(result, output)
                _summary_line(result)
            except KeelError as exc:  # an empty window must not end the watch
                console.print(f"{time.strftime('%H:%M:%S')} {markup_text(exc.message)}")
            done += 1
            if count and done >= count:
                return
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
    except KeyboardInterrupt:
        console.print(f"stopped after {done} pass(es)")


@app.command()
def history(deployment: str = _DEPLOYMENT,
            limit: int = typer.Option(20, "--limit", "-n"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Stored monitoring records, newest last."""
    subject = f"deployment:{deployment}" if deployment else None
    records = _ws().store.list_monitor_records(subject, limit=limit)
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in r.to_dict().items() if k != "result"}
                               for r in records], indent=2))
        return
    rows = [[str(r.id), when(r.time), r.subject, f"{r.share_drifted:.2f}",
             "yes" if r.drifted else "no",
             ", ".join(f["feature"] for f in r.result.get("drift", {}).get("features", [])
                       if f.get("drifted"))[:60] or "-"] for r in records]
    console.print(columns(["record", "time", "subject", "drift share", "drifted", "features"],
                          rows) if rows else "no monitoring records yet")


@app.command()
def alerts(deployment: str = _DEPLOYMENT, limit: int = typer.Option(20, "--limit", "-n"),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Alerts raised, newest last, with what happened to their webhook."""
    subject = f"deployment:{deployment}" if deployment else None
    found = _ws().store.list_alerts(subject, limit=limit)
    if as_json:
        typer.echo(json.dumps([a.to_dict() for a in found], indent=2))
        return
    rows = [[when(a.time), a.rule, _num(a.value), a.delivery] for a in found]
    console.print(columns(["time", "rule", "value", "webhook"], rows) if rows
                  else "no alerts")


def show(result: Any) -> None:
    """The per-feature table and the verdict, as a terminal reads them."""
    rows = []
    for f in result.drift.features:
        rows.append([f.feature, f.kind, f.method, _num(f.statistic), _num(f.p_value),
                     f"{f.threshold:g}", "DRIFT" if f.drifted else "-", f.note])
    console.print(columns(["feature", "kind", "method", "statistic", "p-value", "threshold",
                           "drifted", "note"], rows, right=frozenset({3, 4, 5})))
    verdict = "[red]DRIFT[/]" if result.drift.drifted else "[green]no dataset drift[/]"
    console.print(f"{markup_text(result.subject)}: {verdict}: "
                  f"{len(result.drift.drifted_features)} of {len(result.drift.features)} "
                  f"features drifted (share {result.drift.share_drifted:.2f}, dataset drift "
                  f"at {result.drift.drift_share:g}); reference {markup_text(result.reference)} "
                  f"({result.drift.rows_reference:,} rows), current "
                  f"{markup_text(result.current)} ({result.drift.rows_current:,} rows)")
    for p in result.performance:
        interval = f" [{p['low']:.3f}, {p['high']:.3f}]" if p["low"] is not None else ""
        console.print(f"performance of {markup_text(p['version'])}: {p['metric']} "
                      f"{p['value']:.3f}{interval} on {p['n']:,} labelled rows")
    for a in result.alerts:
        console.print(f"[yellow]alert[/]: {markup_text(a.message)} (webhook: {a.delivery})")
    for note in result.notes:
        console.print(f"note: {markup_text(note)}")
    if result.record:
        console.print(f"stored as monitoring record {result.record.id}")


def _summary_line(result: Any) -> None:
    console.print(f"{time.strftime('%H:%M:%S')} {markup_text(result.subject)}: share drifted "
                  f"{result.drift.share_drifted:.2f}"
                  f"{' DRIFT' if result.drift.drifted else ''}; "
                  f"{result.drift.rows_current:,} rows"
                  + "".join(f"; alert: {markup_text(a.rule)}" for a in result.alerts))


def _write_report(result: Any, output: Path, label: str | None = None) -> None:
    from keel.monitoring.report import write_report
    from keel.monitoring.report_data import report_data

    write_report(report_data(result, _ws(), label=label), output)


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"
