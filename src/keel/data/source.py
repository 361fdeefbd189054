"""Where each file of a checkout comes from, verified before anything is kept.

Every blob a checkout needs is found and its bytes checked against their
digest, so a corrupt or missing blob stops the checkout with the
destination as it was, and an error naming the dataset file
(``transactions@2:data/part-3.csv``), not only the digest.

- Packed blobs (files under 1 MiB, see ``keel.blobs.pack``) are read from
  a memory map of their pack, opened once per pack: each blob is a slice
  of it, hashed in place and later written from the same slice. Reading
  each through the store (an ``open`` of the loose path that fails, then an
  ``open`` and ``pread`` of the pack) cost ~45 us per file, ~0.9 s of a
  20,000-file checkout; the map costs ~3 us per file, hashing included.
  When most of a pack is wanted, the pack is instead checked once against
  its whole-file checksum, on a thread while checkout writes from it
  (``confirm`` waits for it; checkout rolls back on a mismatch): 15-30 ms
  of an 80 MB pack no longer spent before the first file is written.
- Loose blobs are hashed in their file (on a thread pool: reads release
  the GIL), then copied, cloned or linked from it.
- Stores that are not local folders (an object store as ``KEEL_BLOBS``) are
  read blob by blob while the files are written, each verified by
  ``BlobStore.get_bytes``; a failure there is undone by the staging's rollback.
"""

from __future__ import annotations

import mmap
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from blake3 import blake3

from keel.blobs import BlobStore
from keel.blobs.digest import hash_file
from keel.blobs.pack import PACKED_BELOW, pack_sum
from keel.data.manifest import ManifestEntry
from keel.data.scan import WORKERS
from keel.errors import CorruptData, KeelError, NotFound

# Small files of a version held in memory at once when fetched from a server.
PREFETCH_BYTES = 256 * 1024 * 1024
_HINT = ("restore the blob store from a backup, or pull the version again from a remote "
         "(`keel data pull`); nothing was written")


