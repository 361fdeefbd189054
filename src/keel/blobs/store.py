"""The blob store: ``ab/cdef...`` fan-out, atomic writes, verified reads."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import fsspec

from keel.blobs.digest import CHUNK, hash_bytes, hash_file, is_digest
from keel.errors import CorruptData, InvalidInput, NotFound


class BlobStore:
    """Bytes stored once under their BLAKE3 digest, in a folder or any fsspec URL.

    Example: ``digest = BlobStore(".keel/blobs").put_file("model.skops")``
    """

    def __init__(self, url: str | os.PathLike[str]) -> None:
        self.url = str(url)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.local = "file" in _protocols(self.fs)
        if self.local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def path_of(self, digest: str) -> str:
        """Where a digest's bytes live inside the store."""
        if not is_digest(digest):
            raise InvalidInput(f"{digest!r} is not a BLAKE3 hex digest")
        return f"{self.root}/{digest[:2]}/{digest[2:]}"

    def exists(self, digest: str) -> bool:
        return bool(self.fs.exists(self.path_of(digest)))

    def put_bytes(self, data: bytes) -> str:
        """Store a buffer; return its digest. Storing the same bytes twice is free."""
        digest = hash_bytes(data)
        if not self.exists(digest):
            self._atomic_write(digest, lambda handle: handle.write(data))
        return digest

    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Store a file's bytes; return the digest.

        The copy is re-hashed as it is written, so a file changed while being
        stored is caught instead of being filed under the wrong digest.
        """
        digest = hash_file(path)
        if self.exists(digest):
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

    def _atomic_write(self, digest: str, write: Any) -> None:
        final = self.path_of(digest)
        temp = f"{final}.tmp-{uuid.uuid4().hex}"
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        try:
            with self.fs.open(temp, "wb") as handle:
                write(handle)
            if self.local:
                os.chmod(temp, 0o444)  # blobs are immutable; guard against edits
                os.replace(temp, final)
            else:
                self.fs.mv(temp, final)
        except BaseException:
            if self.fs.exists(temp):
                self.fs.rm(temp)
            raise

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of a digest, verified; :class:`CorruptData` if they changed."""
        path = self.path_of(digest)
        try:
            with self.fs.open(path, "rb") as handle:
                data: bytes = handle.read()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is missing from {self.url}",
                           hint="pull it from the remote, or re-log the artifact") from exc
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


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
