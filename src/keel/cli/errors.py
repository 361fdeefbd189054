"""How the CLI reports an error: one ``error:`` line and a ``hint:`` line, never a
traceback (unless ``KEEL_DEBUG=1``). Unexpected errors get their traceback
written to a file, whose path the hint names."""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from keel.errors import KeelError
from keel.names import printable


def report(exc: BaseException, console: Console) -> int:
    """Print ``exc`` for a person; return the exit code (1)."""
    debug = os.environ.get("KEEL_DEBUG", "") not in ("", "0")
    if debug:
        console.print(escape("".join(traceback.format_exception(exc))), highlight=False)
    if isinstance(exc, KeelError):
        _lines(console, exc.message, exc.hint)
        return 1
    where = None if debug else _write_traceback(exc)
    message = f"unexpected {type(exc).__name__}: {exc}".strip().rstrip(":")
    hint = ("this is a bug in keel or an environment it did not expect; the full traceback "
            f"is in {where} (set KEEL_DEBUG=1 to print it)" if where else
            "set KEEL_DEBUG=1 to print the full traceback")
    _lines(console, message.splitlines()[0] if message else type(exc).__name__,
           None if debug else hint)
    return 1


def show_usage_error(exc: Exception) -> None:
    """A command-line usage error with the usage line, as click prints it."""
    exc.show()  # type: ignore[attr-defined]


def _lines(console: Console, message: str, hint: str | None) -> None:
    # escape(): messages quote user text and TOML tables like [remote], which
    # Rich would otherwise swallow as markup; printable(): user text may hold
    # terminal escape sequences.
    console.print(f"[bold red]error:[/] {escape(printable(message))}", highlight=False)
    if hint:
        console.print(f"[bold]hint:[/] {escape(printable(hint))}", highlight=False)


def _write_traceback(exc: BaseException) -> Path | None:
    """The traceback in ``.keel/logs/`` of the workspace here, else in the temp folder."""
    from keel.config import WORKSPACE_DIR, find_workspace

    text = "".join(traceback.format_exception(exc))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidates = []
    try:
        root = find_workspace()
    except OSError:
        root = None
    if root is not None:
        candidates.append(root / WORKSPACE_DIR / "logs")
    candidates.append(Path(tempfile.gettempdir()))
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"keel-error-{stamp}-{os.getpid()}.log"
            path.write_text(text)
            return path
        except OSError:
            continue
    return None
