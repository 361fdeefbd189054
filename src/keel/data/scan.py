"""Find the files under a path and learn their digests, fast.

Unchanged files are answered from the stat cache; the rest are hashed on a
thread pool (file reads release the GIL; files of 8 MiB and more use BLAKE3's
own threads). A file that changes while it is read is re-read, and refused
if it keeps changing, so a digest never describes bytes that were not there.
"""

from __future__ import annotations

import gc
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from functools import partial
from pathlib import Path
from typing import NamedTuple

from keel.blobs import BlobStore
from keel.blobs.digest import MULTITHREAD_BYTES, hash_bytes, hash_file
from keel.blobs.pack import PACKED_BELOW, PackWriter
from keel.blobs.statcache import Entry, Key, StatCache, entry_key, stat_key
from keel.data.progress import NoProgress, Progress
from keel.errors import InvalidInput, NotFound, UnsafePath

SKIPPED_DIRS = {".keel", ".git"}
RETRIES = 3
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
# Small files are read on the calling thread while that is fast (the page cache
# holds them: ~6 us a file), and on a pool once it is slow (a disk to wait for):
# with 2 threads, warm reads of 20,000 x 4 KiB took 0.27 s against 0.12 s on
# one, the GIL passing back and forth, while cold reads overlap their waits.
INLINE_US_PER_FILE = 40.0
PROBE_FILES = 512
# Threads for small files, one per core: on 2 cores, 20,000 x 4 KiB files add in
# 4.7 s with 2 threads against 6.1 s with 8 (creating files contends in the kernel).
WORKERS = max(2, os.cpu_count() or 1)
Listing = dict[str, dict[str, Entry]]  # folder prefix -> entry name -> its stat entry


class ScannedFile(NamedTuple):
    """A file found under the scanned path (a tuple: 20,000 of them are made per scan)."""

    path: str  # relative to the scanned root, '/'-separated (the file name if single)
    abspath: str
    key: Key
    mode: int


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a scan allocates ~100,000 tuples and
    would trigger collections that find nothing (40-50 ms of a 20,000-file status)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def scan(root: Path, listing: Listing | None = None, outside_links: bool = True,
         blob_store: str | None = None) -> tuple[list[ScannedFile], bool]:
    """Every regular file under ``root`` (or ``root`` itself), and whether it was one file.

    Symlinks are followed; a loop, a dangling link or an unreadable entry is
    an error naming the path. Without ``outside_links``, a symlink under
    ``root`` whose target resolves outside ``root`` is refused
    (:class:`UnsafePath`): ``add`` would otherwise version bytes from anywhere
    on the machine (``/etc/passwd``); links into ``blob_store`` (the workspace's
    own blobs, as ``checkout --link symlink`` makes them) are not outside. With
    ``listing``, also record every
    folder's entries (files, sub-folders, skipped folders) with their stat keys, keyed
    by the folder's relative prefix ("" for the root, "sub/" below it): the
    working-folder index (``keel.data.index``) is built from it.
    """
    if not os.path.lexists(root):
        raise NotFound(f"{root} does not exist", hint="check the path you passed")
    st = _stat(root)
    if stat.S_ISREG(st.st_mode):
        return [ScannedFile(root.name, str(root.resolve()), stat_key(st),
                            stat.S_IMODE(st.st_mode))], True
    found: list[ScannedFile] = []
    real = root.resolve()
    walk = _Walk(found, listing, None if outside_links else str(real),
                 os.path.realpath(blob_store) if blob_store else None)
    walk.folder(real, "", {(st.st_dev, st.st_ino)})
    return found, False


def _stat(path: Path | str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path} is a dangling symlink or vanished while scanning",
                           hint="remove the broken link or restore its target") from exc
    except OSError as exc:  # ELOOP, EACCES...
        raise InvalidInput(f"cannot read {path}: {exc.strerror}",
                           hint="fix the symlink loop or the permissions") from exc


