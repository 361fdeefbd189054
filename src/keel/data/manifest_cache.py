"""Checked manifests of big versions, kept locally in a form that loads fast.

Decoding a 20,000-file manifest takes 40-70 ms on the 2-core VM: read and
verify the blob, parse the JSON, then check every path, digest, size and
mode (``keel.data.manifest``). That was a third of what ``keel data
checkout`` spends besides creating files. A manifest's digest names its
content, so the outcome of those checks never changes: this cache keeps the
rows of a manifest that passed them, in the standard library's ``marshal``
format, under the manifest's digest, and loads them in ~12 ms.

Like the stat cache (``keel.blobs.statcache``) it is local, in
``.keel/cache/manifests/``, whatever the store; losing or damaging a file
only costs a decode. Its files are trusted as the rest of ``.keel/`` is
(the checks guard against manifests that travelled: pulled from a remote,
sent by a server), and only keel writes them, after the checks passed.
marshal's format belongs to one Python version, so file names carry the
Python and marshal versions (``TAG``). Only manifests of CACHED_FROM
files or more are kept (smaller ones decode in a few milliseconds), and at
most KEEP of them: the least recently used go first.
"""

from __future__ import annotations

import marshal
import os
import sys
import uuid
from contextlib import suppress
from pathlib import Path

from keel.data.manifest import Manifest, ManifestEntry

CACHED_FROM = 1_000  # files in a manifest
KEEP = 32  # manifests
FORMAT = 1
TAG = f"m{FORMAT}-py{sys.version_info[0]}{sys.version_info[1]}-m{marshal.version}"


class ManifestCache:
    """``manifest digest -> Manifest``, for manifests that passed their checks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, digest: str) -> Path:
        return self.folder / f"{digest}.{TAG}.bin"

    def get(self, digest: str) -> Manifest | None:
        """The cached manifest, or None (never cached, or the file is unreadable)."""
        path = self._file(digest)
        try:
            single, rows = marshal.loads(path.read_bytes())
            entries = tuple(map(ManifestEntry._make, rows))
        except (OSError, ValueError, EOFError, TypeError):
            return None  # missing or damaged: decoded from the blob instead
        with suppress(OSError):
            os.utime(path)  # recently used: kept (see _trim)
        return Manifest(entries, bool(single))

    def put(self, digest: str, manifest: Manifest) -> None:
        """Keep a checked manifest (a big one), best effort: a read-only or full
        workspace simply decodes it again next time."""
        if len(manifest.entries) < CACHED_FROM:
            return
        target = self._file(digest)
        temp = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            temp.write_bytes(marshal.dumps((manifest.single, [tuple(e) for e in
                                                              manifest.entries])))
            os.replace(temp, target)
        except OSError:
            temp.unlink(missing_ok=True)
            return
        self._trim()

    def _trim(self) -> None:
        """Remove the least recently used files beyond KEEP (and other formats')."""
        try:
            files = [(entry.stat().st_mtime_ns, Path(entry.path))
                     for entry in os.scandir(self.folder) if entry.name.endswith(".bin")]
        except OSError:
            return
        current = sorted((item for item in files if item[1].name.endswith(f".{TAG}.bin")),
                         reverse=True)
        stale = [path for _mtime, path in current[KEEP:]]
        stale += [path for _mtime, path in files if not path.name.endswith(f".{TAG}.bin")]
        for path in stale:
            with suppress(OSError):
                path.unlink()
