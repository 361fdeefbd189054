"""Per-process tracking state: opened workspaces, the writer thread, the run stack."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from pathlib import Path

from keel.config import find_workspace
from keel.tracking.recovery import recover
from keel.tracking.run import ActiveRun
from keel.tracking.writer import BackgroundWriter
from keel.workspace import Workspace

_lock = threading.RLock()
_workspaces: dict[tuple[str, str, str], Workspace] = {}
writer = BackgroundWriter()
run_stack: list[ActiveRun] = []


def workspace(create: bool = False) -> Workspace:
    """The workspace of the current folder, opened once per process.

    The first open replays any spools orphaned by killed processes, so data
    logged before a crash reaches the store without the user asking.
    """
    root = find_workspace()
    key = (str(root or Path.cwd().resolve()), os.environ.get("KEEL_STORE", ""),
           os.environ.get("KEEL_BLOBS", ""))
    with _lock:
        if key not in _workspaces:
            ws = Workspace.open(create=create)
            recover(ws)
            _workspaces[key] = ws
        return _workspaces[key]


def reset() -> None:
    """Forget opened workspaces (tests and long-lived servers switching folders)."""
    with _lock:
        for ws in _workspaces.values():
            ws.close()
        _workspaces.clear()


def active_run() -> ActiveRun | None:
    """The innermost run started and not yet ended in this process."""
    return run_stack[-1] if run_stack else None


def push(run: ActiveRun) -> None:
    run_stack.append(run)
    run.on_end.append(_pop)


def _pop(run: ActiveRun) -> None:
    if run in run_stack:
        run_stack.remove(run)


@atexit.register
def _end_open_runs() -> None:
    # A script that never closed its run still finished normally (exit via
    # atexit, not a signal): store everything and mark it FINISHED, as MLflow does.
    for run in reversed(list(run_stack)):
        # The interpreter is exiting; if the store fails, the spool keeps the data.
        with contextlib.suppress(Exception):
            run.end("FINISHED")
