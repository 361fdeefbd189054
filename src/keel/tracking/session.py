"""The workspace tracking works in, made ready for runs: spools recovered, writer started.

No module-level state: the workspace comes from the caller (or, failing
that, from the context and the current folder, see
``keel.workspace.resolve_workspace``), and what tracking sets up for it (the
background writer, the one-time recovery of orphaned spools) lives on that
workspace object, so it dies with it.
"""

from __future__ import annotations

from keel.tracking.recovery import recover
from keel.tracking.writer import BackgroundWriter
from keel.workspace import Workspace, forget_workspaces, resolve_workspace


def workspace(ws: Workspace | None = None, create: bool = False) -> Workspace:
    """``ws``, or the context's or current folder's workspace, with the spools
    that killed processes left for its store replayed (once per workspace)."""
    ws = resolve_workspace(ws, create=create)
    if not ws.recovered:
        with ws.lock:
            if not ws.recovered:
                # Data logged before a crash reaches the store unasked. Without
                # spool files there is nothing to do, and the store stays closed.
                if any(ws.spool_dir.glob("*.spool")):
                    ws.recovered_runs = recover(ws)
                ws.recovered = True
    return ws


def writer_for(ws: Workspace) -> BackgroundWriter:
    """The background writer of a workspace, started on first use."""
    if ws.writer is None:
        with ws.lock:
            if ws.writer is None:
                ws.writer = BackgroundWriter(ws.store)
    writer: BackgroundWriter = ws.writer
    return writer


def reset() -> None:
    """Forget opened workspaces (tests and long-lived servers switching folders)."""
    forget_workspaces()
