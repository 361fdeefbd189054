"""The working-folder index: status answers from it only while it is right."""

from __future__ import annotations

import importlib
import itertools
import os
import random
import shutil
from pathlib import Path

import pytest
from blake3 import blake3

import keel.data
import keel.data.quick
from keel.data import index
from keel.errors import InvalidInput
from keel.workspace import current_workspace

# The module, not the function keel.data re-exports under the same name.
STATUS = importlib.import_module("keel.data.status")


def write(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def index_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / ".keel" / "cache" / "index"
    return sorted(folder.glob("*.bin")) if folder.exists() else []


@pytest.fixture
def not_racy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by a test are seconds old at most, so every key would be racy
    (and re-hashed); with no racy window the index trusts them, as it would in use."""
    monkeypatch.setattr(index, "RACY_NS", 0)


def refuse_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if status falls back to the full scan (which loads the manifest)."""
    def refuse(*_args: object) -> None:
        raise AssertionError("status loaded the manifest: the index was not used")

    monkeypatch.setattr(STATUS, "load_manifest", refuse)


@pytest.fixture
def no_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_manifest(monkeypatch)


def count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each status hashed, one number per call that hashed any."""
    calls: list[int] = []
    real = keel.data.quick.digests

    def counting(files, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(files))
        return real(files, *args, **kwargs)

    monkeypatch.setattr(keel.data.quick, "digests", counting)
    return calls


def truth(data: Path, manifest: dict[str, str]) -> tuple[tuple[str, ...], ...]:
    """(added, removed, modified), from reading every file."""
    now = {p.relative_to(data).as_posix(): blake3(p.read_bytes()).hexdigest()
           for p in data.rglob("*") if p.is_file()} if data.exists() else {}
    return (tuple(sorted(now.keys() - manifest.keys())),
            tuple(sorted(manifest.keys() - now.keys())),
            tuple(sorted(p for p in now.keys() & manifest.keys() if now[p] != manifest[p])))


def as_tuple(diff: keel.data.ManifestDiff) -> tuple[tuple[str, ...], ...]:
    return diff.added, diff.removed, diff.modified


def test_add_writes_the_index_and_a_clean_status_needs_no_manifest(
        backend: str, tmp_path: Path, not_racy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write(tmp_path / "data", {"a": "1", "sub/b": "2", "sub/deep/c": "3"})
    keel.data.add(data, "raw")
    assert len(index_files(tmp_path)) == 1
    hashed = count_hashing(monkeypatch)
    refuse_manifest(monkeypatch)
    assert not keel.data.status("raw").changed
    assert hashed == []  # nothing was read


def test_a_touched_file_is_hashed_once_then_trusted_again(
        backend: str, tmp_path: Path, not_racy: None, no_manifest: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = write(tmp_path / "data", {"a": "same", "b": "other"})
    keel.data.add(data, "raw")
    hashed = count_hashing(monkeypatch)
    os.utime(data / "a", ns=(10**9, 10**9))  # new mtime, same bytes
    assert not keel.data.status("raw").changed
    assert not keel.data.status("raw").changed
    assert hashed == [1]  # the second status found the new key recorded


def test_a_rewrite_of_the_same_size_is_modified_even_with_the_old_mtime_put_back(
        backend: str, tmp_path: Path, not_racy: None, no_manifest: None) -> None:
    data = write(tmp_path / "data", {"a": "AAAA", "b": "BBBB"})
    keel.data.add(data, "raw")
    before = (data / "a").stat()
    (data / "a").write_text("ZZZZ")  # same size, same inode
    os.utime(data / "a", ns=(before.st_atime_ns, before.st_mtime_ns))  # as cp -p would
    assert keel.data.status("raw").modified == ("a",)  # ctime moved
    assert keel.data.status("raw").modified == ("a",)  # and it stays modified
    (data / "a").write_text("AAAA")  # put back: clean again
    assert not keel.data.status("raw").changed


def test_a_deleted_or_damaged_index_only_costs_a_full_scan(
        backend: str, tmp_path: Path, not_racy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write(tmp_path / "data", {"a": "1", "sub/b": "2"})
    keel.data.add(data, "raw")
    (data / "sub" / "b").write_text("changed")
    for path in index_files(tmp_path):
        path.unlink()
    assert keel.data.status("raw").modified == ("sub/b",)  # full scan, writes a new index
    assert len(index_files(tmp_path)) == 1
    index_files(tmp_path)[0].write_bytes(b"keelidx\x01 not marshal at all")
    assert keel.data.status("raw").modified == ("sub/b",)
    refuse_manifest(monkeypatch)  # rebuilt: the index answers again
    assert keel.data.status("raw").modified == ("sub/b",)


def test_an_index_for_another_version_is_not_used(backend: str, tmp_path: Path,
                                                   not_racy: None) -> None:
    data = write(tmp_path / "data", {"a": "v1", "b": "same"})
    keel.data.add(data, "raw")
    (data / "a").write_text("v2")
    (data / "c").write_text("new")
    keel.data.add(data, "raw")  # the index now describes raw@2
    assert as_tuple(keel.data.status("raw@1")) == (("c",), (), ("a",))
    assert not keel.data.status("raw@2").changed


def test_racy_files_are_hashed_until_they_are_old_enough(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "RACY_NS", 3600 * 10**9)  # a slow machine cannot age them
    data = write(tmp_path / "data", {"a": "1", "b": "2"})
    keel.data.add(data, "raw")  # both files were written just now: racy
    hashed = count_hashing(monkeypatch)
    assert not keel.data.status("raw").changed
    assert hashed == [2]  # read again rather than trusted from the stat cache
    monkeypatch.setattr(index, "RACY_NS", 0)  # time passes
    assert not keel.data.status("raw").changed  # verified, now recorded as trusted
    assert not keel.data.status("raw").changed
    assert hashed == [2, 2]


def test_a_symlink_loop_made_after_the_add_is_still_reported(
        backend: str, tmp_path: Path, not_racy: None) -> None:
    data = write(tmp_path / "data", {"a": "1", "sub/b": "2"})
    keel.data.add(data, "raw")
    (data / "sub" / "loop").symlink_to(data, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symlink loop"):
        keel.data.status("raw")


def test_structural_changes_match_the_truth_with_and_without_the_index(
        backend: str, tmp_path: Path, not_racy: None) -> None:
    """Random edits; after each round the index's answer, the full scan's answer and
    the answer from reading every file must agree."""
    rng = random.Random(7)
    data = tmp_path / "data"
    files = {f"d{i % 4}/{'e/' if i % 3 == 0 else ''}f{i}": os.urandom(20) for i in range(40)}
    write(data, files)
    keel.data.add(data, "raw")
    manifest = {e.path: e.digest
                for e in keel.data.load_manifest(current_workspace(),
                                                 keel.data.get("raw")).entries}
    stamps = itertools.count(1000)

    def bump(rel: str) -> None:
        """New mtimes for the folders above ``rel``. A test is faster than a filesystem's
        time tick, and a folder changed within the tick its times were recorded in keeps
        them: the index treats such times as racy, but this test turns that off."""
        parts = rel.split("/")
        for depth in range(len(parts)):
            folder = data.joinpath(*parts[:depth])
            if folder.is_dir():
                stamp = next(stamps) * 10**9
                os.utime(folder, ns=(stamp, stamp))

    for round_ in range(12):
        present = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
        for _ in range(3):
            op, victim = rng.randrange(7), rng.choice(present) if present else None
            if victim is None or op == 0:
                victim = f"new{round_}/x{rng.randrange(9)}"
                write(data, {victim: os.urandom(8)})
            elif op == 1:
                remove(data / victim)
            elif op == 2 and not (data / victim).is_dir():  # a new size: no tick hides it
                write(data, {victim: os.urandom(rng.randrange(21, 40))})
            elif op == 3 and (data / victim).exists():  # touched, same bytes
                os.utime(data / victim, ns=(round_ * 10**9, round_ * 10**9))
            elif op == 4:  # a folder removed whole
                shutil.rmtree((data / victim).parent, ignore_errors=True)
            elif op == 5:  # a file replaced by a folder
                remove(data / victim)
                victim += "/inside"
                write(data, {victim: "x"})
            elif op == 6 and victim in files:  # restored to the version's bytes
                remove(data / victim)
                write(data, {victim: files[victim]})
            bump(victim)
        expected = truth(data, manifest)
        assert as_tuple(keel.data.status("raw")) == expected, f"index, round {round_}"
        assert as_tuple(keel.data.status("raw")) == expected, f"index again, round {round_}"
        for path in index_files(tmp_path):
            path.unlink()
        assert as_tuple(keel.data.status("raw")) == expected, f"full scan, round {round_}"


def test_a_file_added_to_a_folder_whose_mtime_is_put_back_is_still_found(
        backend: str, tmp_path: Path, not_racy: None, no_manifest: None) -> None:
    data = write(tmp_path / "data", {"sub/a": "1", "b": "2"})
    old = 10**18  # recorded folder times well in the past: not racy
    os.utime(data / "sub", ns=(old, old))
    keel.data.add(data, "raw")
    assert not keel.data.status("raw").changed  # unchanged folders are not even listed
    (data / "sub" / "new").write_text("3")
    os.utime(data / "sub", ns=(old, old))  # the folder's mtime as recorded; its ctime moved
    assert keel.data.status("raw").added == ("sub/new",)
