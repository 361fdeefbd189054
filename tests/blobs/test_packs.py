"""Small blobs packed together: fewer files, same guarantees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from blake3 import blake3

from keel.blobs import BlobStore
from keel.errors import CorruptData, NotFound


def test_packed_blobs_read_back_verified(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    payloads = [os.urandom(4096) for _ in range(500)]
    with store.pack_writer() as pack:
        for data in payloads:
            pack.add(data, blake3(data).hexdigest())
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 2  # one pack and its index, not 500 files
    for data in payloads:
        assert store.get_bytes(blake3(data).hexdigest()) == data
    assert {blake3(d).hexdigest() for d in payloads} <= store.digests()


def test_another_process_sees_a_published_pack(tmp_path: Path) -> None:
    writer, reader = BlobStore(tmp_path / "b"), BlobStore(tmp_path / "b")
    data = b"shared bytes"
    digest = blake3(data).hexdigest()
    with writer.pack_writer() as pack:
        pack.add(data, digest)
    assert reader.get_bytes(digest) == data  # the reader loads new indexes on a miss


def test_unpublished_pack_is_invisible(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "b")
    digest = blake3(b"x").hexdigest()
    with pytest.raises(RuntimeError), store.pack_writer() as pack:
        pack.add(b"x", digest)
        raise RuntimeError("add failed half way")
    assert not store.exists(digest)
    with pytest.raises(NotFound):
        store.get_bytes(digest)
    assert not list((tmp_path / "b" / "packs").glob("*.pack"))


def test_corruption_inside_a_pack_is_detected(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "b")
    first, second = b"a" * 100, b"b" * 100
    with store.pack_writer() as pack:
        pack.add(first, blake3(first).hexdigest())
        pack.add(second, blake3(second).hexdigest())
    pack_file = next((tmp_path / "b" / "packs").glob("*.pack"))
    pack_file.chmod(0o644)
    raw = bytearray(pack_file.read_bytes())
    raw[150] ^= 0xFF  # flip a byte of the second blob
    pack_file.write_bytes(bytes(raw))
    assert store.get_bytes(blake3(first).hexdigest()) == first
    with pytest.raises(CorruptData, match=blake3(second).hexdigest()):
        store.get_bytes(blake3(second).hexdigest())
