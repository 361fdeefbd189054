"""Which version each working folder holds: the record ``checkout`` and ``add`` keep.

A working folder (where a dataset was added from, or any checkout
destination) holds one version of one dataset at a time. ``checkout``
writes that version there; ``add`` snapshots it as a version (new, or an
existing one with identical content). Both record it here, so that
``status`` compares the folder with the version it holds, not with the
latest one (after ``checkout wine@1`` the folder is wine@1, and a bare
``keel data status wine`` says so), and ``checkout`` knows which files it
may replace without losing edits.

One small JSON file, ``.keel/cache/checkouts.json``: resolved folder path
-> ``name@N``. It describes this machine's folders, so it is a cache beside
the stat cache, not metadata in the store. Writes replace it atomically;
two processes racing lose at most one record, which only costs the next
``status`` of that folder a comparison with the latest version.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from keel.workspace import Workspace


def _file(ws: Workspace) -> Path:
    return ws.folder / "cache" / "checkouts.json"


def _key(folder: Path) -> str:
    return str(folder.absolute())


def _read(ws: Workspace) -> dict[str, str]:
    try:
        data = json.loads(_file(ws).read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(data, dict) else {}


def held_at(ws: Workspace, folder: Path, dataset: str | None = None) -> str | None:
    """The ``name@N`` last checked out or added at ``folder``; None if none is
    recorded (or, with ``dataset``, if the folder holds another dataset)."""
    ref = _read(ws).get(_key(folder))
    if ref is None or (dataset is not None and ref.partition("@")[0] != dataset):
        return None
    return ref


def remember(ws: Workspace, folder: Path, ref: str) -> None:
    """Record that ``folder`` now holds version ``ref``."""
    state = _read(ws)
    if state.get(_key(folder)) == ref:
        return
    state[_key(folder)] = ref
    path = _file(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        temp.write_text(json.dumps(state, indent=1))
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
