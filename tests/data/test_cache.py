"""Cached dataset copies are read-only and checked on every use (issue 9, item 5a).

``run.use_dataset``, ``keel model evaluate`` and the promotion gates read
``.keel/cache/datasets/NAME/N/``; a copy changed after it was written must
never be what they read.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import keel
import keel.data
import keel.data.cache
from keel.data.cache import cached_copy
from keel.workspace import current_workspace

HOLDOUT = "x,y\n1,0\n2,1\n3,1\n"


@pytest.fixture
def not_racy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by a test are too recent to vouch for (and would always be
    re-hashed); with no racy window, stat keys are trusted as they would be in use."""
    monkeypatch.setattr(keel.data.cache, "RACY_NS", 0)


def make_version(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "holdout.csv").write_text(HOLDOUT)
    (data / "sub" / "more.csv").write_text("x,y\n9,9\n")
    keel.data.add(data, "holdout")
    return cached_copy(current_workspace(), keel.data.get("holdout@1"))


def count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    hashed: list[str] = []
    real = keel.data.cache.hash_file

    def counting(path: os.PathLike[str]) -> str:
        hashed.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(keel.data.cache, "hash_file", counting)
    return hashed


def test_the_copy_is_read_only_and_holds_only_the_data(backend: str, tmp_path: Path) -> None:
    local = make_version(tmp_path)
    assert sorted(os.listdir(local)) == ["holdout.csv", "sub"]  # no .keel-complete marker
    for path in (local / "holdout.csv", local / "sub" / "more.csv"):
        assert path.stat().st_mode & 0o222 == 0
    assert (local.parent / "1.json").is_file()  # the record lives beside the folder


def test_an_appended_file_is_repaired_before_it_is_read(backend: str, tmp_path: Path) -> None:
    local = make_version(tmp_path)
    target = local / "holdout.csv"
    target.chmod(0o644)
    with open(target, "a") as handle:
        handle.write("4,0\n5,0\n")
    with keel.start_run() as run:
        assert (run.use_dataset("holdout@1") / "holdout.csv").read_text() == HOLDOUT
    assert target.stat().st_mode & 0o222 == 0


def test_a_same_size_rewrite_with_its_times_put_back_is_repaired(
        backend: str, tmp_path: Path, not_racy: None) -> None:
    local = make_version(tmp_path)
    cached_copy(current_workspace(), keel.data.get("holdout@1"))  # keys recorded, not racy
    target = local / "holdout.csv"
    before = target.stat()
    time.sleep(0.05)  # a later clock tick, so that ctime moves
    target.chmod(0o644)
    target.write_text(HOLDOUT.replace("1,0", "1,1"))
    target.chmod(before.st_mode)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_size == before.st_size
    assert keel.data.local_path("holdout@1").joinpath("holdout.csv").read_text() == HOLDOUT


def test_missing_replaced_and_extra_entries_are_put_right(backend: str, tmp_path: Path) -> None:
    local = make_version(tmp_path)
    (local / "sub" / "more.csv").unlink()
    (local / "holdout.csv").unlink()
    (local / "holdout.csv").symlink_to(tmp_path / "data" / "sub" / "more.csv")
    (local / "stray.csv").write_text("x,y\n0,0\n")
    (local / "junk").mkdir()
    (local / ".keel-complete").write_text("left by an older keel")
    local = keel.data.local_path("holdout@1")
    assert sorted(os.listdir(local)) == ["holdout.csv", "sub"]
    assert not (local / "holdout.csv").is_symlink()
    assert (local / "holdout.csv").read_text() == HOLDOUT
    assert (local / "sub" / "more.csv").read_text() == "x,y\n9,9\n"


def test_unchanged_files_are_not_re_hashed(backend: str, tmp_path: Path, not_racy: None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    local = make_version(tmp_path)
    version = keel.data.get("holdout@1")
    cached_copy(current_workspace(), version)
    hashed = count_hashing(monkeypatch)
    cached_copy(current_workspace(), version)
    assert hashed == []  # a stat per file, no reads
    os.utime(local / "holdout.csv", ns=(1, 1))  # touched: re-hashed once, still intact
    cached_copy(current_workspace(), version)
    assert hashed == [str(local / "holdout.csv")]


def test_a_single_file_version_is_checked_too(backend: str, tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(HOLDOUT)
    keel.data.add(tmp_path / "t.csv", "table")
    local = keel.data.local_path("table@1")
    assert local.name == "t.csv" and local.stat().st_mode & 0o222 == 0
    local.chmod(0o644)
    local.write_text("x,y\n")
    assert keel.data.local_path("table@1").read_text() == HOLDOUT