class _Walk:
    """One recursive listing of a folder (see ``scan``)."""

    def __init__(self, found: list[ScannedFile], listing: Listing | None,
                 boundary: str | None, blob_store: str | None = None) -> None:
        self.found = found
        self.listing = listing
        self.boundary = boundary  # the resolved root links must stay in; None: anywhere
        self.blob_store = blob_store  # links into it are keel's own (checkout --link symlink)

    def folder(self, folder: Path, prefix: str, seen: set[tuple[int, int]]) -> None:
        try:
            entries = list(os.scandir(folder))  # unsorted: the manifest sorts once at the end
        except PermissionError as exc:
            raise InvalidInput(f"cannot list {folder}: permission denied",
                               hint="fix the folder's permissions") from exc
        is_reg, is_dir, mode_bits = stat.S_ISREG, stat.S_ISDIR, stat.S_IMODE
        here: dict[str, Entry] | None = None
        if self.listing is not None:
            here = self.listing[prefix] = {}
        for entry in entries:
            rel = prefix + entry.name
            if entry.name in SKIPPED_DIRS and entry.is_dir():
                if here is not None:
                    with suppress(OSError):  # unrecorded: the index re-checks this folder
                        here[entry.name] = entry_key(entry.stat())
                continue
            try:
                st = entry.stat()  # follows symlinks, like os.stat
            except OSError:
                st = _stat(entry.path)  # raises the error that names the problem
            if self.boundary is not None and entry.is_symlink():  # d_type: no system call
                self._check_link(entry.path)
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_ctime_ns)
            if here is not None:
                here[entry.name] = key
            if is_reg(st.st_mode):
                self.found.append(ScannedFile(rel, entry.path, key, mode_bits(st.st_mode)))
            elif is_dir(st.st_mode):
                ident = (st.st_dev, st.st_ino)
                if ident in seen:
                    raise InvalidInput(f"symlink loop: {entry.path} leads back to a folder "
                                       "already being scanned", hint="remove or fix the symlink")
                self.folder(Path(entry.path), rel + "/", seen | {ident})

    def _check_link(self, path: str) -> None:
        target = os.path.realpath(path)
        boundary = self.boundary or ""
        if self.blob_store and target.startswith(self.blob_store.rstrip("/") + "/"):
            return
        if target != boundary and not target.startswith(boundary.rstrip("/") + "/"):
            raise UnsafePath(f"{path} is a symlink to {target}, outside the folder being "
                             f"added ({boundary})",
                             hint="copy what it points to into the folder, remove the link, "
                                  "or pass follow_symlinks=True (--follow-symlinks) to add "
                                  "the bytes it points to")


def _read_stable(file: ScannedFile) -> tuple[bytes, Key]:
    """The file's bytes, read while its size and mtime stayed put."""
    # Usual case, one fstat: the file still has the stat key the scan saw. Raw
    # os calls: a Python file object costs ~5 us more per file (0.1 s of 20,000).
    try:
        fd = os.open(file.abspath, _READ_FLAGS)
        try:
            data = os.read(fd, file.key[2] + 1)  # one byte more: a file that grew is seen
            after = stat_key(os.fstat(fd))
        finally:
            os.close(fd)
        if after == file.key and len(data) == after[2]:
            return data, after
    except OSError:
        pass  # reported by the careful loop below
    for _attempt in range(RETRIES):
        try:
            with open(file.abspath, "rb") as handle:
                before = stat_key(os.fstat(handle.fileno()))
                data = handle.read()
                after = stat_key(os.fstat(handle.fileno()))
        except OSError as exc:
            raise InvalidInput(f"cannot read {file.abspath}: {exc.strerror}",
                               hint="fix its permissions or remove it") from exc
        if before == after and len(data) == after[2]:
            return data, after
    raise InvalidInput(f"{file.abspath} kept changing while it was read",
                       hint="stop whatever is writing to it, then add again")


def _hash_large(file: ScannedFile) -> tuple[str, Key]:
    for _attempt in range(RETRIES):
        before = stat_key(_stat(file.abspath))
        digest = hash_file(file.abspath)
        if stat_key(_stat(file.abspath)) == before:
            return digest, before
    raise InvalidInput(f"{file.abspath} kept changing while it was hashed",
                       hint="stop whatever is writing to it, then add again")


def _store_large(file: ScannedFile, blobs: BlobStore) -> tuple[str, Key]:
    """Copy a large file into a local store, hashing the bytes copied (see
    ``ingest_file``); its stat key must stay put from before the copy to after it."""
    for _attempt in range(RETRIES):
        before = stat_key(_stat(file.abspath))
        digest = blobs.ingest_file(file.abspath, partial(_unchanged, file.abspath, before))
        if digest is not None:
            return digest, before
    raise InvalidInput(f"{file.abspath} kept changing while it was stored",
                       hint="stop whatever is writing to it, then add again")


def _unchanged(path: str, before: Key) -> bool:
    return stat_key(_stat(path)) == before


