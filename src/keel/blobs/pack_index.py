"""A pack's index file (``NAME.idx``): where each blob of the pack starts, and its size.

Format 1 (little-endian), the same bytes on every platform and Python::

    header   b"KEELIDX\0", u32 format, u32 record count n,
             32-byte BLAKE3 of the body                           48 bytes
    body     n 32-byte digests, then n u64 offsets, then n u64 sizes

Fixed-size records stored column by column, so that each column is
encoded in one C call (``bytes.fromhex``, ``array``): 20,000 blobs encode
in ~4 ms, where a ``struct`` call per record took ~16 ms, and decode in
~8 ms (a ``marshal`` dict: ~6 ms).
The checksum catches a truncated or damaged index before any of it is
believed; the pack can then rebuild it (see ``pack.py``). Indexes are read
only when a lookup needs the packs.

Indexes written by keel before this format are a ``marshal`` dict
``digest -> (offset, size)``. marshal's format may change between Python
versions, so they are read (``decode_legacy``) and never written.
"""

from __future__ import annotations

import marshal
import os
import re
import struct
import sys
import uuid
from array import array
from pathlib import Path

from blake3 import blake3

from keel.durability import fsync_fd, publish

INDEX_MAGIC = b"KEELIDX\x00"
INDEX_FORMAT = 1
INDEX_HEADER = struct.Struct("<8sII32s")  # magic, format, count, BLAKE3 of the body
RECORD_SIZE = 32 + 8 + 8  # digest, offset, size

Located = dict[str, tuple[int, int]]  # hex digest -> (offset of its bytes, size)
_HEX64 = re.compile(r"[0-9a-f]{64}")


def encode_index(located: Located) -> bytes:
    """The index file's bytes for ``located`` (in its order: a pack's record order)."""
    digests = bytes.fromhex("".join(located))
    offsets = _u64([offset for offset, _size in located.values()])
    sizes = _u64([size for _offset, size in located.values()])
    body = digests + offsets + sizes
    return INDEX_HEADER.pack(INDEX_MAGIC, INDEX_FORMAT, len(located),
                             blake3(body).digest()) + body


def decode_index(data: bytes) -> Located:
    """The records of an index file; ValueError if it is not a whole, intact index."""
    if len(data) < INDEX_HEADER.size:
        raise ValueError("shorter than its header")
    magic, version, count, checksum = INDEX_HEADER.unpack_from(data)
    if magic != INDEX_MAGIC:
        raise ValueError("not a keel pack index")
    if version != INDEX_FORMAT:
        raise ValueError(f"index format {version}, this keel reads {INDEX_FORMAT}")
    body = memoryview(data)[INDEX_HEADER.size:]
    if len(body) != count * RECORD_SIZE:
        raise ValueError(f"holds {len(body)} bytes of records, its header says {count}")
    if blake3(body).digest() != checksum:
        raise ValueError("its checksum does not match its records")
    hexed = body[:32 * count].hex()
    offsets = _from_u64(body[32 * count:40 * count])
    sizes = _from_u64(body[40 * count:])
    return dict(zip((hexed[i:i + 64] for i in range(0, 64 * count, 64)),
                    zip(offsets, sizes, strict=True), strict=True))


def _u64(numbers: list[int]) -> bytes:
    column = array("Q", numbers)
    if sys.byteorder == "big":
        column.byteswap()
    return column.tobytes()


def _from_u64(raw: memoryview) -> array[int]:
    column = array("Q")
    column.frombytes(raw)
    if sys.byteorder == "big":
        column.byteswap()
    return column


def decode_legacy(data: bytes) -> Located:
    """A ``marshal`` index of a legacy pack; ValueError if it cannot be decoded."""
    try:
        loaded = marshal.loads(data)
    except Exception as exc:  # marshal raises ValueError, EOFError, TypeError... on damage
        raise ValueError(f"not a readable marshal index ({type(exc).__name__})") from exc
    if not isinstance(loaded, dict):
        raise ValueError("not a marshal dict")
    located: Located = {}
    for digest, where in loaded.items():
        if not (isinstance(digest, str) and _HEX64.fullmatch(digest) and isinstance(where, tuple)
                and len(where) == 2 and all(type(n) is int and n >= 0 for n in where)):
            raise ValueError("a record is not digest -> (offset, size)")
        located[digest] = where
    return located


def write_index(path: Path, located: Located) -> None:
    """Write an index file atomically and durably (fsynced, renamed, folder fsynced)."""
    temp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(temp, "wb") as handle:
            handle.write(encode_index(located))
            handle.flush()
            fsync_fd(handle.fileno())
        os.chmod(temp, 0o444)
        publish(temp, path)
    finally:
        temp.unlink(missing_ok=True)
