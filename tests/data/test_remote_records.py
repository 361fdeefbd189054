"""A remote is shared storage: what it holds is checked before anything is stored.

Each test builds a remote folder by hand, as someone with write access to
the bucket could, and pulls from it into a real workspace (issue 9, item 3).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

import keel.data
from keel.blobs import BlobStore
from keel.data.manifest import Manifest, ManifestEntry
from keel.errors import InvalidInput, NotFound, UnsafePath
from keel.workspace import current_workspace

PAYLOAD = b"owned\n"


def stored_files(root: Path) -> list[Path]:
    return [p for p in (root / ".keel" / "blobs").rglob("*") if p.is_file()]


def manifest_bytes(rows: list[list[Any]], single: bool = False) -> bytes:
    return json.dumps({"format": 1, "single": single, "files": rows},
                      separators=(",", ":")).encode()


def publish(remote: Path, name: str, version: int, rows: list[list[Any]],
            record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Put a manifest, the blobs it names and a record (``record`` overrides its
    fields) on a folder remote."""
    record = record or {}
    blobs = BlobStore(remote / "blobs")
    blobs.put_bytes(PAYLOAD)
    digest = blobs.put_bytes(manifest_bytes(rows))
    body = {"id": 1, "dataset": name, "version": version, "manifest_digest": digest,
            "files": len(rows), "bytes": 6, "message": "", "created_at": 0, "user": "x",
            "source": "data", "checks_digest": None, "checks_passed": None,
            "profiles_digest": None, "ref": f"{name}@{version}"} | record
    where = remote / "datasets" / str(record.get("filed_as", f"{name}/{version}.json"))
    body.pop("filed_as", None)
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(json.dumps(body))
    return body


def row(path: str, mode: int = 0o644) -> list[Any]:
    return [path, blake3(PAYLOAD).hexdigest(), len(PAYLOAD), mode]


@pytest.mark.parametrize("bad", [
    "../../escape.txt", "/etc/escape.txt", "a/../../escape.txt", "C:/escape.txt",
    "c:escape.txt", "a\\..\\escape.txt", "a//b", "./a", "a/.", "", "a\x00b", "a\nb",
    "a/\x1b[31m",
])
def test_manifest_paths_that_could_leave_the_folder_are_refused(bad: str) -> None:
    with pytest.raises(UnsafePath, match="transactions@3"):
        Manifest.from_bytes(manifest_bytes([row(bad)]), where="transactions@3")


@pytest.mark.parametrize(("field", "value"), [
    (1, "../../etc/passwd"), (1, "A" * 64), (1, "0" * 63), (1, None),
    (2, -1), (2, "6"), (2, 1.5), (2, True), (3, -1), (3, 0o17777), (3, "0o644"),
])
def test_manifest_digests_sizes_and_modes_are_checked(field: int, value: Any) -> None:
    bad = row("a.txt")
    bad[field] = value
    with pytest.raises(InvalidInput, match="transactions@3"):
        Manifest.from_bytes(manifest_bytes([bad]), where="transactions@3")


@pytest.mark.parametrize("rows", [
    [row("a"), row("a")], [row("a"), row("a/b")], [["a", "b"]], "files", [row("a/b")],
])
def test_malformed_manifests_are_refused(rows: Any) -> None:
    single = rows == [row("a/b")]
    with pytest.raises(InvalidInput):
        Manifest.from_bytes(manifest_bytes(rows, single=single))
    with pytest.raises(InvalidInput):
        Manifest.from_bytes(b"\xff not json")


def test_setuid_setgid_and_sticky_bits_are_dropped() -> None:
    manifest = Manifest.from_bytes(manifest_bytes([row("tool", 0o6777), row("x", 0o1755)]))
    assert [e.mode for e in manifest.entries] == [0o777, 0o755]
    built = Manifest.build([ManifestEntry("t", blake3(b"").hexdigest(), 0, 0o4755)])
    assert built.entries[0].mode == 0o755


