"""The blob store: ``ab/cdef...`` fan-out, atomic and durable writes, verified reads.

On local disks every blob is written to a temporary name, fsynced, made
read-only and renamed into place, and the folder is fsynced after the
rename (``keel.durability``): a blob that is visible survives a power loss.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keel.blobs.copy import FICLONE, copy_hashing
from keel.blobs.digest import CHUNK, hash_bytes, hash_file, is_digest
from keel.blobs.folders import make_folders
from keel.blobs.pack import PackWriter
from keel.blobs.packs import PackIndex
from keel.durability import fsync_fd, publish
from keel.errors import CorruptData, InvalidInput, NotFound


class BlobStore:
    """Bytes stored once under their BLAKE3 digest, in a folder or any fsspec URL.

    Example: ``digest = BlobStore(".keel/blobs").put_file("model.skops")``
    """

    # True for stores that move many small blobs a request (``put_many`` and
    # ``get_many``: a keel server's); callers batch for them.
    batches = False

    def __init__(self, url: str | os.PathLike[str], **storage_options: Any) -> None:
        self.url = str(url)
        self._fs: Any = None
        local_path = _local_path(self.url)
        if local_path is not None and not storage_options:
            # A folder: plain os calls, and no fsspec import (~40 ms, with asyncio,
            # of every command's start-up); fsspec is made on first use of .fs.
            self.root, self.local = local_path, True
        else:
            import fsspec

            self._fs, self.root = fsspec.core.url_to_fs(self.url, **storage_options)
            self.local = "file" in _protocols(self._fs)
        self._made_dirs: set[str] = set()  # fan-out folders known to exist
        self.packs: PackIndex | None = None
        if self.local:
            # Folders are made on first write: opening a mistyped remote must
            # not create it. Pack indexes are read on the first lookup, not here:
            # most commands never look a blob up.
            self.packs = PackIndex(Path(self.root) / "packs")

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of the store (made on first use for local folders)."""
        if self._fs is None:
            import fsspec

            self._fs = fsspec.filesystem("file")
        return self._fs

    def close(self) -> None:
        """Release connections (a store behind a server holds some; a folder none)."""

    def missing(self, digests: list[str]) -> list[str]:
        """Which of ``digests`` are not stored."""
        return [d for d in digests if not self.exists(d)]

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        """Store many (digest, bytes) pairs the caller already hashed."""
        for digest, data in items:
            self.put_bytes(data, digest)

    def get_many(self, digests: list[str]) -> dict[str, bytes]:
        """Many blobs' bytes by digest, each verified."""
        return {d: self.get_bytes(d) for d in digests}

    def path_of(self, digest: str) -> str:
        """Where a digest's bytes live inside the store."""
        if not is_digest(digest):
            raise InvalidInput(f"{digest!r} is not a BLAKE3 hex digest")
        return f"{self.root}/{digest[:2]}/{digest[2:]}"

    def exists(self, digest: str) -> bool:
        path = self.path_of(digest)
        if self.packs is not None and self.packs.contains(digest):
            return True
        # os.path on local disks: fsspec's exists costs ~20x more per call,
        # which dominates adding 20,000 small files.
        return os.path.exists(path) if self.local else bool(self.fs.exists(path))

    def is_loose(self, digest: str) -> bool:
        """True if the blob is a file of its own (local stores), not inside a pack."""
        return self.local and os.path.exists(self.path_of(digest))

    def pack_writer(self) -> PackWriter:
        """A writer that packs many small blobs into one file (local stores only)."""
        if self.packs is None:
            raise InvalidInput("pack files exist only in local blob stores")
        return self.packs.writer()

    def digests(self) -> set[str]:
        """Every digest stored (one listing; used to find what a remote lacks)."""
        if self.local:
            root = Path(self.root)
            assert self.packs is not None
            packed = self.packs.digests()
            if not root.is_dir():
                return set()
            loose = {d.name + f.name for d in root.iterdir() if d.is_dir() and len(d.name) == 2
                     for f in d.iterdir() if ".tmp-" not in f.name}
            return loose | packed
        try:
            paths = self.fs.find(self.root)
        except FileNotFoundError:
            return set()
        found = set()
        for path in paths:
            parts = path.rstrip("/").split("/")
            if len(parts) >= 2 and len(parts[-2]) == 2 and ".tmp-" not in parts[-1]:
                found.add(parts[-2] + parts[-1])
        return {d for d in found if is_digest(d)}

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store a buffer; return its digest. Storing the same bytes twice is free.

        ``digest``, when the caller already hashed ``data``, saves a second hash.
        """
        digest = digest or hash_bytes(data)
        if not self.exists(digest):
            self._atomic_write(digest, lambda handle: handle.write(data), data)
        return digest

    def put_file(self, path: str | os.PathLike[str], digest: str | None = None) -> str:
        """Store a file's bytes; return the digest (``digest`` if the caller hashed it).

        The copy is re-hashed after it is written, so a file changed while being
        stored is caught instead of being filed under the wrong digest.
        """
        digest = digest or hash_file(path)
        if self.exists(digest):
            return digest
        if self.local:
            self._put_local_copy(Path(path), digest)
            return digest

        def copy(handle: Any) -> None:
            from blake3 import blake3

            hasher = blake3()
            with open(path, "rb") as src:
                while chunk := src.read(CHUNK):
                    hasher.update(chunk)
                    handle.write(chunk)
            if hasher.hexdigest() != digest:
                raise InvalidInput(f"{path} changed while it was being stored",
                                   hint="stop whatever is writing to it and try again")

        self._atomic_write(digest, copy)
        return digest

    def put_verified_file(self, path: str | os.PathLike[str], digest: str) -> None:
        """Store a file just checked to hold ``digest`` (``copy_blob``): an object
        store gets one direct upload, a folder a copy that is hashed again."""
        if self.local:
            self.put_file(path)
        else:
            self.fs.put_file(str(path), self.path_of(digest))

    def ingest_file(self, path: str | os.PathLike[str],
                    unchanged: Callable[[], bool] = lambda: True) -> str | None:
        """Store a local file's bytes without hashing the file first; return their digest.

        The file is copied to a temporary name while the bytes copied are
        hashed (``keel.blobs.copy``): the digest always names the bytes
        stored, and the source is read once, where hashing it, copying it and
        re-hashing the copy read it three times. ``unchanged`` is asked
        after the copy; if the source moved meanwhile, nothing is stored and
        None is returned, so that the caller can try again. Local stores only.
        """
        if not self.local:
            raise InvalidInput("ingest_file needs a local blob store; use put_file")
        make_folders(self.root)
        # In the root, not a fan-out folder: the digest is not known yet. Listings
        # skip it (only two-letter folders hold blobs).
        temp = f"{self.root}/.tmp-{uuid.uuid4().hex}"
        try:
            digest = copy_hashing(path, temp)  # fsynced before it returns
            if not unchanged():
                return None
            final = self.path_of(digest)
            if not os.path.exists(final):
                self._make_fanout(os.path.dirname(final))
                os.chmod(temp, 0o444)  # blobs are immutable; guard against edits
                publish(temp, final)
            return digest
        finally:
            Path(temp).unlink(missing_ok=True)

    def _put_local_copy(self, source: Path, digest: str) -> None:
        """Copy while hashing what is copied (a reflink where the filesystem has
        them), and refuse the copy unless it has the expected digest."""
        final = self.path_of(digest)
        self._make_fanout(os.path.dirname(final))
        temp = f"{final}.tmp-{uuid.uuid4().hex}"
        try:
            if copy_hashing(source, temp) != digest:  # fsynced before it returns
                raise InvalidInput(f"{source} changed while it was being stored",
                                   hint="stop whatever is writing to it and try again")
            os.chmod(temp, 0o444)
            publish(temp, final)
        finally:
            Path(temp).unlink(missing_ok=True)

    def _atomic_write(self, digest: str, write: Any, data: bytes | None = None) -> None:
        final = self.path_of(digest)
        if not self.local and data is not None:
            # An object store's PUT is atomic: readers see all of it or nothing.
            self.fs.pipe_file(final, data)
            return
        temp = f"{final}.tmp-{uuid.uuid4().hex}"
        if self.local:
            self._make_fanout(os.path.dirname(final))
        else:
            self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        try:
            if self.local:
                with open(temp, "wb") as handle:
                    write(handle)
                    handle.flush()
                    fsync_fd(handle.fileno())
                os.chmod(temp, 0o444)  # blobs are immutable; guard against edits
                publish(temp, final)
            else:
                with self.fs.open(temp, "wb") as handle:
                    write(handle)
                self.fs.mv(temp, final)
        except BaseException:
            if self.local:
                Path(temp).unlink(missing_ok=True)
            elif self.fs.exists(temp):
                self.fs.rm(temp)
            raise

    def _make_fanout(self, folder: str) -> None:
        # Remembered: a mkdir (or even a stat) per blob costs 10-60 us.
        if folder not in self._made_dirs:
            make_folders(folder)
            self._made_dirs.add(folder)

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of a digest, verified; :class:`CorruptData` if they changed."""
        path = self.path_of(digest)
        try:
            data = Path(path).read_bytes() if self.local else self.fs.cat_file(path)
        except FileNotFoundError as exc:
            packed = self.packs.read(digest) if self.packs is not None else None
            if packed is None:
                raise NotFound(f"blob {digest} is missing from {self.url}",
                               hint="pull it from the remote, or re-log the artifact") from exc
            data = packed
        if hash_bytes(data) != digest:
            raise CorruptData(f"blob {digest} in {self.url} is corrupted (its bytes no longer "
                              "match their digest)", hint="restore it from a remote or backup")
        return data

    def fetch(self, digest: str, dest: str | os.PathLike[str]) -> None:
        """Copy a blob to ``dest`` (atomically), verifying it on the way."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex}")
        try:
            temp.write_bytes(self.get_bytes(digest))
            os.replace(temp, dest)
        finally:
            temp.unlink(missing_ok=True)


def _local_path(url: str) -> str | None:
    """The absolute folder a plain path or ``file://`` URL names; None for any other URL."""
    if url.startswith("file://"):
        url = url[len("file://"):]
    elif "://" in url or "::" in url:
        return None
    return os.path.abspath(os.path.expanduser(url)).rstrip("/") or "/"


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def kernel_copy(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest``: a reflink if possible, else copy_file_range."""
    with open(dest, "wb") as dst:
        kernel_copy_to(source, dst.fileno())


def kernel_copy_to(source: Path, fd: int) -> None:
    """Copy ``source`` into the open, empty file ``fd``: a reflink if possible, else
    copy_file_range (both in the kernel: no bytes pass through Python)."""
    import fcntl

    with open(source, "rb") as src:
        try:
            fcntl.ioctl(fd, FICLONE, src.fileno())
            return
        except OSError:
            pass  # no reflinks here: copy in the kernel instead
        remaining = os.fstat(src.fileno()).st_size
        while remaining > 0:
            sent = os.copy_file_range(src.fileno(), fd, remaining)
            if sent == 0:
                break
            remaining -= sent


def copy_blob(source: BlobStore, target: BlobStore, digest: str) -> int:
    """Copy one blob between stores, verified; returns its size.

    Local sources stream from disk (bounded memory for large files); the
    digest is checked before the bytes leave and, for local targets, again on
    arrival (``put_file`` re-hashes while copying).
    """
    if source.local and source.is_loose(digest):
        path = source.path_of(digest)
        if hash_file(path) != digest:
            raise CorruptData(f"blob {digest} in {source.url} is corrupted",
                              hint="restore it from a remote or backup")
        target.put_verified_file(path, digest)
        return os.path.getsize(path)
    data = source.get_bytes(digest)
    target.put_bytes(data, digest)
    return len(data)
