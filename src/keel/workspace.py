"""A workspace: the ``.keel/`` folder, its metadata store and its blob store.

Found like git finds a repository: the nearest ``.keel/`` at or above the
current folder. ``KEEL_STORE`` / ``KEEL_BLOBS`` (or ``keel.toml``) move the
store and blobs elsewhere (PostgreSQL, S3); the folder still holds the
per-process spool files that make logging crash-safe.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.blobs import BlobStore
from keel.config import WORKSPACE_DIR, find_workspace, require_workspace, resolve
from keel.store.sql_store import SqlStore, open_store


@dataclass
class Workspace:
    """An opened workspace; ``Workspace.open()`` finds, migrates and returns one."""

    root: Path
    store: SqlStore
    blobs: BlobStore
    # Experiments by name, filled by the tracking API (see tracking/api.py).
    experiment_cache: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.root / WORKSPACE_DIR

    @property
    def spool_dir(self) -> Path:
        return self.folder / "spool"

    @classmethod
    def open(cls, start: Path | None = None, create: bool = False,
             store: str | None = None, blobs: str | None = None) -> Workspace:
        """Open the workspace above ``start`` (cwd); with ``create``, make one there
        if none exists. Raises NotFound with a hint otherwise."""
        root = find_workspace(start)
        if root is None:
            root = init_workspace(start or Path.cwd()) if create else require_workspace(start)
        folder = root / WORKSPACE_DIR
        store_url = resolve("store", root, store).value or str(folder / "keel.db")
        blobs_url = resolve("blobs", root, blobs).value or str(folder / "blobs")
        (folder / "spool").mkdir(exist_ok=True)
        return cls(root=root, store=open_store(store_url, lock_dir=folder),
                   blobs=BlobStore(blobs_url))

    def close(self) -> None:
        self.store.close()


def init_workspace(path: Path) -> Path:
    """Create ``.keel/`` (store folder, blobs, spool) in ``path``; return ``path``.

    Idempotent: an existing workspace is left as it is.
    """
    path = path.resolve()
    folder = path / WORKSPACE_DIR
    for sub in ("blobs", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        # The workspace holds data and a database; never commit it by accident.
        ignore.write_text("*\n")
    return path


_lock = threading.RLock()
_opened: dict[tuple[str, str, str], Workspace] = {}
# Called once for every workspace a process opens (tracking replays orphaned spools).
on_open: list[Callable[[Workspace], None]] = []


def current_workspace(create: bool = False) -> Workspace:
    """The workspace of the current folder, opened once per process and settings."""
    root = find_workspace()
    key = (str(root or Path.cwd().resolve()), os.environ.get("KEEL_STORE", ""),
           os.environ.get("KEEL_BLOBS", ""))
    with _lock:
        if key not in _opened:
            ws = Workspace.open(create=create)
            for hook in on_open:
                hook(ws)
            _opened[key] = ws
        return _opened[key]


def forget_workspaces() -> None:
    """Close every workspace this process opened (tests; servers switching folders)."""
    with _lock:
        for ws in _opened.values():
            ws.close()
        _opened.clear()


def resolve_workspace(ws: Workspace | None) -> Workspace:
    """``ws`` if given, else the current folder's workspace."""
    return ws if ws is not None else current_workspace()
