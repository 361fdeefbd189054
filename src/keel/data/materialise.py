"""Put a blob's bytes at a path: a reflink where the filesystem offers one, else a copy.

Hardlinks are not used: a user editing the linked file in place (root ignores
the blob's read-only bit) would corrupt the store for every version sharing it.
A reflink is copy-on-write, so it is as safe as a copy and costs no space.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from keel.blobs import BlobStore
from keel.blobs.digest import hash_file
from keel.blobs.store import kernel_copy
from keel.errors import CorruptData, NotFound


def materialise(blobs: BlobStore, digest: str, dest: Path, mode: int = 0o644) -> None:
    """Write blob ``digest`` to ``dest`` atomically, verified, with permission ``mode``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.keel-{uuid.uuid4().hex[:8]}")
    try:
        if blobs.is_loose(digest):
            _from_local(blobs, digest, temp)
        else:
            temp.write_bytes(blobs.get_bytes(digest))
        os.chmod(temp, mode | 0o200)  # the user's copy is theirs to edit
        os.replace(temp, dest)
    finally:
        temp.unlink(missing_ok=True)


def _from_local(blobs: BlobStore, digest: str, temp: Path) -> None:
    source = blobs.path_of(digest)
    if not os.path.exists(source):
        raise NotFound(f"blob {digest} is not in {blobs.url}",
                       hint="fetch it with `keel data pull`")
    if hash_file(source) != digest:
        raise CorruptData(f"blob {digest} in {blobs.url} is corrupted",
                          hint="pull it again from a remote (`keel data pull`)")
    kernel_copy(Path(source), temp)
