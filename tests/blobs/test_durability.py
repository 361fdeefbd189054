"""Blobs, packs and pack indexes reach the disk before they become visible.

Each test records the ``fsync`` and rename system calls the store makes (the
store itself is real, on a real folder) and checks their order: the new
file is fsynced before the rename that publishes it, and the folder after.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from blake3 import blake3

from keel.blobs import BlobStore

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="names open files through /proc/self/fd")

Event = tuple[str, str, str]  # ("fsync", path, "") or ("rename", source, dest)


@pytest.fixture
def syscalls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Event]]:
    """Every fsync (by path) and rename the code under test makes, in order."""
    events: list[Event] = []
    real_fsync, real_replace, real_rename = os.fsync, os.replace, os.rename

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"), ""))
        real_fsync(fd)

    def replace(src: str, dst: str, **kwargs: object) -> None:
        events.append(("rename", os.path.abspath(src), os.path.abspath(dst)))
        real_replace(src, dst, **kwargs)  # type: ignore[arg-type]

    def rename(src: str, dst: str, **kwargs: object) -> None:
        events.append(("rename", os.path.abspath(src), os.path.abspath(dst)))
        real_rename(src, dst, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rename", rename)
    yield events


def assert_published_durably(events: list[Event], final: Path) -> None:
    """``final`` appeared by a rename of a fsynced file, and its folder was fsynced after."""
    renames = [i for i, e in enumerate(events) if e[0] == "rename" and e[2] == str(final)]
    assert renames, f"{final} was not published by a rename: {events}"
    at = renames[0]
    temp = events[at][1]
    assert ("fsync", temp, "") in events[:at], f"{temp} not fsynced before its rename"
    assert ("fsync", str(final.parent), "") in events[at + 1:], \
        f"{final.parent} not fsynced after the rename"


def test_a_loose_blob_is_fsynced_before_it_is_renamed_into_place(
        tmp_path: Path, syscalls: list[Event]) -> None:
    store = BlobStore(tmp_path / "b")
    digest = store.put_bytes(b"hello")
    assert_published_durably(syscalls, Path(store.path_of(digest)))


def test_a_new_fanout_folder_is_made_durable_too(tmp_path: Path,
                                                 syscalls: list[Event]) -> None:
    BlobStore(tmp_path / "b").put_bytes(b"hello")
    assert ("fsync", str(tmp_path / "b"), "") in syscalls  # the new ab/ folder's name


def test_copied_and_ingested_files_are_fsynced_before_they_are_published(
        tmp_path: Path, syscalls: list[Event]) -> None:
    store = BlobStore(tmp_path / "b")
    (tmp_path / "big").write_bytes(os.urandom(9 * 1024 * 1024))
    digest = store.ingest_file(tmp_path / "big")
    assert digest is not None
    assert_published_durably(syscalls, Path(store.path_of(digest)))
    syscalls.clear()
    (tmp_path / "other").write_bytes(os.urandom(2 * 1024 * 1024))
    copied = store.put_file(tmp_path / "other")  # _put_local_copy
    assert_published_durably(syscalls, Path(store.path_of(copied)))


def test_a_pack_and_its_index_are_fsynced_before_either_is_visible(
        tmp_path: Path, syscalls: list[Event]) -> None:
    store = BlobStore(tmp_path / "b")
    with store.pack_writer() as pack:
        for n in range(10):
            data = str(n).encode()
            pack.add(data, blake3(data).hexdigest())
    packs = tmp_path / "b" / "packs"
    pack_file = next(packs.glob("*.pack"))
    index_file = pack_file.with_suffix(".idx")
    assert_published_durably(syscalls, pack_file)
    assert_published_durably(syscalls, index_file)
    order = [e[2] for e in syscalls if e[0] == "rename"]
    assert order.index(str(pack_file)) < order.index(str(index_file))  # the pack first
