"""Per-process tracking state: opened workspaces, the writer thread, the run stack."""

from __future__ import annotations

import atexit
import contextlib

from keel.tracking.recovery import recover
from keel.tracking.run import ActiveRun
from keel.tracking.writer import BackgroundWriter
from keel.workspace import Workspace, current_workspace, forget_workspaces, on_open

writer = BackgroundWriter()
run_stack: list[ActiveRun] = []
# Every workspace this process opens first replays spools orphaned by killed
# processes, so data logged before a crash reaches the store unasked.
if recover not in on_open:
    on_open.append(recover)  # type: ignore[arg-type]


def workspace(create: bool = False) -> Workspace:
    """The workspace of the current folder, opened once per process."""
    return current_workspace(create=create)


def reset() -> None:
    """Forget opened workspaces (tests and long-lived servers switching folders)."""
    forget_workspaces()


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
