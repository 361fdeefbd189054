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
-> ``{"ref": "name@N", "manifest": digest}`` (a bare ``"name@N"`` in files
written before the digest was kept). With the digest, a no-change
``status`` needs neither the store nor the manifest: the working-folder
index, tied to that digest, answers alone (no database driver is loaded).
It describes this machine's folders, so it is a cache beside the stat
cache, not metadata in the store. Writes replace it atomically; two
processes racing lose at most one record, which only costs the next
``status`` of that folder a comparison with the latest version.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from keel.workspace import Workspace


def _file(ws: Workspace) -> Path:
    return ws.folder / "cache" / "checkouts.json"


def _key(folder: Path) -> str:
    return str(folder.absolute())


@dataclass(frozen=True)
class Held:
    """The version a folder holds: its reference and, when recorded, its manifest."""

    ref: str
    manifest: str | None = None

    @property
    def dataset(self) -> str:
        return self.ref.partition("@")[0]


def _read(ws: Workspace) -> dict[str, Held]:
    try:
        data = json.loads(_file(ws).read_text())
    except (OSError, ValueError):
        return {}
    found: dict[str, Held] = {}
    for key, value in (data.items() if isinstance(data, dict) else ()):
        if isinstance(value, str):
            found[key] = Held(value)
        elif isinstance(value, dict) and isinstance(value.get("ref"), str):
            manifest = value.get("manifest")
            found[key] = Held(value["ref"], manifest if isinstance(manifest, str) else None)
    return found


def held(ws: Workspace, folder: Path, dataset: str | None = None) -> Held | None:
    """What ``folder`` holds; None if nothing is recorded (or, with ``dataset``, if
    the folder holds another dataset)."""
    found = _read(ws).get(_key(folder))
    if found is None or (dataset is not None and found.dataset != dataset):
        return None
    return found


def held_at(ws: Workspace, folder: Path, dataset: str | None = None) -> str | None:
    """The ``name@N`` last checked out or added at ``folder``, or None."""
    found = held(ws, folder, dataset)
    return found.ref if found else None


def folders_of(ws: Workspace, dataset: str) -> list[tuple[Path, Held]]:
    """Every recorded folder holding a version of ``dataset``."""
    return [(Path(k), v) for k, v in _read(ws).items() if v.dataset == dataset]


def remember(ws: Workspace, folder: Path, ref: str, manifest: str | None = None) -> None:
    """Record that ``folder`` now holds version ``ref`` (with its manifest digest)."""
    state = _read(ws)
    entry = Held(ref, manifest)
    if state.get(_key(folder)) == entry:
        return
    state[_key(folder)] = entry
    path = _file(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}")
    body = {k: ({"ref": v.ref, "manifest": v.manifest} if v.manifest else v.ref)
            for k, v in state.items()}
    try:
        temp.write_text(json.dumps(body, indent=1))
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
