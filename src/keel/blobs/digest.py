"""BLAKE3 digests of bytes and files."""

from __future__ import annotations

import os
import re
from pathlib import Path

from blake3 import blake3

# Above this size the hasher spreads work over every core (blake3's own
# threads); below it thread start-up costs more than it saves.
MULTITHREAD_BYTES = 8 * 1024 * 1024
CHUNK = 1024 * 1024


def hash_bytes(data: bytes) -> str:
    """Hex BLAKE3 digest of a buffer."""
    return blake3(data).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> str:
    """Hex BLAKE3 digest of a file, read in 1 MiB chunks (bounded memory)."""
    size = os.path.getsize(path)
    if size >= MULTITHREAD_BYTES:
        hasher = blake3(max_threads=blake3.AUTO)
        hasher.update_mmap(str(path))
        return hasher.hexdigest()
    hasher = blake3()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


_HEX64 = re.compile(r"[0-9a-f]{64}")


def is_digest(text: str) -> bool:
    """True if ``text`` looks like a hex BLAKE3 digest."""
    return isinstance(text, str) and _HEX64.fullmatch(text) is not None


def file_size(path: Path) -> int:
    return path.stat().st_size
