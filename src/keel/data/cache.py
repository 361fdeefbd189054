"""Read-only local copies of dataset versions, for runs that read them by name."""

from __future__ import annotations

from pathlib import Path

from keel.data.materialise import materialise
from keel.data.version import load_manifest
from keel.entities import DatasetVersion
from keel.workspace import Workspace


def cached_copy(ws: Workspace, version: DatasetVersion) -> Path:
    """A local path holding exactly ``version``'s files (the file itself for a
    single-file dataset), materialised once under ``.keel/cache/datasets/``.

    Treat it as read-only: it is shared by every run that reads the version.
    """
    folder = ws.folder / "cache" / "datasets" / version.dataset / str(version.version)
    manifest = load_manifest(ws, version)
    marker = folder / ".keel-complete"
    if not marker.exists():
        for entry in manifest.entries:
            materialise(ws.blobs, entry.digest, folder / entry.path, entry.mode)
        marker.write_text(version.manifest_digest)
    return folder / manifest.entries[0].path if manifest.single else folder