@pytest.mark.parametrize("bad", ["../../escape.txt", "/tmp/keel-escape-test.txt"])
def test_pull_refuses_a_manifest_that_leaves_the_folder_and_stores_nothing(
        backend: str, tmp_path: Path, bad: str) -> None:
    remote = tmp_path / "remote"
    publish(remote, "transactions", 1, [row("ok.txt")])
    publish(remote, "transactions", 3, [row(bad)])
    with pytest.raises(UnsafePath, match="transactions@3"):
        keel.data.pull(str(remote))
    assert stored_files(tmp_path) == []  # not even the good version's manifest
    with pytest.raises(NotFound):
        keel.data.get("transactions@1")
    escaped = (tmp_path / "data" / bad).resolve() if not bad.startswith("/") else Path(bad)
    assert not escaped.exists()


@pytest.mark.parametrize("record", [
    {"dataset": "../evil"}, {"dataset": "a/b"}, {"version": 0}, {"version": -2},
    {"version": "3"}, {"version": True}, {"manifest_digest": "../../etc/passwd"},
    {"profiles_digest": "x"}, {"files": -1}, {"filed_as": "other/3.json"},
])
def test_pull_refuses_records_keel_would_not_write(backend: str, tmp_path: Path,
                                                   record: dict[str, Any]) -> None:
    remote = tmp_path / "remote"
    publish(remote, "transactions", 3, [row("ok.txt")], record)
    with pytest.raises(InvalidInput, match="refused the remote's record of"):
        keel.data.pull(str(remote))
    assert stored_files(tmp_path) == []
    assert current_workspace().store.list_datasets() == []


def test_records_of_other_datasets_do_not_block_a_named_pull(backend: str,
                                                              tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    publish(remote, "good", 1, [row("ok.txt")])
    publish(remote, "bad", 1, [row("../x")])
    pulled = keel.data.pull(str(remote), names=["good"])
    assert pulled.versions == ("good@1",)
    restored = keel.data.checkout("good@1", tmp_path / "out")
    assert (restored.dest / "ok.txt").read_bytes() == PAYLOAD


def test_a_source_outside_the_workspace_is_not_a_default_destination(
        backend: str, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    publish(remote, "t", 1, [row("ok.txt")], {"source": "/etc"})
    keel.data.pull(str(remote))
    assert keel.data.get("t@1").source == ""
    with pytest.raises(InvalidInput, match="DEST"):
        keel.data.checkout("t@1")
    assert keel.data.checkout("t@1", tmp_path / "here").written == ("ok.txt",)


def register(tmp_path: Path, name: str, rows: list[list[Any]]) -> None:
    """A version in the store whose manifest keel would not write (as an older keel
    may have pulled it)."""
    ws = current_workspace()
    ws.blobs.put_bytes(PAYLOAD)
    digest = ws.blobs.put_bytes(manifest_bytes(rows))
    ws.store.add_dataset_version(name, {
        "manifest_digest": digest, "files": len(rows), "bytes": 6, "message": "",
        "created_at": 0, "user": "x", "source": "data"})


def test_checkout_refuses_a_stored_manifest_that_leaves_the_folder(backend: str,
                                                                    tmp_path: Path) -> None:
    register(tmp_path, "evil", [row("../../escape.txt")])
    with pytest.raises(UnsafePath, match="evil@1"):
        keel.data.checkout("evil@1", tmp_path / "a" / "b")
    assert not (tmp_path / "escape.txt").exists()


def test_checkout_never_creates_a_setuid_file(backend: str, tmp_path: Path) -> None:
    register(tmp_path, "suid", [row("tool", 0o6777)])
    result = keel.data.checkout("suid@1", tmp_path / "out")
    mode = stat.S_IMODE(os.stat(result.dest / "tool").st_mode)
    assert mode & 0o7000 == 0 and mode & 0o111  # executable, nothing more


def test_a_stray_file_with_an_odd_name_does_not_block_checkout(backend: str,
                                                                tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a")
    keel.data.add(data, "raw")
    (data / "back\\slash").write_text("mine")  # legal on Linux, never in a version
    with pytest.raises(UnsafePath, match="back"):
        keel.data.add(data, "raw")
    keel.data.checkout("raw@1")
    assert (data / "back\\slash").read_text() == "mine"
