"""Read-only local copies of dataset versions, for runs that read them by name.

``run.use_dataset``, ``keel model evaluate`` and the promotion gates read
these copies, so a copy that changed after it was written would change
their results (an appended holdout turned an accuracy into 0.0). Each copy
is therefore made read-only and checked on every use, cheaply:

- ``.keel/cache/datasets/NAME/N/`` holds exactly the version's files, mode
  ``0o444`` (executables keep their x bits);
- ``.keel/cache/datasets/NAME/N.json``, beside the folder (so that listing
  the folder shows only the data), records the manifest digest, the
  folders, and per file (size, mtime_ns, inode, ctime_ns, mode) as last
  verified.

On each use every entry of the folder is ``lstat``-ed. When the entries
are exactly the recorded ones, the copy is intact and nothing else is read:
~80 ms for 20,000 files, ~45 of them the ``lstat`` calls (unchecked, as
before, a use took ~25 ms, mostly loading the manifest, which this skips). Otherwise the
manifest is loaded: a file whose stat moved is re-hashed, and one that no
longer has its digest, is missing, or is not a regular file is written
again from the blob store; entries the version does not have are removed.
Stat keys whose times are within ``RACY_NS`` of the check (see
``keel.data.index``) are not recorded, so a write in the same clock tick as
the check is still caught on the next use. One process at a time checks a
copy (an exclusive ``flock`` on ``N.lock``).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from keel.blobs.digest import hash_file
from keel.data.destination import Destination
from keel.data.index import RACY_NS
from keel.data.manifest import Manifest, ManifestEntry
from keel.data.materialise import materialise
from keel.data.version import load_manifest
from keel.entities import DatasetVersion
from keel.workspace import Workspace

FORMAT = 2  # 1 was the .keel-complete marker inside the folder
StatKey = list[int]  # size, mtime_ns, inode, ctime_ns, mode (a list: as JSON decodes it)


@dataclass
class _Record:
    """What was verified in a cached copy (``N.json``)."""

    manifest: str
    single: bool
    files: dict[str, StatKey | None]  # None: too recent to vouch for (racy)
    folders: list[str]


def cached_copy(ws: Workspace, version: DatasetVersion) -> Path:
    """A local path holding exactly ``version``'s files (the file itself for a
    single-file dataset), under ``.keel/cache/datasets/``: made once, read-only,
    and verified (and repaired) on every call, as the module docstring says.
    """
    base = ws.folder / "cache" / "datasets" / version.dataset
    folder = base / str(version.version)
    record_file = base / f"{version.version}.json"
    base.mkdir(parents=True, exist_ok=True)
    with _locked(base / f"{version.version}.lock"):
        if folder.is_symlink():  # the copy must be here, not wherever a link points
            folder.unlink()
        record = _read_record(record_file, version.manifest_digest)
        found, folders = _listing(folder)
        if record is None or not _unchanged(record, found, folders):
            record = _repair(ws, version, folder, record, found, folders)
            _write_record(record_file, record)
    return folder / next(iter(record.files)) if record.single else folder


def cached_mode(mode: int) -> int:
    """Read-only for everyone; executables stay executable."""
    return (mode & 0o555) | 0o444


def _unchanged(record: _Record, found: dict[str, os.stat_result], folders: list[str]) -> bool:
    """True if the folder holds exactly the recorded entries, with their recorded keys."""
    files = record.files
    return (len(found) == len(files) and sorted(folders) == record.folders
            and all(files.get(rel) == _key(st) for rel, st in found.items()))


def _repair(ws: Workspace, version: DatasetVersion, folder: Path, record: _Record | None,
            found: dict[str, os.stat_result], folders: list[str]) -> _Record:
    """Check the copy against the manifest, put right what is wrong; the new record."""
    racy_from = time.time_ns() - RACY_NS  # before any file is read
    manifest = load_manifest(ws, version)
    recorded = record.files if record is not None else {}
    keys: dict[str, StatKey | None] = {}
    redo: list[ManifestEntry] = []
    base = f"{folder}/"  # strings, not Paths: ~7 us less per file
    for entry in manifest.entries:
        st = found.pop(entry.path, None)
        key = _key(st) if st is not None else []
        if st is None or not _intact(base + entry.path, entry, st, key,
                                     recorded.get(entry.path)):
            redo.append(entry)
        else:
            keys[entry.path] = None if _racy(key, racy_from) else key
    needed = _folders_of(manifest)
    with Destination(folder) as into:
        for rel in found:  # not in the version (the .keel-complete marker of format 1 too)
            into.remove(rel)
        for rel in folders:
            if rel not in needed:
                shutil.rmtree(folder / rel, ignore_errors=True)
        for entry in redo:
            materialise(ws.blobs, entry.digest, into, entry.path, cached_mode(entry.mode))
            key = _key(os.lstat(base + entry.path))
            keys[entry.path] = None if _racy(key, racy_from) else key
    return _Record(version.manifest_digest, manifest.single, keys, sorted(needed))


def _folders_of(manifest: Manifest) -> set[str]:
    """Every folder the version's files are in, at any depth."""
    folders: set[str] = set()
    for parent in {e.path.rpartition("/")[0] for e in manifest.entries}:
        while parent and parent not in folders:
            folders.add(parent)
            parent = parent.rpartition("/")[0]
    return folders


def _intact(path: str, entry: ManifestEntry, st: os.stat_result, key: StatKey,
            recorded: StatKey | None) -> bool:
    """True if the file at ``path`` (whose lstat is ``st``) is the version's file."""
    if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != cached_mode(entry.mode):
        return False
    if key == recorded:
        return True  # unchanged since it was verified
    return st.st_size == entry.size and hash_file(path) == entry.digest


def _key(st: os.stat_result) -> StatKey:
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_mode]


def _racy(key: StatKey, racy_from: int) -> bool:
    """Too recent to vouch for: a write in the same clock tick would not move it,
    so it is not recorded and the file is re-hashed on the next use."""
    return key[1] >= racy_from or key[3] >= racy_from


def _listing(folder: Path) -> tuple[dict[str, os.stat_result], list[str]]:
    """Every non-folder entry under ``folder`` with its lstat, and every folder;
    symlinks are listed, never followed."""
    found: dict[str, os.stat_result] = {}
    folders: list[str] = []

    def visit(path: str, prefix: str) -> None:
        try:
            entries = list(os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                folders.append(rel)
                visit(entry.path, rel + "/")
            else:
                found[rel] = entry.stat(follow_symlinks=False)

    visit(str(folder), "")
    return found, folders


def _read_record(path: Path, manifest_digest: str) -> _Record | None:
    """The record of this manifest's copy; None if none, stale or damaged."""
    try:
        body = json.loads(path.read_bytes())
        record = _Record(body["manifest"], body["single"], body["files"], body["folders"])
        if body["format"] != FORMAT or record.manifest != manifest_digest:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (isinstance(record.files, dict) and record.files and isinstance(record.folders, list)):
        return None
    return record


def _write_record(path: Path, record: _Record) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    temp.write_text(json.dumps({"format": FORMAT, "manifest": record.manifest,
                                "single": record.single, "files": record.files,
                                "folders": record.folders}, separators=(",", ":")))
    os.replace(temp, path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a no-op where there is no flock)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent checks may redo each other's work
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
