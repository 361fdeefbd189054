"""Symlinks never carry a dataset across its folder's boundary (issue 9, item 4).

``add`` refuses a link that points outside the folder being added, unless
the caller opts in; ``checkout`` never writes through a link under its
destination, and replaces a link where a file goes instead of writing
through it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from blake3 import blake3

import keel.data
from keel.errors import Conflict, NotFound, UnsafePath
from keel.workspace import current_workspace


def make_data(tmp_path: Path) -> tuple[Path, Path]:
    """A dataset folder, and a secret file outside it."""
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("a")
    (data / "sub" / "b.txt").write_text("b")
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0")
    return data, secret


def test_add_refuses_a_link_to_a_file_outside_the_folder(backend: str, tmp_path: Path) -> None:
    data, secret = make_data(tmp_path)
    (data / "sub" / "passwd").symlink_to(secret)
    with pytest.raises(UnsafePath, match=r"sub/passwd is a symlink to .*outside") as caught:
        keel.data.add(data, "raw")
    assert "follow_symlinks" in (caught.value.hint or "")
    with pytest.raises(NotFound):
        keel.data.get("raw")
    assert not current_workspace().blobs.exists(blake3(secret.read_bytes()).hexdigest())


def test_add_refuses_a_link_to_a_folder_outside(backend: str, tmp_path: Path) -> None:
    data, secret = make_data(tmp_path)
    (data / "etc").symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(UnsafePath, match="etc is a symlink"):
        keel.data.add(data, "raw")


def test_add_follows_outside_links_when_asked(backend: str, tmp_path: Path) -> None:
    data, secret = make_data(tmp_path)
    (data / "passwd").symlink_to(secret)
    result = keel.data.add(data, "raw", follow_symlinks=True)
    assert result.version.files == 3


def test_links_inside_the_folder_keep_working(backend: str, tmp_path: Path) -> None:
    data, _secret = make_data(tmp_path)
    (data / "alias.txt").symlink_to(data / "a.txt")
    (data / "relative").symlink_to("sub", target_is_directory=True)
    result = keel.data.add(data, "raw")
    manifest = keel.data.load_manifest(current_workspace(), result.version)
    assert {e.path for e in manifest.entries} == {
        "a.txt", "alias.txt", "sub/b.txt", "relative/b.txt"}


def test_checkout_refuses_to_write_through_a_folder_link(backend: str, tmp_path: Path) -> None:
    data, secret = make_data(tmp_path)
    (data / "sub" / "passwd").write_text("dataset bytes")
    keel.data.add(data, "raw")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(secret.parent, target_is_directory=True)
    for force in (False, True):
        with pytest.raises((UnsafePath, Conflict)):
            keel.data.checkout("raw@1", dest, force=force)
        assert secret.read_text() == "root:x:0:0"  # never overwritten
    with pytest.raises(UnsafePath, match=r"dest/sub is a symlink inside the destination"):
        keel.data.checkout("raw@1", dest, force=True)


def test_checkout_replaces_a_link_where_a_file_goes(backend: str, tmp_path: Path) -> None:
    data, secret = make_data(tmp_path)
    keel.data.add(data, "raw")
    (data / "a.txt").unlink()
    (data / "a.txt").symlink_to(secret)
    keel.data.checkout("raw@1", force=True)
    assert secret.read_text() == "root:x:0:0"
    assert not (data / "a.txt").is_symlink() and (data / "a.txt").read_text() == "a"


def test_a_single_file_checkout_replaces_a_link_too(backend: str, tmp_path: Path) -> None:
    _data, secret = make_data(tmp_path)
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    keel.data.add(tmp_path / "t.csv", "table")
    (tmp_path / "t.csv").unlink()
    (tmp_path / "t.csv").symlink_to(secret)
    keel.data.checkout("table@1", force=True)
    assert secret.read_text() == "root:x:0:0"
    assert (tmp_path / "t.csv").read_text() == "a,b\n1,2\n"


def test_checkout_removes_a_stale_file_only_inside_the_destination(
        backend: str, tmp_path: Path) -> None:
    data, secret = make_data(tmp_path)
    (data / "sub" / "passwd").write_text("v1")
    keel.data.add(data, "raw")
    (data / "sub" / "passwd").unlink()
    keel.data.add(data, "raw")  # raw@2 has no sub/passwd
    dest = tmp_path / "dest"
    keel.data.checkout("raw@1", dest)
    (dest / "sub" / "passwd").unlink()
    (dest / "sub" / "b.txt").unlink()
    (dest / "sub").rmdir()
    (dest / "sub").symlink_to(secret.parent, target_is_directory=True)
    secret.write_text("v1")  # the same bytes, so checkout sees no local edit
    with pytest.raises(UnsafePath):
        keel.data.checkout("raw@2", dest, force=True)
    assert secret.read_text() == "v1"  # not deleted through the link

