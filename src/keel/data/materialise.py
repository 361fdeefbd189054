"""Put a blob's bytes at a path: a reflink where the filesystem offers one, else a copy.

Hardlinks are not used: a user editing the linked file in place (root ignores
the blob's read-only bit) would corrupt the store for every version sharing it.
A reflink is copy-on-write, so it is as safe as a copy and costs no space.
Files are written through a :class:`Destination`, so never through a symlink.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from keel.blobs import BlobStore
from keel.blobs.digest import hash_file
from keel.blobs.store import kernel_copy_to
from keel.data.destination import Destination
from keel.errors import CorruptData, NotFound


def materialise(blobs: BlobStore, digest: str, into: Destination, rel: str,
                mode: int = 0o644) -> None:
    """Write blob ``digest`` as ``rel`` under ``into`` atomically, verified, with
    permission bits ``mode`` (masked to 0o777)."""
    if blobs.is_loose(digest):
        into.write(rel, partial(kernel_copy_to, _verified_loose(blobs, digest)), mode)
    else:
        into.write(rel, partial(_write_all, blobs.get_bytes(digest)), mode)


def _verified_loose(blobs: BlobStore, digest: str) -> Path:
    source = blobs.path_of(digest)
    if not os.path.exists(source):
        raise NotFound(f"blob {digest} is not in {blobs.url}",
                       hint="fetch it with `keel data pull`")
    if hash_file(source) != digest:
        raise CorruptData(f"blob {digest} in {blobs.url} is corrupted",
                          hint="pull it again from a remote (`keel data pull`)")
    return Path(source)


def _write_all(data: bytes, fd: int) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
