"""Looking dataset versions up and reading what they hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.blobs.statcache import StatCache
from keel.data.manifest import Manifest
from keel.data.manifest_cache import ManifestCache
from keel.data.ref import parse_ref
from keel.errors import InvalidInput

if TYPE_CHECKING:  # the entities are loaded with a store, not by a quick status
    from keel.entities import DatasetVersion
    from keel.workspace import Workspace


def get_version(ws: Workspace, ref: str) -> DatasetVersion:
    """The version a reference names: ``name``, ``name@2``, ``name@latest``."""
    parsed = parse_ref(ref)
    return ws.reader.get_dataset_version(parsed.name, parsed.version)


def load_manifest(ws: Workspace, version: DatasetVersion) -> Manifest:
    """The version's manifest, read from the blob store, verified and checked
    (paths inside the dataset, no setuid bits: see ``keel.data.manifest``); a big
    one comes from the local cache of checked manifests once it has been read."""
    cache = ManifestCache(ws.folder / "cache" / "manifests")
    manifest = cache.get(version.manifest_digest)
    if manifest is None:
        manifest = Manifest.from_bytes(ws.blobs.get_bytes(version.manifest_digest),
                                       where=version.ref)
        cache.put(version.manifest_digest, manifest)
    return manifest


def load_json_blob(ws: Workspace, digest: str | None) -> dict[str, Any]:
    """A JSON document kept in the blob store (profiles, check reports); {} if none."""
    if digest is None:
        return {}
    return dict(json.loads(ws.blobs.get_bytes(digest)))


def stat_cache(ws: Workspace) -> StatCache:
    """The workspace's local digest cache."""
    return StatCache(ws.folder / "cache" / "stat")


def source_path(ws: Workspace, version: DatasetVersion) -> Path:
    """Where a version's data was added from (absolute).

    A version pulled from a remote whose record named a folder outside its
    workspace keeps no source (see ``keel.data.record``): :class:`InvalidInput`.
    """
    if not version.source:
        raise InvalidInput(f"{version.ref} has no source folder here (it was pulled from a "
                           "remote that recorded a folder outside its workspace)",
                           hint=f"name a destination: keel data checkout {version.ref} DEST")
    source = Path(version.source)
    return source if source.is_absolute() else ws.root / source


def relative_source(ws: Workspace, path: Path) -> str:
    """A path relative to the workspace root when inside it, so clones agree."""
    path = path.absolute()
    try:
        return path.relative_to(ws.root).as_posix()
    except ValueError:
        return str(path)
