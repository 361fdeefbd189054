"""``keel data status``: what changed in a working folder since the version it holds.

The version compared with is the one named (``wine@2``), or for a bare name
(``wine``) the version last checked out or added at that folder
(``keel.data.worktree``): after ``checkout wine@1`` the folder is compared
with wine@1, not with the latest version. Without such a record, the latest.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from keel.blobs.statcache import Key, entry_key
from keel.data import index
from keel.data.manifest import Manifest, ManifestDiff, ManifestEntry
from keel.data.quick import quick_status
from keel.data.ref import is_pinned, parse_ref
from keel.data.scan import Listing, digests, gc_paused, scan
from keel.data.version import get_version, load_manifest, source_path, stat_cache
from keel.data.worktree import folders_of, held, held_at
from keel.errors import NotFound
from keel.workspace import Workspace, resolve_workspace

if TYPE_CHECKING:  # the entities are loaded with a store, not by a quick status
    from keel.entities import DatasetVersion


@dataclass(frozen=True)
class FolderStatus(ManifestDiff):
    """A :class:`ManifestDiff` of a working folder against the version it was
    compared with (the one checked out or added there, unless one was named):
    ``ref`` names it; ``version`` is its record when it was read from the store
    (None when the folder's record and index answered alone)."""

    version: DatasetVersion | None = None
    ref: str = ""


def working_manifest(ws: Workspace, path: Path) -> Manifest:
    """A manifest of the files at ``path`` now (stat cache first, hashing only what changed)."""
    files, single = scan(path)
    cache = stat_cache(ws)
    try:
        found = digests(files, cache)
    finally:
        cache.close()
    # Not Manifest.build: this describes what is on disk, to compare with, and a
    # stray file whose name no version may hold is left alone, not refused.
    return Manifest(tuple(sorted((ManifestEntry(f.path, found[f.path], f.key[2], f.mode)
                                  for f in files), key=lambda e: e.path)), single)


def status(ref: str, path: Path | None = None, ws: Workspace | None = None) -> FolderStatus:
    """Files added, removed or modified at ``path`` (default: where the data was
    added from) compared with the version ``ref`` names; for a bare name, the
    version that folder holds (last checked out or added there), else the latest.
    ``.version`` says which version that was."""
    ws = resolve_workspace(ws)
    found = _from_record(ws, ref, path)
    if found is not None:
        return found
    version = get_version(ws, ref)
    here = Path(path) if path is not None else source_path(ws, version)
    version = _held(ws, ref, version, here)
    diff = _compare(ws, version, here)
    return FolderStatus(diff.added, diff.removed, diff.modified, version, version.ref)


def _from_record(ws: Workspace, ref: str, path: Path | None) -> FolderStatus | None:
    """The no-store answer: the folder's record names the version it holds and its
    manifest digest, and the working-folder index tied to that digest says what
    changed. None (and the store is asked) when any of that is missing: a named
    version, no record or several folders for the dataset, no usable index."""
    if is_pinned(ref):
        return None
    name = parse_ref(ref).name
    if path is not None:
        record = held(ws, Path(path), name)
        folder = Path(path)
    else:
        candidates = folders_of(ws, name)
        if len(candidates) != 1:
            return None
        folder, record = candidates[0]
    if record is None or record.manifest is None:
        return None
    with gc_paused():
        diff = quick_status(ws, folder, record.manifest)
    if diff is None:
        return None
    return FolderStatus(diff.added, diff.removed, diff.modified, None, record.ref)


def _held(ws: Workspace, ref: str, latest: DatasetVersion, here: Path) -> DatasetVersion:
    """The version to compare ``here`` with (see the module docstring)."""
    if is_pinned(ref):
        return latest
    held = held_at(ws, here, latest.dataset)
    if held is None or held == latest.ref:
        return latest
    try:
        return get_version(ws, held)
    except NotFound:  # deleted since: the latest is the best guess
        return latest


def _compare(ws: Workspace, version: DatasetVersion, here: Path) -> ManifestDiff:
    # The working-folder index answers without the manifest or the stat cache
    # when it describes this version (see keel.data.index).
    with gc_paused():
        quick = quick_status(ws, here, version.manifest_digest)
    if quick is not None:
        return quick
    stored = {e.path: e.digest for e in load_manifest(ws, version).entries}
    if not here.exists():  # the whole working copy was deleted or moved
        return ManifestDiff(added=(), removed=tuple(sorted(stored)), modified=())
    with gc_paused():
        racy_from = time.time_ns() - index.RACY_NS  # before any file is read
        top = entry_key(os.stat(here))  # before the scan lists it
        listing: Listing = {}
        files, single = scan(here, listing)
        cache = stat_cache(ws)
        keys: dict[str, Key] = {}
        try:
            current = digests(files, cache, keys=keys)  # only files whose stat changed are read
        finally:
            cache.close()
        if not single:  # so that the next status of this folder can use the index
            index.save(ws, index.build(str(here.resolve()), top, version.manifest_digest,
                                       listing, keys, stored, current, racy_from))
    return ManifestDiff(
        added=tuple(sorted(current.keys() - stored.keys())),
        removed=tuple(sorted(stored.keys() - current.keys())),
        modified=tuple(sorted(p for p, d in current.items() if p in stored and stored[p] != d)))
