"""``keel data checkout``: bring a version's files back, never clobbering local edits."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.data.destination import Destination
from keel.data.manifest import Manifest
from keel.data.materialise import materialise
from keel.data.progress import NoProgress, Progress
from keel.data.status import working_manifest
from keel.data.version import get_version, load_manifest, source_path
from keel.entities import DatasetVersion
from keel.errors import Conflict, NotFound
from keel.workspace import Workspace, resolve_workspace


@dataclass(frozen=True)
class CheckoutResult:
    """Where a version was written and what changed on disk."""

    version: DatasetVersion
    dest: Path
    written: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int


def checkout(ref: str, dest: str | Path | None = None, force: bool = False,
             progress: Progress | None = None, ws: Workspace | None = None) -> CheckoutResult:
    """Write version ``ref`` to ``dest`` (default: where it was added from).

    A file at ``dest`` that differs both from the target version and from the
    version last checked out (or added) there is a local edit: checkout refuses
    before touching anything, unless ``force``. Nothing is written through a
    symlink under ``dest`` (:class:`UnsafePath` names it); a symlink where a
    file goes is replaced by the file.
    """
    ws = resolve_workspace(ws)
    progress = progress or NoProgress()
    version = get_version(ws, ref)
    target = load_manifest(ws, version)
    root = Path(dest) if dest is not None else source_path(ws, version)
    if target.single and root.is_dir():
        root = root / target.entries[0].path
    base_dir = root.parent if target.single else root
    baseline = _baseline(ws, version, root)
    on_disk = _on_disk(ws, root, target.single)
    tracked = baseline.by_path if baseline else {}
    wanted = target.by_path
    edits = [p for p, digest in on_disk.items() if _is_local_edit(p, digest, wanted, tracked)]
    if edits and not force:
        shown = ", ".join(edits[:10]) + (" ..." if len(edits) > 10 else "")
        raise Conflict(f"{len(edits)} file(s) in {root} have local changes that checkout of "
                       f"{version.ref} would overwrite: {shown}",
                       hint="commit them as a new version with `keel data add`, move them "
                            "away, or pass --force to discard them")
    to_write = [e for e in target.entries if on_disk.get(e.path) != e.digest]
    stale = [p for p in tracked if p not in wanted and p in on_disk]
    progress.start(f"checking out {version.ref}", sum(e.size for e in to_write))
    # Never through a symlink under the destination (see keel.data.destination).
    with Destination(base_dir) as into:
        for entry in to_write:
            rel = root.name if target.single else entry.path
            materialise(ws.blobs, entry.digest, into, rel, entry.mode | 0o200)  # theirs to edit
            progress.advance(entry.size)
        for rel in stale:
            into.remove(rel)
    progress.done()
    _remember(ws, root, version)
    return CheckoutResult(version, root, tuple(e.path for e in to_write), tuple(stale),
                          len(target.entries) - len(to_write))


def _is_local_edit(path: str, digest: str, wanted: dict[str, Any],
                   tracked: dict[str, Any]) -> bool:
    """True if checkout would overwrite or delete bytes keel did not put there."""
    if path in wanted and digest == wanted[path].digest:
        return False  # already what the target wants
    if path in tracked and digest == tracked[path].digest:
        return False  # unmodified since keel wrote it: safe to replace
    return path in wanted or path in tracked  # untracked extra files are left alone


def _on_disk(ws: Workspace, root: Path, single: bool) -> dict[str, str]:
    if not root.exists():
        return {}
    if single and root.is_dir():
        raise Conflict(f"{root} is a folder but the version is a single file",
                       hint="pass a file path or an empty destination")
    return {e.path: e.digest for e in working_manifest(ws, root).entries}


def _state_file(ws: Workspace) -> Path:
    return ws.folder / "cache" / "checkouts.json"


def _baseline(ws: Workspace, version: DatasetVersion, root: Path) -> Manifest | None:
    """The version last written to ``root``; for the add location, the latest version."""
    state = _read_state(ws)
    ref = state.get(str(root.absolute()))
    try:
        if ref:
            return load_manifest(ws, get_version(ws, ref))
        if version.source and root.absolute() == source_path(ws, version).absolute():
            return load_manifest(ws, ws.store.get_dataset_version(version.dataset))
    except NotFound:
        return None
    return None


def _read_state(ws: Workspace) -> dict[str, str]:
    try:
        return dict(json.loads(_state_file(ws).read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def _remember(ws: Workspace, root: Path, version: DatasetVersion) -> None:
    state = _read_state(ws)
    state[str(root.absolute())] = version.ref
    path = _state_file(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(state, indent=1))
    os.replace(temp, path)
