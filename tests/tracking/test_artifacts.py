"""Artifacts: files and folders stored by digest, returned byte for byte."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import keel
from keel.errors import CorruptData, InvalidInput, NotFound


def blob_files(root: Path) -> list[Path]:
    return [p for p in (root / ".keel" / "blobs").rglob("*") if p.is_file()]


def test_file_and_folder_round_trip(backend: str, tmp_path: Path) -> None:
    (tmp_path / "out" / "plots").mkdir(parents=True)
    (tmp_path / "out" / "model.bin").write_bytes(os.urandom(200_000))
    (tmp_path / "out" / "plots" / "roc.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "notes.md").write_text("# notes")
    with keel.start_run() as run:
        run.log_artifact(tmp_path / "notes.md")
        run.log_artifact(tmp_path / "out", artifact_path="outputs")
        run.log_text("hello", "logs/hello.txt")
        run.log_dict({"a": [1, 2]}, "config.json")
    paths = {a.path for a in keel.list_artifacts(run.id)}
    assert {"notes.md", "outputs/model.bin", "outputs/plots/roc.png", "logs/hello.txt",
            "config.json"} <= paths
    dest = keel.download_artifacts(run.id, "outputs", dst=tmp_path / "back")
    assert (dest / "model.bin").read_bytes() == (tmp_path / "out" / "model.bin").read_bytes()
    assert (dest / "plots" / "roc.png").read_bytes() == b"\x89PNG fake"
    keel.download_artifacts(run.id, "config.json", dst=tmp_path / "back")
    assert json.loads((tmp_path / "back" / "config.json").read_text()) == {"a": [1, 2]}


def test_identical_bytes_are_stored_once(backend: str, tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(100_000))
    with keel.start_run() as first:
        first.log_artifact(tmp_path / "big.bin")
    count = len(blob_files(tmp_path))
    with keel.start_run() as second:
        second.log_artifact(tmp_path / "big.bin", artifact_path="copy")
    assert len(blob_files(tmp_path)) == count
    assert keel.list_artifacts(first.id)[0].digest in {a.digest for a in
                                                        keel.list_artifacts(second.id)}


@pytest.mark.parametrize("bad", ["../escape.txt", "/abs/path.txt", "a/../../b", "ctl\x01.txt"])
def test_artifact_paths_cannot_escape_the_run(backend: str, bad: str) -> None:
    with keel.start_run() as run:
        with pytest.raises(InvalidInput):
            run.log_text("x", bad)
        with pytest.raises(InvalidInput):
            keel.download_artifacts(run.id, bad)
    assert not any(a.path.startswith(("..", "/")) for a in keel.list_artifacts(run.id))


def test_missing_local_file_is_a_clear_error(backend: str) -> None:
    with keel.start_run() as run, pytest.raises(NotFound, match="does not exist"):
        run.log_artifact("no/such/file.txt")


def test_corrupted_blob_is_refused_on_read(blob_file: Callable[[str], Path],
                                           tmp_path: Path) -> None:
    with keel.start_run() as run:
        artifact = run.log_text("precious results", "result.txt")
    blob = blob_file(artifact.digest)
    blob.chmod(0o644)
    blob.write_text("tampered")
    with pytest.raises(CorruptData, match=artifact.digest):
        keel.download_artifacts(run.id, "result.txt", dst=tmp_path / "back")
    assert not (tmp_path / "back" / "result.txt").exists()  # nothing half-written
