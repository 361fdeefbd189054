"""The gate options ``keel model promote`` and ``keel ci gate`` share, and the
evidence table both print."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # imported when a command runs: keel.models loads pandas
    from keel.models.gates import GatePolicy, GateReport

REQUIRE = typer.Option(None, "--require", "-r",
                       help="metric threshold, e.g. \"auc >= 0.85\" (repeatable)")
HOLDOUT = typer.Option(None, "--holdout",
                       help="dataset version both models are scored on now, e.g. holdout@3")
MAX_REGRESSION = typer.Option(None, "--max-regression",
                              help="how much worse than the alias's current version the "
                                   "candidate may score on the holdout (default 0)")
METRIC = typer.Option(None, "--metric", help="metric compared for regression "
                                             "(default: the first --require, else auc/r2)")
LABEL = typer.Option(None, "--label", help="label column of the holdout data")


def policy(name: str, alias: str, require: list[str] | None, holdout: str | None,
           max_regression: float | None, metric: str | None, label: str | None) -> GatePolicy:
    """keel.toml's gates for this alias, overridden by the command line."""
    from keel.models.gates import GatePolicy

    if holdout is not None and max_regression is None:
        max_regression = 0.0
    return GatePolicy.for_alias(name, alias, require=require, holdout=holdout,
                                max_regression=max_regression, metric=metric, label=label)


def print_report(report: GateReport, console: Console) -> None:
    """The gates as a table: what each checked, pass or fail, and the numbers."""
    verdict = "[green]passed" if report.passed else "[red]FAILED"
    table = Table("gate", "result", "evidence",
                  title=f"gates for {report.candidate} -> {report.alias} "
                        f"(now {report.current or 'unset'}): {verdict}")
    for result in report.results:
        table.add_row(escape(result.gate), "[green]pass" if result.passed else "[red]FAIL",
                      escape(result.detail))
    if not report.results:
        table.add_row("-", "[green]pass", "no gates declared for this alias")
    console.print(table)
