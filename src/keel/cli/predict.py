"""``keel predict``: batch inference over a CSV or Parquet file."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()


def predict(model: str = typer.Argument(..., help="models:/churn@champion, churn/3, "
                                                   "runs:/<id>/model"),
            input_path: Path = typer.Argument(..., help="CSV or Parquet file to score"),
            output: Path = typer.Option(..., "--output", "-o",
                                        help="where to write it (.csv or .parquet)"),
            chunk_rows: int = typer.Option(50_000, "--chunk-rows",
                                           help="rows scored at a time (bounds memory)"),
            trust: bool = typer.Option(False, "--trust",
                                       help="allow packages that execute code (pickles)")
            ) -> None:
    """Score a file in chunks; the job is recorded as a run linked to the model."""
    from keel.cli.progress import progress_bar
    from keel.cli.workspace import workspace
    from keel.models.predict import batch_predict

    done = batch_predict(model, input_path, output, chunk_rows=chunk_rows, trust=trust,
                         progress=progress_bar(unit="rows"), ws=workspace())
    console.print(f"Scored {done.rows:,} rows of {done.input} with {done.model} -> "
                  f"[bold]{done.output}[/] (run {done.run_id[:12]}, input digest "
                  f"{done.input_digest[:12]})")
