"""``keel ci gate``: the promotion gates for CI pipelines (exit 0 pass, 1 fail)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from keel.cli import gate_options as g

app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                  help="Commands for CI pipelines.")
console = Console()


@app.command()
def gate(ref: str = typer.Argument(..., help="the candidate version, e.g. churn/4"),
         alias: str = typer.Option("champion", "--alias", "-a",
                                   help="the alias the candidate should earn"),
         require: list[str] = g.REQUIRE, holdout: str = g.HOLDOUT,
         max_regression: float = g.MAX_REGRESSION, metric: str = g.METRIC,
         label: str = g.LABEL,
         summary: Path = typer.Option(None, "--summary",
                                      help="write a markdown summary here (a PR comment)"),
         promote: bool = typer.Option(False, "--promote",
                                      help="move the alias when every gate passes"),
         reason: str = typer.Option("passed CI gates", "--reason")) -> None:
    """Run the gates of ALIAS for a version; exit 1 if any fails."""
    from keel.cli.workspace import workspace
    from keel.models.promote import check
    from keel.models.promote import promote as do_promote
    from keel.models.registry import get_version

    ws = workspace()
    version = get_version(ref, ws)
    rules = g.policy(version.name, alias, require, holdout, max_regression, metric, label)
    report = check(ref, alias, rules, ws=ws)
    g.print_report(report, console)
    if summary is not None:
        summary.write_text(report.to_markdown())
        console.print(f"summary written to {summary}")
    if not report.passed:
        raise typer.Exit(1)
    if promote:
        done = do_promote(ref, alias, reason, rules, ws=ws)
        console.print(f"{version.name}@{alias} -> version {done.version.version}")
