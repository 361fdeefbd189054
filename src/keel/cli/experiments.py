"""``keel experiments list|create|delete|restore``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from keel.cli.workspace import store as _store

app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                  help="Create, list and delete experiments.")
console = Console()



@app.command("list")
def list_(all_: bool = typer.Option(False, "--all", help="include deleted experiments"),
          as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List experiments."""
    exps = _store().list_experiments(include_deleted=all_)
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in exps], indent=2))
        return
    # The project column only once a team server's token made one outside "default".
    projects = any(e.project != "default" for e in exps)
    table = Table("id", "name", "description", "created", "state",
                  *(("project",) if projects else ()))
    for e in exps:
        created = datetime.fromtimestamp(e.created_at / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(str(e.id), e.name, e.description, created, e.lifecycle,
                      *((e.project,) if projects else ()))
    console.print(table)


@app.command()
def create(name: str, description: str = typer.Option("", "--description", "-d")) -> None:
    """Create an experiment."""
    from keel.tracking.api import create_experiment

    exp = create_experiment(name, description)
    console.print(f"Created experiment [bold]{exp.name}[/] (id {exp.id})")


@app.command()
def delete(name: str) -> None:
    """Soft-delete an experiment (its runs stay; restore undoes it)."""
    from keel.entities import DELETED  # here: `keel --help` imports this module

    _store().set_experiment_lifecycle(name, DELETED)
    console.print(f"Deleted experiment [bold]{name}[/] (undo: keel experiments restore {name})")


@app.command()
def restore(name: str) -> None:
    """Restore a deleted experiment."""
    from keel.entities import ACTIVE

    _store().set_experiment_lifecycle(name, ACTIVE)
    console.print(f"Restored experiment [bold]{name}[/]")
