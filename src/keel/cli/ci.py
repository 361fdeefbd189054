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


@app.command()
def smoke(target: str = typer.Argument(..., help="pipeline.py or pipeline.py:NAME"),
          rows: int = typer.Option(None, "--rows", help="rows of each CSV/Parquet file "
                                                        "(default 1000, or keel.toml)"),
          sample: str = typer.Option(None, "--sample", help="a random fraction instead, "
                                                            "e.g. 1%"),
          require: list[str] = typer.Option(None, "--require", "-r",
                                            help="a sanity bound on a logged metric, e.g. "
                                                 "\"accuracy >= 0.6\" (repeatable)"),
          param: list[str] = typer.Option(None, "--param", "-p", help="NAME=VALUE"),
          summary: Path = typer.Option(None, "--summary",
                                       help="write a markdown summary here (a PR comment)"),
          as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Run a pipeline on a sample of its data in a throwaway workspace; exit 1 if a
    step fails or a sanity bound does not hold."""
    import json

    from keel.cli.pipeline import parse_params
    from keel.cli.workspace import workspace
    from keel.pipelines import load_pipeline
    from keel.pipelines.smoke import parse_sample
    from keel.pipelines.smoke import smoke as run_smoke

    pipe = load_pipeline(target)
    report = run_smoke(pipe, workspace(), rows=rows,
                       sample=parse_sample(sample) if sample else None,
                       require=list(require or []) or None,
                       params=parse_params(param, pipe.params()))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(report.to_markdown())
    if summary is not None:
        summary.write_text(report.to_markdown())
    if not report.passed:
        raise typer.Exit(1)


@app.command("init")
def init_ci(kind: str = typer.Argument(..., help="github"),
            pipeline: str = typer.Option("pipeline.py", "--pipeline",
                                         help="the training pipeline"),
            model: str = typer.Option(None, "--model", help="the registered model to gate"),
            force: bool = typer.Option(False, "--force", help="replace an existing workflow")
            ) -> None:
    """Write a CI workflow with tiers: push -> tests + smoke; nightly -> full pipeline
    + gates; weekly -> fresh data, every step recomputed."""
    from keel.errors import InvalidInput
    from keel.pipelines import load_pipeline
    from keel.pipelines.workflow import write_github_workflow

    if kind != "github":
        raise InvalidInput(f"unknown CI {kind!r}", hint="keel ci init github")
    first = load_pipeline(pipeline).graph().nodes[0].name
    path = write_github_workflow(Path.cwd(), pipeline, model or "", first, force)
    typer.echo(f"wrote {path}")
