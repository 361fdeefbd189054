"""Dataset versions: snapshot, dedupe, status, log, checkout, and runs that use them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from blake3 import blake3

import keel
import keel.data
from keel.errors import Conflict, InvalidInput, NotFound
from keel.workspace import current_workspace


def write(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def digests_of(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): blake3(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def blob_count(tmp_path: Path) -> int:
    """Blobs stored, wherever the workspace stores them."""
    return len(current_workspace().blobs.digests())


def test_versions_number_up_and_unchanged_data_makes_none(backend: str, tmp_path: Path) -> None:
    data = write(tmp_path / "data", {"a.txt": "one", "sub/b.bin": os.urandom(1000)})
    first = keel.data.add(data, "raw", "first")
    assert (first.created, first.version.ref, first.version.files) == (True, "raw@1", 2)
    again = keel.data.add(data, "raw")
    assert (again.created, again.version.ref) == (False, "raw@1")
    (data / "a.txt").write_text("two")
    second = keel.data.add(data, "raw", "second")
    assert second.version.ref == "raw@2"
    assert [v.message for v in keel.data.log("raw")] == ["first", "second"]
    assert keel.data.get("raw@latest").version == 2 and keel.data.get("raw@1").version == 1


def test_identical_files_are_stored_once_across_datasets(backend: str, tmp_path: Path) -> None:
    payload = os.urandom(50_000)
    write(tmp_path / "x", {"big.bin": payload, "copy.bin": payload})
    keel.data.add(tmp_path / "x", "x")
    count = blob_count(tmp_path)
    write(tmp_path / "y", {"same.bin": payload})
    keel.data.add(tmp_path / "y", "y")
    assert blob_count(tmp_path) == count + 1  # only y's manifest is new


def test_status_reports_added_removed_modified(backend: str, tmp_path: Path) -> None:
    data = write(tmp_path / "data", {"a": "1", "b": "2", "c": "3"})
    keel.data.add(data, "raw")
    assert not keel.data.status("raw").changed
    (data / "a").write_text("changed")
    (data / "b").unlink()
    (data / "d").write_text("new")
    changes = keel.data.status("raw")
    assert (changes.added, changes.removed, changes.modified) == (("d",), ("b",), ("a",))


def test_a_touched_but_unchanged_file_is_not_modified(backend: str, tmp_path: Path) -> None:
    data = write(tmp_path / "data", {"a": "same"})
    keel.data.add(data, "raw")
    os.utime(data / "a", ns=(1, 1))  # new mtime, same bytes: re-hashed, still equal
    assert not keel.data.status("raw").changed


def test_checkout_restores_exact_bytes(backend: str, tmp_path: Path) -> None:
    data = write(tmp_path / "data", {"a.txt": "v1", "keep/b.bin": os.urandom(5000)})
    (data / "run.sh").write_text("#!/bin/sh\n")
    (data / "run.sh").chmod(0o755)
    v1 = digests_of(data)
    keel.data.add(data, "raw")
    (data / "a.txt").write_text("v2")
    (data / "new.txt").write_text("n")
    keel.data.add(data, "raw")
    result = keel.data.checkout("raw@1")
    assert digests_of(data) == v1
    assert set(result.written) == {"a.txt"} and result.removed == ("new.txt",)
    assert os.access(data / "run.sh", os.X_OK)
    other = keel.data.checkout("raw@2", tmp_path / "elsewhere")
    assert digests_of(other.dest)["a.txt"] == blake3(b"v2").hexdigest()


def test_checkout_never_overwrites_local_edits_without_force(backend: str,
                                                             tmp_path: Path) -> None:
    data = write(tmp_path / "data", {"a.txt": "v1", "b.txt": "b"})
    keel.data.add(data, "raw")
    (data / "a.txt").write_text("v2")
    keel.data.add(data, "raw")
    (data / "a.txt").write_text("my unsaved edit")
    with pytest.raises(Conflict, match=r"a\.txt") as info:
        keel.data.checkout("raw@1")
    assert "--force" in (info.value.hint or "")
    assert (data / "a.txt").read_text() == "my unsaved edit"  # untouched
    keel.data.checkout("raw@1", force=True)
    assert (data / "a.txt").read_text() == "v1"


def test_single_file_dataset(backend: str, tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    keel.data.add(tmp_path / "t.csv", "table")
    (tmp_path / "t.csv").write_text("a,b\n1,3\n")
    assert keel.data.add(tmp_path / "t.csv", "table").version.ref == "table@2"
    keel.data.checkout("table@1")
    assert (tmp_path / "t.csv").read_text() == "a,b\n1,2\n"


def test_runs_record_the_data_they_read_and_wrote(backend: str, tmp_path: Path) -> None:
    write(tmp_path / "data", {"train.csv": "x,y\n1,0\n2,1\n"})
    keel.data.add(tmp_path / "data", "train")
    with keel.start_run() as run:
        local = run.use_dataset("train@1")
        assert (local / "train.csv").read_text() == "x,y\n1,0\n2,1\n"
        write(tmp_path / "out", {"pred.csv": "y\n1\n"})
        out = run.log_dataset(tmp_path / "out", name="predictions")
    from keel.workspace import current_workspace

    store = current_workspace().store
    assert {(v.ref, role) for v, role in store.datasets_of_run(run.id)} == {
        ("train@1", "input"), (out.ref, "output")}
    assert store.runs_of_dataset_version(keel.data.get("train@1").id) == [(run.id, "input")]


@pytest.mark.parametrize("bad", ["a/b", "../x", "a\\b", "", "x" * 200, "@1"])
def test_bad_dataset_names_are_refused(backend: str, tmp_path: Path, bad: str) -> None:
    write(tmp_path / "d", {"a": "1"})
    with pytest.raises(InvalidInput, match="dataset name"):
        keel.data.add(tmp_path / "d", bad)


def test_missing_path_and_unknown_versions(backend: str, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        keel.data.add(tmp_path / "nope", "raw")
    write(tmp_path / "d", {"a": "1"})
    keel.data.add(tmp_path / "d", "raw")
    with pytest.raises(NotFound, match="has no version 7"):
        keel.data.checkout("raw@7")
    with pytest.raises(NotFound, match="no dataset 'other'"):
        keel.data.status("other")
    with pytest.raises(InvalidInput, match="bad dataset version"):
        keel.data.get("raw@two")


def test_symlink_loop_is_refused_and_nothing_stored(backend: str, tmp_path: Path) -> None:
    data = write(tmp_path / "d", {"a": "1"})
    (data / "loop").symlink_to(data, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symlink loop"):
        keel.data.add(data, "raw")
    with pytest.raises(NotFound):
        keel.data.get("raw")


def test_dangling_symlink_is_refused(backend: str, tmp_path: Path) -> None:
    data = write(tmp_path / "d", {"a": "1"})
    (data / "gone").symlink_to(tmp_path / "missing-target")
    with pytest.raises(InvalidInput, match="dangling symlink"):
        keel.data.add(data, "raw")


def test_unreadable_file_is_refused(backend: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import os

    data = write(tmp_path / "d", {"a": "1", "secret": "s"})
    real_open, real_os_open = builtins.open, os.open

    def denied(path: object) -> None:
        # chmod 000 does not stop root (CI runs as root), so deny the read here.
        if str(path).endswith("/secret"):
            raise PermissionError(13, "Permission denied", str(path))

    def no_permission(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        denied(path)
        return real_open(path, *args, **kwargs)

    def no_permission_os(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        denied(path)
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_permission)
    monkeypatch.setattr(os, "open", no_permission_os)
    with pytest.raises(InvalidInput, match=r"cannot read .*secret: Permission denied"):
        keel.data.add(data, "raw")
    monkeypatch.undo()
    with pytest.raises(NotFound):
        keel.data.get("raw")


class GrowsWhileRead:
    """A file handle whose file another process appends to during every read."""

    def __init__(self, handle, path) -> None:  # type: ignore[no-untyped-def]
        self.handle, self.path = handle, path

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def fileno(self) -> int:
        return int(self.handle.fileno())

    def read(self, *args: object) -> bytes:
        with open(self.path, "a") as writer:
            writer.write("+")
        return bytes(self.handle.read(*args))


def test_file_changing_while_hashed_is_never_given_a_wrong_digest(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import os

    data = write(tmp_path / "d", {"a": "stable", "b": "moving"})
    real_open, real_read = builtins.open, os.read

    def open_growing(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        handle = real_open(path, *args, **kwargs)
        if str(path).endswith("/b") and args[:1] == ("rb",):
            return GrowsWhileRead(handle, path)
        return handle

    def read_growing(fd: int, size: int) -> bytes:
        # Another process appends to the file during every read of it.
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.endswith("/d/b"):
            with real_open(target, "a") as writer:
                writer.write("+")
        return real_read(fd, size)

    monkeypatch.setattr(builtins, "open", open_growing)
    monkeypatch.setattr(os, "read", read_growing)
    with pytest.raises(InvalidInput, match="kept changing"):
        keel.data.add(data, "raw")
    monkeypatch.undo()
    with pytest.raises(NotFound):
        keel.data.get("raw")


def test_status_of_a_deleted_working_copy_lists_every_file_removed(backend: str,
                                                                   tmp_path: Path) -> None:
    data = write(tmp_path / "d", {"a": "1", "b/c": "2"})
    keel.data.add(data, "raw")
    import shutil

    shutil.rmtree(data)
    assert keel.data.status("raw").removed == ("a", "b/c")
    keel.data.checkout("raw@1")  # and checkout brings it all back
    assert (data / "b" / "c").read_text() == "2"


@pytest.mark.local_blobs  # it hooks the local copy (a server refuses such bytes itself)
def test_big_file_changing_while_stored_is_refused_and_nothing_is_filed(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keel.blobs.store

    data = write(tmp_path / "d", {"big.bin": os.urandom(9 * 1024 * 1024)})  # the large path
    real_copy = keel.blobs.store.copy_hashing
    copies = []

    def copy_then_append(source: Path, dest: Path) -> str:
        digest = real_copy(source, dest)
        copies.append(dest)
        with open(source, "ab") as writer:  # another program appends after the copy
            writer.write(b"+")
        return digest

    monkeypatch.setattr(keel.blobs.store, "copy_hashing", copy_then_append)
    with pytest.raises(InvalidInput, match="kept changing"):
        keel.data.add(data, "raw")
    assert len(copies) == 3  # retried, then refused
    monkeypatch.setattr(keel.blobs.store, "copy_hashing", real_copy)  # not undo(): keep the cwd
    with pytest.raises(NotFound, match="no dataset 'raw'"):
        keel.data.get("raw")
    blobs = tmp_path / ".keel" / "blobs"
    assert not [p for p in blobs.rglob("*") if p.is_file() and p.stat().st_size > 1 << 20]
    result = keel.data.add(data, "raw")  # once it holds still, the add goes through
    stored = keel.data.load_manifest(current_workspace(), result.version).entries
    assert stored[0].digest == blake3((data / "big.bin").read_bytes()).hexdigest()
