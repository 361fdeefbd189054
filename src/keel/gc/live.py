"""Every blob a workspace still needs: what its metadata refers to, and what the
manifests it refers to list.

Run artifacts (a logged model's files among them), dataset versions (their
manifests, every file the manifests list, profiles and check reports) and
registered model versions (their package manifests and every file those
list). A manifest that cannot be read is an error, never a reason to think
its files unreferenced.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from keel.blobs import BlobStore
from keel.data.manifest import Manifest
from keel.errors import CorruptData, KeelError, NotFound
from keel.packaging.manifest import PackageManifest
from keel.workspace import Workspace


@dataclass
class LiveSet:
    """Digests still referenced, and where each kind came from (for reports)."""

    digests: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def __contains__(self, digest: object) -> bool:
        return digest in self.digests


def live_digests(ws: Workspace, without_runs: Collection[str] = (),
                 without_versions: Collection[tuple[str, int]] = (),
                 without_datasets: Collection[int] = ()) -> LiveSet:
    """The live set of ``ws`` (see the module docstring), as if the runs, model
    versions and dataset versions (ids) given were already purged."""
    refs = ws.store.referenced_digests(without_runs, without_versions, without_datasets)
    live = LiveSet()
    live.digests |= refs["artifacts"]
    live.counts["run artifacts"] = len(refs["artifacts"])
    live.digests |= refs["dataset_documents"]
    live.digests |= refs.get("inference_log", set())
    live.counts["inference log segments"] = len(refs.get("inference_log", set()))
    live.digests |= refs.get("model_documents", set())
    live.digests |= refs.get("logged_models", set())
    live.counts["logged model files"] = len(refs.get("logged_models", set()))
    dataset_files = 0
    for digest in refs["dataset_manifests"]:
        live.digests.add(digest)
        manifest = Manifest.from_bytes(_read(ws, digest))
        live.digests.update(e.digest for e in manifest.entries)
        dataset_files += len(manifest.entries)
    live.counts["dataset files"] = dataset_files
    model_files = 0
    for digest in refs["models"]:
        live.digests.add(digest)
        package = _package_manifest(ws, digest)
        live.digests.update(f.digest for f in package.files.values())
        model_files += len(package.files)
    live.counts["model package files"] = model_files
    return live


def _package_manifest(ws: Workspace, digest: str) -> PackageManifest:
    return PackageManifest.from_yaml(_read(ws, digest), where=f"package {digest[:12]}")


def _read(ws: Workspace, digest: str) -> bytes:
    try:
        return ws.blobs.get_bytes(digest)
    except NotFound as exc:
        raise CorruptData(f"blob {digest} is referenced by this workspace's metadata but is "
                          "missing; gc stops rather than guess what it listed",
                          hint="pull it from a remote (keel data pull) or restore the blob "
                               "store, then run gc again") from exc


def remote_live_digests(ws: Workspace, remote_url: str) -> tuple[BlobStore, LiveSet]:
    """A data remote's blob store and what its dataset records need: every
    record's manifest, the files the manifest lists, profiles and check reports.
    ``remote_url`` is a URL or folder, or ``default`` for the configured remote."""
    from keel.data.record import decode_record
    from keel.data.remote import open_remote, unreachable

    remote = open_remote(ws, None if remote_url == "default" else remote_url)
    try:
        records = [decode_record(where, data) for where, data in remote.read_records()]
    except KeelError:
        raise
    except Exception as exc:
        raise unreachable(remote.url, exc) from exc
    live = LiveSet()
    files = 0
    for record in records:
        extras = (record.profiles_digest, record.checks_digest)
        live.digests.update(d for d in (record.manifest_digest, *extras) if d)
        try:
            manifest = Manifest.from_bytes(remote.blobs.get_bytes(record.manifest_digest),
                                           where=record.ref)
        except NotFound as exc:
            raise CorruptData(f"the manifest of {record.ref} is missing at remote "
                              f"{remote.url}; gc stops rather than guess what it listed",
                              hint="push that version again") from exc
        live.digests.update(e.digest for e in manifest.entries)
        files += len(manifest.entries)
    live.counts = {"remote dataset versions": len(records), "remote dataset files": files}
    return remote.blobs, live
