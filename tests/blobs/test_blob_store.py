"""The content-addressed blob store: dedupe, atomic writes, verified reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from blake3 import blake3

from keel.blobs import BlobStore
from keel.errors import CorruptData, InvalidInput, NotFound


def test_round_trip_and_digest_is_blake3(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = os.urandom(3 * 1024 * 1024)
    digest = store.put_bytes(data)
    assert digest == blake3(data).hexdigest()
    assert store.get_bytes(digest) == data
    assert Path(store.path_of(digest)).parent.name == digest[:2]  # ab/cdef... fan-out


def test_large_file_uses_the_same_digest_as_bytes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = os.urandom(20 * 1024 * 1024)  # above the multi-threaded hashing threshold
    (tmp_path / "big").write_bytes(data)
    assert store.put_file(tmp_path / "big") == blake3(data).hexdigest()


def test_same_bytes_stored_once_and_read_only(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    first = store.put_bytes(b"same")
    second = store.put_bytes(b"same")
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert first == second and len(files) == 1
    assert not os.access(files[0], os.W_OK) or os.geteuid() == 0
    assert files[0].stat().st_mode & 0o222 == 0


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    for n in range(20):
        store.put_bytes(str(n).encode())
    assert not [p for p in (tmp_path / "blobs").rglob("*tmp*")]


def test_corruption_is_detected(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    digest = store.put_bytes(b"original")
    path = Path(store.path_of(digest))
    path.chmod(0o644)
    path.write_bytes(b"0riginal")
    with pytest.raises(CorruptData, match=digest):
        store.get_bytes(digest)
    with pytest.raises(CorruptData):
        store.fetch(digest, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_missing_and_malformed_digests(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(NotFound, match="missing"):
        store.get_bytes("0" * 64)
    with pytest.raises(InvalidInput, match="not a BLAKE3"):
        store.get_bytes("../../etc/passwd")


def test_ingest_file_names_the_stored_copy_by_its_own_digest(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = os.urandom(9 * 1024 * 1024)
    (tmp_path / "big").write_bytes(data)
    digest = store.ingest_file(tmp_path / "big")
    assert digest == blake3(data).hexdigest()
    assert store.get_bytes(digest) == data
    assert Path(store.path_of(digest)).stat().st_mode & 0o222 == 0  # read-only
    assert store.ingest_file(tmp_path / "big") == digest  # already there: same answer
    assert not [p for p in (tmp_path / "blobs").rglob("*tmp*")]


def test_ingest_file_stores_nothing_when_the_source_moved(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    (tmp_path / "big").write_bytes(os.urandom(1024))
    assert store.ingest_file(tmp_path / "big", unchanged=lambda: False) is None
    assert not [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
