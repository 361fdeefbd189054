"""Copying while hashing: the digest always names exactly the bytes written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from blake3 import blake3

from keel.blobs import copy
from keel.blobs.copy import CHUNK, copy_hashing


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, CHUNK - 1, CHUNK + 4097, 5 * CHUNK + 123])
def test_copy_is_exact_and_its_digest_is_blake3(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)  # unaligned tails go through the page cache
    (tmp_path / "src").write_bytes(data)
    assert copy_hashing(tmp_path / "src", tmp_path / "dst") == blake3(data).hexdigest()
    assert (tmp_path / "dst").read_bytes() == data


def test_tmpfs_gets_the_copy_too(tmp_path: Path) -> None:
    if not Path("/dev/shm").is_dir():
        pytest.skip("no tmpfs at /dev/shm")
    data = os.urandom(CHUNK + 10)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:  # no O_DIRECT before Linux 6.6
        (Path(shm) / "src").write_bytes(data)
        assert copy_hashing(Path(shm) / "src", Path(shm) / "dst") == blake3(data).hexdigest()
        assert (Path(shm) / "dst").read_bytes() == data


def test_the_plain_copy_gives_the_same_digest(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy, "POSIX", False)  # the path Windows takes
    data = os.urandom(CHUNK + 3)
    (tmp_path / "src").write_bytes(data)
    assert copy_hashing(tmp_path / "src", tmp_path / "dst") == blake3(data).hexdigest()
    assert (tmp_path / "dst").read_bytes() == data


def test_an_existing_destination_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(b"new")
    (tmp_path / "dst").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        copy_hashing(tmp_path / "src", tmp_path / "dst")
    assert (tmp_path / "dst").read_bytes() == b"old"
