"""Checkout (issue 10): destinations of the wrong shape, all-or-nothing writes that
name the damaged file, and the link types (copy, reflink, hardlink, symlink)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from blake3 import blake3

import keel.data
from keel.data import writer_process
from keel.data.link import reflink_works
from keel.errors import Conflict, CorruptData, InvalidInput, KeelError, NotFound
from keel.workspace import Workspace, current_workspace


def write(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every entry under ``folder`` (folders as b'<dir>'), to compare before and after."""
    return {p.relative_to(folder).as_posix(): b"<dir>" if p.is_dir() else p.read_bytes()
            for p in sorted(folder.rglob("*"))}


def entry(ref: str, path: str) -> keel.data.ManifestEntry:
    ws = current_workspace()
    return keel.data.load_manifest(ws, keel.data.get(ref)).by_path[path]


def corrupt(holder: Callable[[], Workspace], digest: str) -> None:
    """Damage a blob wherever it lies: in a pack or a file of its own, in the test's
    workspace or the keel server's that holds its blobs."""
    packs = holder().blobs.packs
    if packs is not None and packs.contains(digest):
        corrupt_packed(digest, holder())
    else:
        path = Path(holder().blobs.path_of(digest))
        path.chmod(0o644)
        with open(path, "r+b") as handle:
            handle.write(b"\x00garbage")


def corrupt_packed(digest: str, holder: Workspace | None = None) -> None:
    """Flip a byte of a packed blob inside its pack file (root ignores 0o444 anyway)."""
    packs = (holder or current_workspace()).blobs.packs
    assert packs is not None and packs.contains(digest)
    name, offset, _size = packs.entries[digest]
    pack = packs.folder / f"{name}.pack"
    pack.chmod(0o644)
    with open(pack, "r+b") as handle:
        handle.seek(offset)
        first = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([first[0] ^ 0xFF]))


# -- destinations of the wrong shape (each was a raw traceback) ---------------------


def test_a_folder_version_onto_an_existing_file_is_a_clear_error(backend: str,
                                                                 tmp_path: Path) -> None:
    write(tmp_path / "data", {"a.txt": "1", "sub/b.txt": "2"})
    keel.data.add(tmp_path / "data", "raw")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(Conflict, match=r"notes\.txt is a file, but raw@1 is a folder") as info:
        keel.data.checkout("raw@1", tmp_path / "notes.txt")
    assert "DEST" in (info.value.hint or "")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_destination_under_a_file_is_a_clear_error(backend: str, tmp_path: Path) -> None:
    write(tmp_path / "data", {"a.txt": "1"})
    keel.data.add(tmp_path / "data", "raw")
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    keel.data.add(tmp_path / "t.csv", "table")
    (tmp_path / "notes.txt").write_text("mine")
    for ref, dest in (("raw@1", "notes.txt/sub"), ("table@1", "notes.txt/t.csv")):
        with pytest.raises(Conflict, match=r"notes\.txt is a file, so .* cannot be created"):
            keel.data.checkout(ref, tmp_path / dest)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_file_version_goes_inside_a_folder_and_refuses_a_folder_of_its_name(
        backend: str, tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    keel.data.add(tmp_path / "t.csv", "table")
    (tmp_path / "box").mkdir()
    result = keel.data.checkout("table@1", tmp_path / "box")  # as cp does
    assert result.dest == tmp_path / "box" / "t.csv"
    assert (tmp_path / "box" / "t.csv").read_text() == "a,b\n1,2\n"
    (tmp_path / "other" / "t.csv").mkdir(parents=True)
    with pytest.raises(Conflict, match=r"t\.csv is a folder, but table@1 is a single file"):
        keel.data.checkout("table@1", tmp_path / "other")


def test_a_single_file_under_another_name_is_compared_not_overwritten(
        backend: str, tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("v1")
    keel.data.add(tmp_path / "t.txt", "table")
    (tmp_path / "mine.txt").write_text("my own file")
    with pytest.raises(Conflict, match="local changes"):
        keel.data.checkout("table@1", tmp_path / "mine.txt")
    assert (tmp_path / "mine.txt").read_text() == "my own file"


def test_the_shape_of_a_path_may_change_between_versions(backend: str, tmp_path: Path) -> None:
    data = write(tmp_path / "data", {"a": "1", "sub": "a file first"})
    keel.data.add(data, "raw")
    (data / "sub").unlink()
    write(data, {"sub/inner": "then a folder"})
    keel.data.add(data, "raw")
    keel.data.checkout("raw@1")
    assert (data / "sub").read_text() == "a file first"
    keel.data.checkout("raw@2")
    assert (data / "sub" / "inner").read_text() == "then a folder"


def test_an_untracked_file_in_the_way_refuses_before_anything_changes(
        backend: str, tmp_path: Path) -> None:
    data = write(tmp_path / "data", {"a": "1", "sub/inner": "2"})
    keel.data.add(data, "raw")
    dest = write(tmp_path / "dest", {"a": "1", "sub": "my notes"})
    before = snapshot(dest)
    with pytest.raises(Conflict, match=r"sub is a file .* raw@1 has a folder there"):
        keel.data.checkout("raw@1", dest, force=True)
    assert snapshot(dest) == before


# -- all or nothing ---------------------------------------------------------------


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "loose"])
def test_a_corrupt_blob_stops_checkout_before_any_file_is_written(
        blob_holder: Callable[[], Workspace], tmp_path: Path, packed: bool) -> None:
    rows = 50 if packed else 90_000  # loose: a file at or above the 1 MiB packing limit
    parts = {f"data/part-{n}.csv": "id,amount\n" + "".join(f"{i},{n * i}.25\n"
                                                          for i in range(rows))
             for n in (1, 2, 3)}
    write(tmp_path / "d", parts)
    keel.data.add(tmp_path / "d", "transactions")
    victim = entry("transactions@1", "data/part-3.csv").digest
    corrupt(blob_holder, victim)
    dest = tmp_path / "fresh"
    with pytest.raises(CorruptData, match=r"transactions@1:data/part-3\.csv") as info:
        keel.data.checkout("transactions@1", dest)
    assert "nothing was written" in info.value.message
    assert not dest.exists()  # not even its folders


