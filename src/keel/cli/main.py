"""Entry point of the ``keel`` command: one error boundary for every command.

A :class:`~keel.errors.KeelError` becomes ``error:`` and ``hint:`` lines and
exit 1. Anything else (a bug, an unexpected environment) becomes one line
naming the error, a hint, and the file the full traceback was written to;
``KEEL_DEBUG=1`` prints the traceback instead. No command ends in a raw
traceback or a bare "Aborted.".
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import typer

from keel.config import all_settings, find_workspace
from keel.errors import KeelError

# Command groups and the modules that define them, imported only when used:
# `keel pipeline run` loads keel.cli.pipeline alone (see command_app).
GROUPS = {"experiments": "keel.cli.experiments", "runs": "keel.cli.runs",
          "data": "keel.cli.data", "model": "keel.cli.models", "ci": "keel.cli.ci",
          "pipeline": "keel.cli.pipeline", "deploy": "keel.cli.deploy",
          "monitor": "keel.cli.monitor", "automate": "keel.cli.automate"}

# Plain (click) help, not Rich's: rendering help with Rich imports markdown-it and
# costs ~50 ms of the ~140 ms `keel --help` takes (bench/cli.py).
SETTINGS: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False,
                            "add_completion": False}
app = typer.Typer(no_args_is_help=True,
                  help="keel: track experiments, version data, ship and watch models.",
                  **SETTINGS)
db_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                     help="Manage the metadata database.")


def _console(stderr: bool = False) -> Any:
    from rich.console import Console  # ~25 ms: not for commands that print plain text

    return Console(stderr=stderr)


@app.command()
def init(path: Path = typer.Argument(Path("."), help="folder to hold .keel/")) -> None:
    """Create a workspace (.keel/ with its database and blob store) in PATH."""
    from keel.workspace import Workspace, init_workspace

    root = init_workspace(path)
    ws = Workspace.open(root)
    ws.store  # noqa: B018 - opening it creates and migrates the database now
    ws.close()
    _console().print(f"Initialised keel workspace in [bold]{root / '.keel'}[/]")


@app.command()
def recover() -> None:
    """Store data left in spools by killed processes; mark their runs KILLED."""
    from keel.cli.workspace import workspace
    from keel.tracking.api import recover as do_recover
    from keel.tracking.quarantine import quarantined

    console = _console()
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
    from keel.store.revision import SCHEMA_REVISION
    from keel.store.sql_store import open_store

    root = find_workspace()
    url = resolve("store", root, store).value
    if url is None:
        if root is None:
            raise KeelError("no database given and no workspace found",
                            hint="pass --store URL, set KEEL_STORE, or run `keel init`")
        url = str(root / WORKSPACE_DIR / "keel.db")
    open_store(url).close()  # opening migrates, serialised against other processes
    _console().print(f"Database is at schema revision {SCHEMA_REVISION}.")


@app.command("config")
def show_config() -> None:
    """Show every setting, its value and where it came from."""
    from rich.table import Table

    table = Table("setting", "value", "source")
    for item in all_settings(find_workspace()):
        table.add_row(item.name, item.value or "-", item.source)
    _console().print(table)


def _whole_app() -> typer.Typer:
    """``app`` with every command and group (built once, on first need)."""
    if not app.registered_groups:
        from keel.cli.gc import gc
        from keel.cli.lineage import lineage
        from keel.cli.predict import predict
        from keel.cli.serve import serve
        from keel.cli.server import server, token_app
        from keel.cli.trials import run, sweep

        for name, module in GROUPS.items():
            app.add_typer(importlib.import_module(module).app, name=name)
        for command in (lineage, predict, serve, server, gc, run, sweep):
            app.command()(command)
        app.add_typer(token_app, name="token")
        app.add_typer(db_app, name="db")
    return app


def command_app(argv: list[str]) -> typer.Typer:
    """The app that parses ``argv``: for a command of a group (``keel pipeline run``),
    an app holding that group alone.

    Typer turns every command of an app into a click command on each call, with
    an ``inspect.signature`` per parameter (20-40 ms for keel's 70 commands), and
    importing every command module costs as much again: together a third of a
    cached ``keel pipeline run``. A command of a group pays for its group only;
    ``keel --help`` and the top-level commands see the whole app.
    """
    first = argv[0] if argv else ""
    if first in GROUPS:
        slim = typer.Typer(**SETTINGS)
        slim.add_typer(importlib.import_module(GROUPS[first]).app, name=first)
        return slim
    return _whole_app()


def main(args: list[str] | None = None) -> None:
    """Run the CLI with the error boundary of the module docstring."""
    from keel.cli.errors import report, show_usage_error

    argv = sys.argv[1:] if args is None else args
    try:
        code = command_app(argv)(args=argv, standalone_mode=False)
    except typer.Abort as exc:
        if exc.__cause__ is None:
            _console(stderr=True).print("Aborted.")
            sys.exit(1)
        # Typer turns an EOFError into Abort
        sys.exit(report(exc.__cause__, _console(stderr=True)))
    except typer.TyperException as exc:  # a usage error: Typer says what was wrong
        show_usage_error(exc)
        sys.exit(exc.exit_code)
    except Exception as exc:
        sys.exit(report(exc, _console(stderr=True)))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
