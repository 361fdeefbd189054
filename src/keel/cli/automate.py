"""``keel automate run|daemon|history``: continuous training, one audited step at a time."""

from __future__ import annotations

import json
import time
from typing import Any

import typer
from rich.console import Console

from keel.cli.render import columns, markup_text, when
from keel.cli.workspace import workspace as _ws

app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                  help="Continuous training: trigger -> retrain -> gates -> canary -> "
                       "promote, as declared under [automate.NAME] in keel.toml.")
console = Console()
_STYLE = {"ok": "green", "observed": "cyan", "waiting": "yellow", "quiet": "dim",
          "refused": "red", "failed": "red", "dry-run": "magenta"}


@app.command("run")
def run_(deployment: str = typer.Argument(None, help="one deployment (default: every policy)"),
         dry_run: bool = typer.Option(False, "--dry-run",
                                      help="say what would happen and why; change nothing"),
         as_json: bool = typer.Option(False, "--json", help="print the steps as JSON")) -> None:
    """One pass: each deployment moves one step (for cron or CI)."""
    from keel.automation.loop import run_once

    steps = run_once(_ws(), deployment, dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in steps], indent=2, default=str))
    else:
        for step in steps:
            show_step(step)
    if any(s.outcome == "failed" for s in steps):
        raise typer.Exit(1)


@app.command()
def daemon(every: str = typer.Option("5m", "--every", help="time between passes"),
           deployment: str = typer.Option(None, "--deployment", "-d"),
           count: int = typer.Option(0, "--count", help="stop after this many passes (0: never)")
           ) -> None:
    """Run a pass every interval until stopped; a failing pass is reported and the
    next one runs on time."""
    from keel.automation.loop import run_once
    from keel.durations import parse_duration
    from keel.errors import KeelError

    seconds = parse_duration(every, "--every")
    done = 0
    try:
        while True:
            started = time.monotonic()
            try:
                for step in run_once(_ws(), deployment):
                    show_step(step)
            except KeelError as exc:
                console.print(f"{time.strftime('%H:%M:%S')} [red]pass failed[/]: "
                              f"{markup_text(exc.message)}")
            done += 1
            if count and done >= count:
                return
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
    except KeyboardInterrupt:
        console.print(f"stopped after {done} pass(es)")


@app.command()
def history(deployment: str = typer.Argument(..., help="the deployment"),
            last: int = typer.Option(0, "--last", "-n", help="only the last N chains"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Every chain of automated actions: trigger -> retrain -> gate -> canary -> outcome."""
    from keel.automation.loop import chains

    found = chains(deployment, _ws())
    if last > 0:
        found = found[-last:]
    if as_json:
        typer.echo(json.dumps([[a.to_dict() for a in chain] for chain in found], indent=2))
        return
    if not found:
        console.print(f"no automated actions for {markup_text(deployment)} yet")
        return
    for chain in found:
        console.print(f"[bold]chain {chain[0].chain}[/] (started {when(chain[0].time)})")
        rows = [[when(a.time), a.action, a.outcome, _links(a.links), a.reason[:110]]
                for a in chain]
        console.print(columns(["time", "action", "outcome", "links", "reason"], rows))


def show_step(step: Any) -> None:
    style = _STYLE.get(step.outcome, "")
    mark = f" #{step.id}" if step.id else ""
    console.print(f"{markup_text(step.deployment)}: [{style}]{step.action} "
                  f"{step.outcome}[/]{mark}: {markup_text(step.reason)}")
    links = _links(step.links)
    if links:
        console.print(f"    {markup_text(links)}")


def _links(links: dict[str, Any]) -> str:
    names = {"monitor_record": "record", "pipeline_run": "pipeline run",
             "model_version": "model", "deployment_revision": "revision", "data": "data"}
    return ", ".join(f"{label} {links[key]}" for key, label in names.items()
                     if links.get(key) not in (None, ""))
