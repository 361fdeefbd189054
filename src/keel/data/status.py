"""``keel data status``: what changed in the working copy since the latest version."""

from __future__ import annotations

from pathlib import Path

from keel.data.manifest import Manifest, ManifestDiff, ManifestEntry
from keel.data.scan import digests, gc_paused, scan
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
    return Manifest.build([ManifestEntry(f.path, found[f.path], f.key[2], f.mode)
                           for f in files], single)


def status(ref: str, path: Path | None = None, ws: Workspace | None = None) -> ManifestDiff:
    """Files added, removed or modified at ``path`` (default: where the data was
    added from) compared with the version ``ref`` names (default: latest)."""
    ws = resolve_workspace(ws)
    version = get_version(ws, ref)
    here = path or source_path(ws, version)
    stored = {e.path: e.digest for e in load_manifest(ws, version).entries}
    if not here.exists():  # the whole working copy was deleted or moved
        return ManifestDiff(added=(), removed=tuple(sorted(stored)), modified=())
    with gc_paused():
        files, _single = scan(here)
        cache = stat_cache(ws)
        try:
            current = digests(files, cache)  # only files whose stat changed are read
        finally:
            cache.close()
    return ManifestDiff(
        added=tuple(sorted(current.keys() - stored.keys())),
        removed=tuple(sorted(stored.keys() - current.keys())),
        modified=tuple(sorted(p for p, d in current.items() if p in stored and stored[p] != d)))