def test_a_corrupt_blob_leaves_an_existing_checkout_untouched(
        blob_holder: Callable[[], Workspace], tmp_path: Path) -> None:
    data = write(tmp_path / "data", {"a.txt": "one", "b.txt": "two", "c.txt": "three"})
    keel.data.add(data, "raw")
    write(data, {"a.txt": "ONE", "b.txt": "TWO", "c.txt": "THREE", "new.txt": "n"})
    keel.data.add(data, "raw")
    before = snapshot(data)
    corrupt(blob_holder, entry("raw@1", "c.txt").digest)
    with pytest.raises(CorruptData, match=r"raw@1:c\.txt"):
        keel.data.checkout("raw@1")
    assert snapshot(data) == before  # a.txt and b.txt not replaced, new.txt not removed
    assert not keel.data.status("raw").changed  # and still compared with raw@2


def test_a_missing_blob_names_the_file(blob_file: Callable[[str], Path],
                                       tmp_path: Path) -> None:
    write(tmp_path / "d", {"big.bin": os.urandom((1 << 20) + 1)})
    keel.data.add(tmp_path / "d", "raw")
    blob = blob_file(entry("raw@1", "big.bin").digest)
    blob.chmod(0o644)
    blob.unlink()
    with pytest.raises(NotFound, match=r"raw@1:big\.bin"):
        keel.data.checkout("raw@1", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failing_write_rolls_back_what_was_staged(backend: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = write(tmp_path / "data", {"a.txt": "1", "b.txt": "2", "sub/c.txt": "3"})
    keel.data.add(data, "raw")
    write(data, {"a.txt": "edited", "b.txt": "edited too"})
    keel.data.add(data, "raw")
    from keel.data import destination

    real = destination.Destination.new_file
    calls = []

    def full_disk(self, rel, data_, mode, temp):  # type: ignore[no-untyped-def]
        calls.append(rel)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, rel, data_, mode, temp)

    monkeypatch.setattr(destination.Destination, "new_file", full_disk)
    dest = tmp_path / "copy"
    with pytest.raises(KeelError, match="No space left on device"):
        keel.data.checkout("raw@1", dest)
    assert not dest.exists()
    before = snapshot(data)
    calls.clear()
    with pytest.raises(KeelError, match="nothing was changed"):
        keel.data.checkout("raw@1", data)  # a.txt staged under a temporary name, b.txt fails
    assert snapshot(data) == before  # no temporary file left, a.txt not replaced


# -- big checkouts: half the files are written by a second process ------------------


class Recorded:
    """A progress bar that remembers what it was told."""

    def __init__(self) -> None:
        self.total = self.advanced = 0
        self.finished = False

    def start(self, description: str, total: int) -> None:
        self.total = total

    def advance(self, amount: int = 1) -> None:
        self.advanced += amount

    def done(self) -> None:
        self.finished = True


def many_files(root: Path) -> dict[str, bytes]:
    """800 small files in 8 folders (enough for checkout to split the writing)."""
    files = {f"f{n // 100}/part-{n}.bin": os.urandom(100 + n) for n in range(800)}
    write(root, files)
    return files


def test_a_big_checkout_writes_every_file_and_reports_all_progress(backend: str,
                                                                   tmp_path: Path) -> None:
    files = many_files(tmp_path / "d")
    keel.data.add(tmp_path / "d", "many")
    progress = Recorded()
    result = keel.data.checkout("many", tmp_path / "out", progress=progress)
    assert len(result.written) == 800
    assert snapshot(tmp_path / "out") == {**files, **{f"f{n}": b"<dir>" for n in range(8)}}
    assert progress.advanced == progress.total == sum(map(len, files.values()))
    assert progress.finished
    assert not keel.data.status("many", tmp_path / "out").changed


@pytest.mark.parametrize("failing", ["f0/part-50.bin", "f7/part-750.bin"],
                         ids=["first-half", "second-half"])
def test_a_failure_in_either_half_of_a_big_checkout_rolls_everything_back(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    many_files(tmp_path / "d")
    keel.data.add(tmp_path / "d", "many")
    from keel.data import destination

    real = destination.Destination.new_file

    def full_disk(self, rel, data_, mode, temp):  # type: ignore[no-untyped-def]
        if rel == failing:
            raise OSError(28, "No space left on device", rel)
        return real(self, rel, data_, mode, temp)

    monkeypatch.setattr(destination.Destination, "new_file", full_disk)
    dest = tmp_path / "out"
    with pytest.raises(KeelError, match=r"No space left on device.*nothing was changed"):
        keel.data.checkout("many", dest)
    assert not dest.exists()  # neither half's files nor their folders


@pytest.mark.local_blobs  # a store elsewhere is written by threads: the exit would be ours
@pytest.mark.skipif(not writer_process.available(), reason="no writer process here")
def test_a_writer_process_killed_midway_leaves_nothing_behind(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    many_files(tmp_path / "d")
    keel.data.add(tmp_path / "d", "many")
    from keel.data import destination

    real = destination.Destination.new_file

    def killed(self, rel, data_, mode, temp):  # type: ignore[no-untyped-def]
        if rel == "f7/part-760.bin":  # in the second half: the writer process's
            os._exit(9)  # as the out-of-memory killer would end it
        return real(self, rel, data_, mode, temp)

    monkeypatch.setattr(destination.Destination, "new_file", killed)
    dest = tmp_path / "out"
    with pytest.raises(KeelError, match="ended unexpectedly"):
        keel.data.checkout("many", dest)
    assert not dest.exists()


def test_a_big_checkout_writes_everything_itself_when_no_process_can_be_started(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = many_files(tmp_path / "d")
    keel.data.add(tmp_path / "d", "many")

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")  # at the process limit

    monkeypatch.setattr(os, "fork", no_fork)
    keel.data.checkout("many", tmp_path / "out")
    assert snapshot(tmp_path / "out") == {**files, **{f"f{n}": b"<dir>" for n in range(8)}}


def test_a_corrupt_blob_in_a_big_checkout_names_the_file_and_leaves_nothing(
        blob_holder: Callable[[], Workspace], tmp_path: Path) -> None:
    many_files(tmp_path / "d")
    keel.data.add(tmp_path / "d", "many")
    corrupt(blob_holder, entry("many@1", "f6/part-612.bin").digest)
    dest = tmp_path / "out"
    with pytest.raises(CorruptData, match=r"many@1:f6/part-612\.bin"):
        keel.data.checkout("many@1", dest)
    assert not dest.exists()


# -- link types ---------------------------------------------------------------------


def big_and_small(tmp_path: Path) -> Path:
    """A folder with a loose (linkable) file, a packed file and an executable."""
    data = write(tmp_path / "data", {"big.bin": os.urandom((1 << 20) + 5), "small.txt": "s"})
    (data / "run.sh").write_bytes(b"#!/bin/sh\n" + os.urandom((1 << 20) + 5))
    (data / "run.sh").chmod(0o755)
    keel.data.add(data, "raw")
    return data


def test_unknown_link_type_is_refused(backend: str, tmp_path: Path) -> None:
    big_and_small(tmp_path)
    with pytest.raises(InvalidInput, match="unknown link type 'softlink'") as info:
        keel.data.checkout("raw@1", tmp_path / "out", link="softlink")
    assert "hardlink" in (info.value.hint or "")


@pytest.mark.local_blobs
def test_default_is_reflink_where_possible_else_copy(blob_file: Callable[[str], Path],
                                                      tmp_path: Path) -> None:
    data = big_and_small(tmp_path)
    result = keel.data.checkout("raw@1", tmp_path / "out")
    store = current_workspace().blobs.root
    assert result.link == ("reflink" if reflink_works(store, str(tmp_path)) else "copy")
    out = tmp_path / "out"
    assert snapshot(out) == snapshot(data)
    assert os.stat(out / "big.bin").st_nlink == 1 and not (out / "big.bin").is_symlink()
    assert os.access(out / "run.sh", os.X_OK)
    (out / "big.bin").write_bytes(b"edited")  # an independent file: the store is untouched
    digest = entry("raw@1", "big.bin").digest
    assert blake3(blob_file(digest).read_bytes()).hexdigest() == digest


@pytest.mark.local_blobs
def test_explicit_reflink_works_or_says_why_before_writing(backend: str,
                                                           tmp_path: Path) -> None:
    big_and_small(tmp_path)
    if reflink_works(current_workspace().blobs.root, str(tmp_path)):
        assert keel.data.checkout("raw@1", tmp_path / "out", link="reflink").link == "reflink"
        return
    with pytest.raises(InvalidInput, match="cannot make reflinks") as info:
        keel.data.checkout("raw@1", tmp_path / "out", link="reflink")
    assert "--link copy" in (info.value.hint or "")
    assert not (tmp_path / "out").exists()


@pytest.mark.local_blobs
@pytest.mark.parametrize("kind", ["hardlink", "symlink"])
def test_linked_files_are_read_only_blobs_and_small_files_are_copies(
        blob_file: Callable[[str], Path], tmp_path: Path, kind: str) -> None:
    data = big_and_small(tmp_path)
    out = tmp_path / "out"
    result = keel.data.checkout("raw@1", out, link=kind)
    assert result.link == kind and snapshot(out) == snapshot(data)
    blob = blob_file(entry("raw@1", "big.bin").digest)
    if kind == "hardlink":
        assert os.path.samefile(out / "big.bin", blob) and not (out / "big.bin").is_symlink()
    else:
        assert (out / "big.bin").is_symlink() and os.readlink(out / "big.bin") == str(blob)
    assert stat.S_IMODE(os.stat(out / "big.bin").st_mode) == 0o444  # the blob's own mode
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444  # never made writable through the link
    for copied in ("small.txt", "run.sh"):  # packed, executable: copies, theirs to edit
        assert not (out / copied).is_symlink() and os.stat(out / copied).st_nlink == 1
        assert os.access(out / copied, os.W_OK)
    assert os.access(out / "run.sh", os.X_OK)
    assert not keel.data.status("raw@1", out).changed
    keel.data.add(out, "again")  # keel's own links into the store are not "outside"


@pytest.mark.local_blobs
@pytest.mark.parametrize("kind", ["hardlink", "symlink"])
def test_replacing_linked_files_never_writes_into_the_blob(blob_file: Callable[[str], Path],
                                                           tmp_path: Path,
                                                           kind: str) -> None:
    data = big_and_small(tmp_path)
    first = entry("raw@1", "big.bin").digest
    write(data, {"big.bin": os.urandom((1 << 20) + 7)})
    keel.data.add(data, "raw")
    out = tmp_path / "out"
    keel.data.checkout("raw@1", out, link=kind)
    keel.data.checkout("raw@2", out, link=kind)  # replaces the link to raw@1's blob
    keel.data.checkout("raw@1", out, force=True)  # and back, as copies
    assert blake3(blob_file(first).read_bytes()).hexdigest() == first
    assert stat.S_IMODE(blob_file(first).stat().st_mode) == 0o444
    assert (out / "big.bin").read_bytes() == blob_file(first).read_bytes()


@pytest.mark.local_blobs
def test_checking_out_as_copies_turns_links_back_into_editable_files(
        backend: str, tmp_path: Path) -> None:
    big_and_small(tmp_path)
    out = tmp_path / "out"
    keel.data.checkout("raw@1", out, link="symlink")
    assert (out / "big.bin").is_symlink()
    result = keel.data.checkout("raw@1", out, link="copy")
    assert result.written == ("big.bin",)  # only the linked file was rewritten
    assert not (out / "big.bin").is_symlink() and os.access(out / "big.bin", os.W_OK)
    keel.data.checkout("raw@1", out, link="hardlink")
    assert os.stat(out / "big.bin").st_nlink == 2
    keel.data.checkout("raw@1", out)
    assert os.stat(out / "big.bin").st_nlink == 1
