"""``keel data push``: send versions and the blobs they need to a remote."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from keel.blobs import copy_blob
from keel.data.progress import NoProgress, Progress
from keel.data.remote import open_remote, unreachable
from keel.data.version import load_manifest
from keel.entities import DatasetVersion
from keel.errors import KeelError
from keel.workspace import Workspace, resolve_workspace

# Parallel transfers: object stores answer each request in tens of ms, so
# overlapping 16 hides most of that latency.
TRANSFERS = 16


@dataclass(frozen=True)
class TransferResult:
    """What a push or pull moved."""

    remote: str
    versions: tuple[str, ...]
    blobs_sent: int
    bytes_sent: int
    blobs_present: int


def needed_blobs(ws: Workspace, versions: list[DatasetVersion]) -> set[str]:
    """Every blob the versions refer to: manifests, files, profiles, check reports."""
    needed: set[str] = set()
    for version in versions:
        needed.add(version.manifest_digest)
        needed.update(e.digest for e in load_manifest(ws, version).entries)
        needed.update(d for d in (version.profiles_digest, version.checks_digest) if d)
    return needed


def select_versions(ws: Workspace, names: list[str] | None) -> list[DatasetVersion]:
    if names:
        return [v for n in names for v in ws.store.list_dataset_versions(n)]
    return [v for latest in ws.store.list_datasets()
            for v in ws.store.list_dataset_versions(latest.dataset)]


def push(remote_url: str | None = None, names: list[str] | None = None,
         progress: Progress | None = None, ws: Workspace | None = None) -> TransferResult:
    """Send every version of ``names`` (default: all datasets), only missing blobs."""
    ws = resolve_workspace(ws)
    progress = progress or NoProgress()
    remote = open_remote(ws, remote_url)
    versions = select_versions(ws, names)
    needed = needed_blobs(ws, versions)
    try:
        present = remote.blobs.digests()
        missing = sorted(needed - present)
        progress.start(f"pushing to {remote.url}", len(missing))

        def send(digest: str) -> int:
            size = copy_blob(ws.blobs, remote.blobs, digest)
            progress.advance()
            return size

        with ThreadPoolExecutor(TRANSFERS) as pool:
            sizes = list(pool.map(send, missing))
        for version in versions:
            remote.write_record(version.dataset, version.version, version.to_dict())
    except KeelError:
        raise
    except Exception as exc:
        raise unreachable(remote.url, exc) from exc
    finally:
        progress.done()
    return TransferResult(remote.url, tuple(v.ref for v in versions), len(missing), sum(sizes),
                          len(needed) - len(missing))
