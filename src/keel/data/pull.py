"""``keel data pull``: fetch versions and their blobs from a remote, verified."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from keel.blobs import copy_blob
from keel.data.manifest import Manifest
from keel.data.progress import NoProgress, Progress
from keel.data.push import TRANSFERS, TransferResult
from keel.data.remote import Remote, open_remote, unreachable
from keel.entities import DatasetVersion
from keel.errors import Conflict, CorruptData, KeelError, NotFound
from keel.workspace import Workspace, resolve_workspace


def pull(remote_url: str | None = None, names: list[str] | None = None,
         progress: Progress | None = None, ws: Workspace | None = None) -> TransferResult:
    """Fetch every version of ``names`` (default: all) that the remote holds.

    Blobs come first, each verified on arrival; a version is registered
    locally only once all of its blobs are here. A corrupted blob at the
    remote is refused, naming the dataset file it belongs to.
    """
    ws = resolve_workspace(ws)
    progress = progress or NoProgress()
    remote = open_remote(ws, remote_url)
    try:
        records = [DatasetVersion.from_dict(r) for r in remote.read_records()]
    except Exception as exc:
        raise unreachable(remote.url, exc) from exc
    if not records:
        raise NotFound(f"remote {remote.url} holds no dataset versions",
                       hint="check the URL, or push to it first with `keel data push`")
    if names:
        records = [r for r in records if r.dataset in names]
        missing_names = set(names) - {r.dataset for r in records}
        if missing_names:
            raise NotFound(f"remote {remote.url} has no dataset {sorted(missing_names)[0]!r}")
    new = [r for r in records if not _already_local(ws, r)]
    owners = _fetch_manifests(ws, remote, new)
    todo = sorted(set(owners) - ws.blobs.digests())
    progress.start(f"pulling from {remote.url}", len(todo))

    def fetch(digest: str) -> int:
        try:
            size = copy_blob(remote.blobs, ws.blobs, digest)
        except CorruptData as exc:
            raise CorruptData(f"{owners[digest]} (blob {digest}) is corrupted at remote "
                              f"{remote.url}; refused it, nothing was stored",
                              hint="push that version again from a workspace that has "
                                   "intact data") from exc
        progress.advance()
        return size

    try:
        with ThreadPoolExecutor(TRANSFERS) as pool:
            sizes = list(pool.map(fetch, todo))
    except KeelError:
        raise
    except Exception as exc:
        raise unreachable(remote.url, exc) from exc
    finally:
        progress.done()
    for record in new:
        fields = {k: v for k, v in record.to_dict().items()
                  if k not in ("id", "dataset", "version", "ref")}
        ws.store.add_dataset_version(record.dataset, fields, version=record.version)
    return TransferResult(remote.url, tuple(r.ref for r in new), len(todo), sum(sizes),
                          len(owners) - len(todo))


def _already_local(ws: Workspace, record: DatasetVersion) -> bool:
    try:
        local = ws.store.get_dataset_version(record.dataset, record.version)
    except NotFound:
        return False
    if local.manifest_digest != record.manifest_digest:
        raise Conflict(f"{record.ref} differs between this workspace and the remote",
                       hint="the two histories diverged; add the remote data under a new "
                            "name or start from a fresh workspace")
    return True


def _fetch_manifests(ws: Workspace, remote: Remote, records: list[DatasetVersion]
                     ) -> dict[str, str]:
    """Pull each version's manifest; return every blob needed -> a file that uses it."""
    owners: dict[str, str] = {}
    for record in records:
        try:
            copy_blob(remote.blobs, ws.blobs, record.manifest_digest)
        except CorruptData as exc:
            raise CorruptData(f"the manifest of {record.ref} is corrupted at remote "
                              f"{remote.url}; refused it", hint="push it again") from exc
        except KeelError:
            raise
        except Exception as exc:
            raise unreachable(remote.url, exc) from exc
        manifest = Manifest.from_bytes(ws.blobs.get_bytes(record.manifest_digest))
        for entry in manifest.entries:
            owners.setdefault(entry.digest, f"{record.ref}:{entry.path}")
        for extra in (record.profiles_digest, record.checks_digest):
            if extra:
                owners.setdefault(extra, f"{record.ref} (profiles/checks)")
    return owners
