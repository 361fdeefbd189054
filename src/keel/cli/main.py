"""Entry point of the ``keel`` command; every KeelError becomes two lines and exit 1."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keel.cli import ci, data, experiments, models, runs
from keel.cli.lineage import lineage
from keel.cli.predict import predict
from keel.config import all_settings, find_workspace
from keel.errors import KeelError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="keel: track experiments, version data, ship and watch models.")
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="model")
app.add_typer(ci.app, name="ci")
app.command()(lineage)
app.command()(predict)
db_app = typer.Typer(no_args_is_help=True, help="Manage the metadata database.")
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)


@app.command()
def init(path: Path = typer.Argument(Path("."), help="folder to hold .keel/")) -> None:
    """Create a workspace (.keel/ with its database and blob store) in PATH."""
    from keel.workspace import Workspace, init_workspace

    root = init_workspace(path)
    Workspace.open(root).close()
    console.print(f"Initialised keel workspace in [bold]{root / '.keel'}[/]")


@app.command()
def recover() -> None:
    """Store data left in spools by killed processes; mark their runs KILLED."""
    from keel.tracking.api import recover as do_recover

    found = do_recover()
    if not found:
        console.print("Nothing to recover: no orphaned spools.")
    for item in found:
        state = "marked KILLED" if item.marked_killed else "already ended"
        console.print(f"run {item.run_id}: {item.records} records recovered, {state}")


@db_app.command("upgrade")
def db_upgrade(store: str = typer.Option(None, help="database URL (default: KEEL_STORE or "
                                                    "the workspace's .keel/keel.db)")) -> None:
    """Apply pending schema migrations (for shared databases; local ones migrate on open)."""
    from keel.config import WORKSPACE_DIR, resolve
    from keel.store.engine import create_engines, normalise_url
    from keel.store.migrate import upgrade

    root = find_workspace()
    url = resolve("store", root, store).value
    if url is None:
        if root is None:
            raise KeelError("no database given and no workspace found",
                            hint="pass --store URL, set KEEL_STORE, or run `keel init`")
        url = str(root / WORKSPACE_DIR / "keel.db")
    _, writer = create_engines(normalise_url(url))
    revision = upgrade(writer)
    console.print(f"Database is at schema revision {revision}.")


@app.command("config")
def show_config() -> None:
    """Show every setting, its value and where it came from."""
    table = Table("setting", "value", "source")
    for item in all_settings(find_workspace()):
        table.add_row(item.name, str(item.value), item.source)
    console.print(table)


def main() -> None:
    """Run the CLI; KeelErrors print a message and hint, exit 1, no traceback."""
    try:
        app()
    except KeelError as exc:
        # escape(): messages quote user text and TOML tables like [remote],
        # which Rich would otherwise swallow as markup.
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err_console.print(f"[bold]hint:[/] {escape(exc.hint)}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
