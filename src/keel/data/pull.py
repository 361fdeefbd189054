"""``keel data pull``: fetch versions and their blobs from a remote, verified."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from keel.blobs import copy_blob
from keel.data.manifest import Manifest
from keel.data.progress import NoProgress, Progress
from keel.data.push import TRANSFERS, TransferResult
from keel.data.record import decode_record
from keel.data.remote import Remote, open_remote, unreachable
from keel.entities import DatasetVersion
from keel.errors import Conflict, CorruptData, KeelError, NotFound
from keel.workspace import Workspace, resolve_workspace


def pull(remote_url: str | None = None, names: list[str] | None = None,
         progress: Progress | None = None, ws: Workspace | None = None) -> TransferResult:
    """Fetch every version of ``names`` (default: all) that the remote holds.

    Every record and every manifest is checked first (``keel.data.record``,
    ``keel.data.manifest``): one that keel would not write is refused, naming
    it, before anything is stored. Then blobs, each verified on arrival; a
    version is registered locally only once all of its blobs are here. A
    corrupted blob at the remote is refused, naming the dataset file it
    belongs to.
    """
    ws = resolve_workspace(ws)
    progress = progress or NoProgress()
    remote = open_remote(ws, remote_url)
    try:
        raw = remote.read_records()
    except Exception as exc:
        raise unreachable(remote.url, exc) from exc
    if not raw:
        raise NotFound(f"remote {remote.url} holds no dataset versions",
                       hint="check the URL, or push to it first with `keel data push`")
    if names:  # by the folder they are filed in: records of other datasets are not read
        raw = [(where, data) for where, data in raw if where.split("/", 1)[0] in names]
        missing_names = set(names) - {where.split("/", 1)[0] for where, _data in raw}
        if missing_names:
            raise NotFound(f"remote {remote.url} has no dataset {sorted(missing_names)[0]!r}")
    records = [decode_record(where, data) for where, data in raw]
    new = [r for r in records if not _already_local(ws, r)]
    manifests = _fetch_manifests(remote, new)
    with ws.writing():  # gc keeps what arrives until the versions refer to it
        for data, _manifest in manifests.values():  # all checked: now they may be stored
            ws.blobs.put_bytes(data)
        owners = _owners(new, manifests)
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


def _fetch_manifests(remote: Remote, records: list[DatasetVersion]
                     ) -> dict[str, tuple[bytes, Manifest]]:
    """Each version's manifest (verified and checked) and its bytes, by manifest
    digest; nothing is stored locally yet."""
    manifests: dict[str, tuple[bytes, Manifest]] = {}
    for record in records:
        if record.manifest_digest in manifests:
            continue
        try:
            data = remote.blobs.get_bytes(record.manifest_digest)
        except CorruptData as exc:
            raise CorruptData(f"the manifest of {record.ref} is corrupted at remote "
                              f"{remote.url}; refused it, nothing was pulled",
                              hint="push it again") from exc
        except KeelError:
            raise
        except Exception as exc:
            raise unreachable(remote.url, exc) from exc
        where = f"the manifest of {record.ref} at remote {remote.url}"
        manifests[record.manifest_digest] = (data, Manifest.from_bytes(data, where))
    return manifests


def _owners(records: list[DatasetVersion], manifests: dict[str, tuple[bytes, Manifest]]
            ) -> dict[str, str]:
    """Every blob the records need -> a file that uses it (named in errors)."""
    owners: dict[str, str] = {}
    for record in records:
        for entry in manifests[record.manifest_digest][1].entries:
            owners.setdefault(entry.digest, f"{record.ref}:{entry.path}")
        for extra in (record.profiles_digest, record.checks_digest):
            if extra:
                owners.setdefault(extra, f"{record.ref} (profiles/checks)")
    return owners
