"""``keel data status``: what changed in the working copy since the latest version."""

from __future__ import annotations

import os
import time
from pathlib import Path

from keel.blobs.statcache import Key, entry_key
from keel.data import index
from keel.data.manifest import Manifest, ManifestDiff, ManifestEntry
from keel.data.quick import quick_status
from keel.data.scan import Listing, digests, gc_paused, scan
from keel.data.version import get_version, load_manifest, source_path, stat_cache
from keel.workspace import Workspace, resolve_workspace


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


def status(ref: str, path: Path | None = None, ws: Workspace | None = None) -> ManifestDiff:
    """Files added, removed or modified at ``path`` (default: where the data was
    added from) compared with the version ``ref`` names (default: latest)."""
    ws = resolve_workspace(ws)
    version = get_version(ws, ref)
    here = path or source_path(ws, version)
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
