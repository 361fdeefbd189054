"""Many small blobs in one HTTP body: ``[64-byte hex digest][u64 size][bytes]``
repeated. ``keel data add`` and ``checkout`` through a keel server move
thousands of small files; a request per file cost ~8 ms each (most of it
the round trip and the server's fsync per blob), a frame costs 72 bytes.
Both ends check every blob against its digest."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Iterable, Iterator

from keel.blobs.digest import hash_bytes, is_digest
from keel.errors import InvalidInput

HEADER = struct.Struct(">64sQ")
MAX_FRAME = 64 * 1024 * 1024  # one blob in a batch; larger ones travel alone
BATCH_BYTES = 8 * 1024 * 1024  # what a client puts in one request


def encode(items: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    """The frames of ``(digest, data)`` pairs."""
    for digest, data in items:
        yield HEADER.pack(digest.encode(), len(data))
        yield data


def _check(digest_raw: bytes, size: int) -> str:
    digest = digest_raw.decode("ascii", "replace")
    if not is_digest(digest):
        raise InvalidInput(f"a frame names {digest[:70]!r}, not a blob digest")
    if size > MAX_FRAME:
        raise InvalidInput(f"a framed blob of {size} bytes is larger than {MAX_FRAME}",
                           hint="send large blobs alone (PUT /api/v1/blobs/<digest>)")
    return digest


def _verified(digest: str, data: bytes) -> tuple[str, bytes]:
    # InvalidInput: on the server these are the request's bytes; a client that
    # receives them damaged reports CorruptData itself.
    if hash_bytes(data) != digest:
        raise InvalidInput(f"the framed bytes of {digest} do not have that digest",
                           hint="the transfer was damaged: send it again")
    return digest, data


def decode(body: bytes) -> list[tuple[str, bytes]]:
    """Every ``(digest, data)`` of a whole body, each checked against its digest."""
    out, offset = [], 0
    while offset < len(body):
        if len(body) - offset < HEADER.size:
            raise InvalidInput("the body ends inside a frame header")
        raw, size = HEADER.unpack_from(body, offset)
        digest = _check(raw, size)
        offset += HEADER.size
        if len(body) - offset < size:
            raise InvalidInput(f"the body ends inside the frame of {digest}")
        out.append(_verified(digest, body[offset:offset + size]))
        offset += size
    return out


async def decode_stream(chunks: AsyncIterator[bytes], limit: int
                        ) -> AsyncIterator[tuple[str, bytes]]:
    """``decode`` over a streamed body, holding one frame at a time; a body over
    ``limit`` bytes raises :class:`TooLarge`."""
    buffer, total = bytearray(), 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise TooLarge(limit)
        buffer += chunk
        while len(buffer) >= HEADER.size:
            raw, size = HEADER.unpack_from(buffer)
            digest = _check(raw, size)
            if len(buffer) < HEADER.size + size:
                break
            data = bytes(buffer[HEADER.size:HEADER.size + size])
            del buffer[:HEADER.size + size]
            yield _verified(digest, data)
    if buffer:
        raise InvalidInput("the body ends inside a frame")


class TooLarge(InvalidInput):
    """A request body over the server's limit (413)."""

    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than {limit} bytes",
                         hint="store large data in the object store directly (KEEL_BLOBS)")