class Sources:
    """The verified bytes of the files a checkout writes (see the module docstring)."""

    def __init__(self, blobs: BlobStore, label: str) -> None:
        self.blobs = blobs
        self.label = label  # "transactions@2": errors name label:path
        self._views: dict[str, memoryview] = {}  # packed digest -> its bytes in a map
        self._loose: dict[str, str] = {}  # digest -> the path of its verified loose blob
        self._maps: list[mmap.mmap] = []
        self._pending: list[_WholePack] = []  # packs being checked as a whole
        self._wholes: dict[str, memoryview] = {}  # pack name -> its bytes, checked as a whole
        self._located: dict[str, tuple[str, int, int]] = {}  # the store's pack index

    def __enter__(self) -> Sources:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def verify(self, entries: list[ManifestEntry], prefer_loose: set[str] | None = None
               ) -> None:
        """Find and check the blob of every entry; :class:`CorruptData` or
        :class:`NotFound` naming the first file whose blob is bad or missing.
        ``prefer_loose``: digests to take from a loose file when there is one
        (to be linked), even if a pack holds them too."""
        if not self.blobs.local:
            self._prefetch(entries)
            return  # the rest are read and verified one by one while writing (see fetch)
        # digest -> the first file holding it (the one errors name)
        owners = {entry.digest: entry.path for entry in reversed(entries)}
        packed: dict[str, list[tuple[str, int, int]]] = {}  # pack -> (digest, offset, size)
        loose: list[str] = []
        packs = self.blobs.packs
        self._located = packs.located() if packs is not None else {}
        locate = self._located.get
        prefer = prefer_loose or set()
        for digest in owners:
            if prefer and digest in prefer and self.blobs.is_loose(digest):
                loose.append(digest)
            elif (where := locate(digest)) is not None:
                name, offset, size = where
                packed.setdefault(name, []).append((digest, offset, size))
            elif self.blobs.is_loose(digest):
                loose.append(digest)
            else:  # the store's own read finds it elsewhere, or says where it went
                self._views[digest] = memoryview(self.fetch(digest, owners[digest]))
        for name, blobs in packed.items():
            self._map_pack(name, blobs, owners)
        self._check_loose(loose, owners)

    def _prefetch(self, entries: list[ManifestEntry]) -> None:
        """From a store that sends many blobs a request (a keel server's), fetch the
        small files' blobs up front, verified, when they fit in PREFETCH_BYTES."""
        if not self.blobs.batches:
            return
        owners: dict[str, str] = {}
        size = 0
        for entry in entries:
            if entry.size < PACKED_BELOW and entry.digest not in owners:
                owners[entry.digest] = entry.path
                size += entry.size
        if not owners or size > PREFETCH_BYTES:
            return
        try:
            fetched = self.blobs.get_many(list(owners))
        except KeelError:
            return  # fetched one by one instead, so the error names the file
        self._views.update((d, memoryview(data)) for d, data in fetched.items())

    def packed(self, digest: str) -> memoryview | None:
        """The verified bytes of a packed blob (a slice of its pack), or None. From a
        pack checked as a whole, the slice is made here, by the writer that needs
        it (in a writer process, on its own core), not 20,000 at once in verify;
        verified by ``confirm``."""
        view = self._views.get(digest)
        if view is not None:
            return view
        where = self._located.get(digest)
        if where is None or (whole := self._wholes.get(where[0])) is None:
            return None
        return whole[where[1]:where[1] + where[2]]

    def local(self, digest: str) -> bool:
        """True if the blob is read from this machine (a pack slice or a loose file),
        not fetched from a store elsewhere while writing."""
        if digest in self._views or digest in self._loose:
            return True
        where = self._located.get(digest)
        return where is not None and where[0] in self._wholes

    def loose(self, digest: str) -> str | None:
        """The path of a verified loose blob, or None."""
        return self._loose.get(digest)

    def fetch(self, digest: str, path: str) -> bytes:
        """The bytes of a blob not verified above (a store that is not a local
        folder), read and verified now; errors name ``label:path``."""
        try:
            return self.blobs.get_bytes(digest)
        except KeelError as exc:
            raise _named(exc, f"{self.label}:{path}", digest) from exc

    def close(self) -> None:
        """Release the maps (after every slice of them, and every check reading them)."""
        for check in self._pending:
            check.release()
        self._pending.clear()
        for view in self._views.values():
            view.release()
        self._views.clear()
        for whole in self._wholes.values():
            whole.release()
        self._wholes.clear()
        for mapped in self._maps:
            # A slice handed to a writer may outlive this (held by a traceback):
            # the map is then closed when the last slice goes.
            with suppress(BufferError):
                mapped.close()
        self._maps.clear()

    def _map_pack(self, name: str, blobs: list[tuple[str, int, int]],
                  owners: dict[str, str]) -> None:
        assert self.blobs.packs is not None  # only packed digests come here
        path = self.blobs.packs.pack_path(name)
        try:
            with open(path, "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            # Gone (gc rewrote it) or unreadable: the store's own read finds the
            # blob elsewhere or explains what happened.
            for digest, _offset, _size in blobs:
                self._views[digest] = memoryview(self.fetch(digest, owners[digest]))
            return
        self._maps.append(mapped)
        whole = memoryview(mapped)
        length = len(mapped)
        # Most of a pack wanted: one check of the whole file (all cores, on a thread
        # while the files are written: see confirm) is worth 20,000 of 4 KiB.
        expected = pack_sum(path) if 2 * sum(size for *_, size in blobs) >= length else None
        if expected is not None:
            self._wholes[name] = whole  # sliced by packed(); the index gave the bounds
            self._pending.append(_WholePack(path, memoryview(mapped), expected, blobs, owners))
            return
        for digest, offset, size in blobs:
            view = whole[offset:offset + size]
            if offset + size > length or blake3(view).hexdigest() != digest:
                view.release()
                whole.release()
                raise self._corrupt(digest, owners[digest], f"its bytes in {path} no longer "
                                                            "match their digest")
            self._views[digest] = view
        whole.release()

    def confirm(self) -> None:
        """Wait for the packs checked as a whole (see ``verify``). A pack that does not
        match its checksum has each blob checked instead: :class:`CorruptData`
        naming the first file whose bytes do not match (damage elsewhere in the
        pack does not concern this checkout)."""
        pending, self._pending = self._pending, []
        for check in pending:
            if check.intact():
                continue
            for digest, _offset, size in check.blobs:
                view = self.packed(digest)
                intact = view is not None and len(view) == size and \
                    blake3(view).hexdigest() == digest
                if view is not None:
                    view.release()
                if not intact:
                    raise self._corrupt(digest, check.owners[digest], f"its bytes in "
                                        f"{check.path} no longer match their digest")

    def _check_loose(self, digests: list[str], owners: dict[str, str]) -> None:
        def check(digest: str) -> tuple[str, bool]:
            try:
                return digest, hash_file(self.blobs.path_of(digest)) == digest
            except FileNotFoundError:
                return digest, False

        with ThreadPoolExecutor(min(WORKERS, max(1, len(digests)))) as pool:
            for digest, intact in pool.map(check, digests):
                path = self.blobs.path_of(digest)
                if not intact and not Path(path).exists():  # removed meanwhile
                    self._views[digest] = memoryview(self.fetch(digest, owners[digest]))
                elif not intact:
                    raise self._corrupt(digest, owners[digest],
                                        f"{path} no longer matches its digest")
                else:
                    self._loose[digest] = path

    def _corrupt(self, digest: str, path: str, why: str) -> CorruptData:
        return CorruptData(f"{self.label}:{path} is corrupted in the blob store (blob "
                           f"{digest}: {why}); nothing was written", hint=_HINT)


class _WholePack:
    """A pack's whole-file checksum, computed on a thread (BLAKE3 releases the GIL)
    while checkout writes the files from it."""

    def __init__(self, path: Path, whole: memoryview, expected: str,
                 blobs: list[tuple[str, int, int]], owners: dict[str, str]) -> None:
        self.path = path
        self.blobs = blobs  # (digest, offset, size) of the blobs wanted from it
        self.owners = owners  # digest -> a dataset file holding it
        self._whole = whole
        self._intact = False
        self._thread = threading.Thread(target=self._run, args=(expected,), daemon=True,
                                        name="keel-pack-check")
        self._thread.start()

    def _run(self, expected: str) -> None:
        try:
            self._intact = blake3(self._whole, max_threads=blake3.AUTO).hexdigest() == expected
        except (OSError, ValueError):  # a pack truncated under the map: SIGBUS is not caught
            self._intact = False

    def intact(self) -> bool:
        """True if the pack matches its checksum (waits for the check)."""
        self.release()
        return self._intact

    def release(self) -> None:
        """Wait for the check, then let go of the pack's bytes."""
        self._thread.join()
        self._whole.release()


def _named(exc: KeelError, where: str, digest: str) -> KeelError:
    """The store's error about a blob, restated for the dataset file it holds."""
    kind = type(exc) if isinstance(exc, (CorruptData, NotFound)) else CorruptData
    return kind(f"{where} cannot be read from the blob store (blob {digest}): {exc.message}; "
                "nothing was written", hint=exc.hint or _HINT)


def blob_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a file, for telling a hard link to its blob; None if absent."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_dev, st.st_ino
