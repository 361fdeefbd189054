"""Entry point of the ``keel`` command: one error boundary for every command.

A :class:`~keel.errors.KeelError` becomes ``error:`` and ``hint:`` lines and
exit 1. Anything else (a bug, an unexpected environment) becomes one line
naming the error, a hint, and the file the full traceback was written to;
``KEEL_DEBUG=1`` prints the traceback instead. No command ends in a raw
traceback or a bare "Aborted.".
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from keel.cli import automate, ci, data, deploy, experiments, models, monitor, pipeline, runs
from keel.cli.errors import report, show_usage_error
from keel.cli.gc import gc
from keel.cli.lineage import lineage
from keel.cli.predict import predict
from keel.cli.serve import serve
from keel.cli.server import server, token_app
from keel.cli.trials import run, sweep
from keel.config import all_settings, find_workspace
from keel.errors import KeelError

# Plain (click) help, not Rich's: rendering help with Rich imports markdown-it and
# costs ~50 ms of the ~140 ms `keel --help` takes (bench/cli.py).
app = typer.Typer(rich_markup_mode=None, no_args_is_help=True, pretty_exceptions_enable=False,
                  add_completion=False,
                  help="keel: track experiments, version data, ship and watch models.")
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="model")
app.add_typer(ci.app, name="ci")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(deploy.app, name="deploy")
app.add_typer(monitor.app, name="monitor")
app.add_typer(automate.app, name="automate")
app.command()(lineage)
app.command()(predict)
app.command()(serve)
app.command()(server)
app.add_typer(token_app, name="token")
app.command()(gc)
app.command()(run)
app.command()(sweep)
db_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                     help="Manage the metadata database.")
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)


@app.command()
def init(path: Path = typer.Argument(Path("."), help="folder to hold .keel/")) -> None:
    """Create a workspace (.keel/ with its database and blob store) in PATH."""
    from keel.workspace import Workspace, init_workspace

    root = init_workspace(path)
    ws = Workspace.open(root)
    ws.store  # noqa: B018 - opening it creates and migrates the database now
    ws.close()
    console.print(f"Initialised keel workspace in [bold]{root / '.keel'}[/]")


@app.command()
def recover() -> None:
    """Store data left in spools by killed processes; mark their runs KILLED."""
    from keel.cli.workspace import workspace
    from keel.tracking.api import recover as do_recover
    from keel.tracking.quarantine import quarantined

    ws = workspace()
    found = do_recover(ws=ws)
    if not found:
        console.print("Nothing to recover: no spools left by killed processes.")
    for item in found:
        if item.set_aside:
            console.print(f"run {item.run_id}: not in this store; its spool was set aside in "
                          f"{ws.spool_dir / 'quarantine'}")
            continue
        state = "marked KILLED" if item.marked_killed else "already ended"
        console.print(f"run {item.run_id}: {item.records} records recovered, {state}")
    aside = quarantined(ws.spool_dir)
    if aside:
        console.print(f"{len(aside)} record(s) that could not be stored are kept in "
                      f"{ws.spool_dir / 'quarantine'} (see the reason in each line)")


@db_app.command("upgrade")
def db_upgrade(store: str = typer.Option(None, help="database URL (default: KEEL_STORE or "
                                                    "the workspace's .keel/keel.db)")) -> None:
    """Apply pending schema migrations (for shared databases; local ones migrate on open)."""
    from keel.config import WORKSPACE_DIR, resolve
    from keel.store.schema import SCHEMA_REVISION
    from keel.store.sql_store import open_store

    root = find_workspace()
    url = resolve("store", root, store).value
    if url is None:
        if root is None:
            raise KeelError("no database given and no workspace found",
                            hint="pass --store URL, set KEEL_STORE, or run `keel init`")
        url = str(root / WORKSPACE_DIR / "keel.db")
    open_store(url).close()  # opening migrates, serialised against other processes
    console.print(f"Database is at schema revision {SCHEMA_REVISION}.")


@app.command("config")
def show_config() -> None:
    """Show every setting, its value and where it came from."""
    table = Table("setting", "value", "source")
    for item in all_settings(find_workspace()):
        table.add_row(item.name, item.value or "-", item.source)
    console.print(table)


def main(args: list[str] | None = None) -> None:
    """Run the CLI with the error boundary of the module docstring."""
    try:
        code = app(args=args, standalone_mode=False)
    except typer.Abort as exc:
        if exc.__cause__ is None:
            err_console.print("Aborted.")
            sys.exit(1)
        sys.exit(report(exc.__cause__, err_console))  # Typer turns an EOFError into Abort
    except typer.TyperException as exc:  # a usage error: Typer says what was wrong
        show_usage_error(exc)
        sys.exit(exc.exit_code)
    except Exception as exc:
        sys.exit(report(exc, err_console))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