def digests(files: list[ScannedFile], cache: StatCache, blobs: BlobStore | None = None,
            progress: Progress | None = None, keys: dict[str, Key] | None = None
            ) -> dict[str, str]:
    """``relative path -> digest`` for every file; with ``blobs``, also store the bytes.

    Files whose stat key is cached (and, when storing, whose blob exists) are
    not read at all. ``keys``, if given, receives the stat key each digest
    belongs to (the key seen while the file was read, or the cached one).
    """
    progress = progress or NoProgress()
    cached = cache.lookup((f.abspath, f.key) for f in files)
    result: dict[str, str] = {}
    todo = []
    batching = blobs is not None and blobs.batches
    # A store behind a server answers for every cached digest in one request.
    absent = set(blobs.missing(sorted(set(cached.values())))) \
        if batching and blobs is not None else set()
    for f in files:
        digest = cached.get(f.abspath)
        if digest is not None and (blobs is None or (digest not in absent if batching
                                                     else blobs.exists(digest))):
            result[f.path] = digest
        else:
            todo.append(f)
    progress.start("hashing", sum(f.key[2] for f in todo))
    packing = blobs is not None and blobs.packs is not None
    with blobs.pack_writer() if packing else nullcontext() as pack:  # type: ignore[union-attr]
        def work(chunk: list[ScannedFile]) -> list[tuple[ScannedFile, str, Key]]:
            done = _ingest_batch(chunk, blobs) if batching and blobs is not None \
                else [_ingest(f, blobs, pack) for f in chunk]
            progress.advance(sum(f.key[2] for f in chunk))  # once a chunk: a bar redraw
            return done                                      # per file costs ~5 us

        small = [f for f in todo if f.key[2] < MULTITHREAD_BYTES]
        started = time.perf_counter()
        fresh = work(small[:PROBE_FILES])
        per_file_us = (time.perf_counter() - started) * 1e6 / max(1, len(fresh))
        rest = small[PROBE_FILES:]
        if per_file_us <= INLINE_US_PER_FILE:
            fresh += work(rest)
        else:
            # Imported here: a status that finds nothing to hash never needs it.
            from concurrent.futures import ThreadPoolExecutor

            # Chunks of 256 files per task: one task per file spent more time in
            # the executor's bookkeeping than in reading and hashing 4 KiB.
            chunks = [rest[i:i + 256] for i in range(0, len(rest), 256)]
            with ThreadPoolExecutor(WORKERS) as pool:
                fresh += [item for done in pool.map(work, chunks) for item in done]
        fresh += work([f for f in todo if f.key[2] >= MULTITHREAD_BYTES])
    progress.done()
    for f, digest, _key in fresh:
        result[f.path] = digest
    if keys is not None:
        keys.update((f.path, f.key) for f in files if f.path in result)
        keys.update((f.path, key) for f, _digest, key in fresh)
    cache.remember((f.abspath, key, digest) for f, digest, key in fresh)
    return result


def _ingest_batch(chunk: list[ScannedFile], blobs: BlobStore
                  ) -> list[tuple[ScannedFile, str, Key]]:
    """``_ingest`` for a store that takes many blobs a request: the small files of
    ``chunk`` are read and hashed, then sent together (those the store lacks)."""
    done, items = [], []
    for file in chunk:
        if file.key[2] >= MULTITHREAD_BYTES:
            done.append(_ingest(file, blobs))
            continue
        data, key = _read_stable(file)
        digest = hash_bytes(data)
        items.append((digest, data))
        done.append((file, digest, key))
    blobs.put_many(items)
    return done


def _ingest(file: ScannedFile, blobs: BlobStore | None,
            pack: PackWriter | None = None) -> tuple[ScannedFile, str, Key]:
    if file.key[2] >= MULTITHREAD_BYTES:
        if blobs is not None and blobs.local:
            digest, key = _store_large(file, blobs)  # one pass: read, hash, write
        else:
            digest, key = _hash_large(file)
            if blobs is not None:
                blobs.put_file(file.abspath, digest)  # verifies the stored copy against digest
    else:
        data, key = _read_stable(file)
        digest = hash_bytes(data)
        packs = blobs.packs if blobs is not None else None
        if pack is not None and packs is not None and len(data) < PACKED_BELOW:
            # Only the pack index is consulted: a copy of a loose blob costs a
            # few KiB, a stat per file to rule it out costs 10% of the add.
            if not packs.contains(digest):
                pack.add(data, digest)
        elif blobs is not None and not blobs.exists(digest):
            blobs.put_bytes(data, digest)
    return file, digest, key
