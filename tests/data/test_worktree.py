"""A working folder holds one version: status compares with it, and adding the same
content again names the existing version (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

import keel.data
from keel.errors import InvalidInput


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    return root


def two_versions(tmp_path: Path) -> Path:
    data = write(tmp_path / "data", {"red.txt": "1", "white.txt": "2"})
    keel.data.add(data, "wine")
    write(data, {"red.txt": "1 changed", "rose.txt": "3"})
    keel.data.add(data, "wine")
    return data


def test_status_compares_with_the_version_checked_out_there(backend: str,
                                                           tmp_path: Path) -> None:
    two_versions(tmp_path)
    keel.data.checkout("wine@1")
    status = keel.data.status("wine")
    assert not status.changed
    assert status.ref == "wine@1"
    against_latest = keel.data.status("wine@latest")  # a version named is that version
    assert against_latest.ref == "wine@2" and against_latest.version is not None
    assert against_latest.changed


def test_adding_what_an_older_version_holds_names_it_instead_of_a_duplicate(
        backend: str, tmp_path: Path) -> None:
    data = two_versions(tmp_path)
    keel.data.checkout("wine@1")
    again = keel.data.add(data, "wine")
    assert (again.created, again.version.ref) == (False, "wine@1")
    assert [v.ref for v in keel.data.log("wine")] == ["wine@1", "wine@2"]
    write(data, {"white.txt": "edited after wine@1"})
    assert keel.data.status("wine").modified == ("white.txt",)  # against wine@1
    third = keel.data.add(data, "wine")
    assert (third.created, third.version.ref) == (True, "wine@3")
    assert keel.data.status("wine").ref == "wine@3"


def test_status_of_another_folder_uses_what_was_checked_out_there(backend: str,
                                                                  tmp_path: Path) -> None:
    two_versions(tmp_path)
    keel.data.checkout("wine@1", tmp_path / "old")
    status = keel.data.status("wine", tmp_path / "old")
    assert not status.changed and status.version.ref == "wine@1"  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["wine\n", "wine\x1b[31m", "\x1b]0;owned\x07", "wi ne", "wine/1"])
def test_dataset_names_go_through_the_shared_validator(backend: str, tmp_path: Path,
                                                       bad: str) -> None:
    write(tmp_path / "d", {"a": "1"})
    with pytest.raises(InvalidInput, match="bad dataset name") as info:
        keel.data.add(tmp_path / "d", bad)
    assert "\x1b" not in info.value.message  # shown escaped
    with pytest.raises(InvalidInput, match="bad dataset name"):
        keel.data.log(bad)
    with pytest.raises(InvalidInput, match="bad dataset name"):
        keel.data.status(bad)
