"""The standard-library writer of dataset versions stores what the SQLAlchemy
store would, numbers versions as it does, and queues behind other writers
(see keel/store/sqlite_writer.py)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

import keel.data
from keel.store.sqlite_writer import SqliteWriter
from keel.workspace import Workspace, init_workspace

FIELDS = {"manifest_digest": "0" * 64, "files": 3, "bytes": 12, "message": "m",
          "created_at": 1_700_000_000_000, "user": "u", "source": "data",
          "checks_digest": None, "checks_passed": True, "profiles_digest": None}


def _created(root: Path) -> Path:
    """A workspace whose database exists (a first ``keel data add`` before any
    database creates it through the store, which migrates)."""
    init_workspace(root)
    ws = Workspace.open(root)
    ws.store.list_datasets()
    ws.close()
    return root


def _writer(root: Path) -> SqliteWriter:
    ws = Workspace.open(root)
    writer = ws.dataset_writer
    assert isinstance(writer, SqliteWriter), "the embedded store should be written directly"
    return writer


def test_a_version_it_writes_is_the_one_the_store_reads(tmp_path: Path) -> None:
    _created(tmp_path)
    mine = _writer(tmp_path).add_dataset_version("ds", FIELDS)
    ws = Workspace.open(tmp_path)
    assert ws.store.get_dataset_version("ds", 1) == mine
    assert (mine.ref, mine.files, mine.bytes, mine.checks_passed) == ("ds@1", 3, 12, True)
    # Numbering continues across both writers, in either order.
    theirs = ws.store.add_dataset_version("ds", {**FIELDS, "message": "by the store"})
    ws.close()
    again = _writer(tmp_path).add_dataset_version("ds", {**FIELDS, "message": "again"})
    assert (theirs.version, again.version) == (2, 3)
    assert [v.message for v in Workspace.open(tmp_path).store.list_dataset_versions("ds")] \
        == ["m", "by the store", "again"]


def test_the_workspace_uses_the_store_once_it_is_open(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    assert not isinstance(Workspace.open(tmp_path).dataset_writer, SqliteWriter)  # no db yet
    _created(tmp_path)
    ws = Workspace.open(tmp_path)
    ws.store.list_datasets()
    assert ws.dataset_writer is ws.store


def test_an_unknown_column_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    _created(tmp_path)
    with pytest.raises(ValueError, match="not dataset version columns"):
        _writer(tmp_path).add_dataset_version("ds", {**FIELDS, "id; DROP TABLE runs": 1})
    assert Workspace.open(tmp_path).store.list_datasets() == []


def test_a_failed_insert_leaves_no_dataset_behind(tmp_path: Path) -> None:
    _created(tmp_path)
    with pytest.raises(sqlite3.IntegrityError):  # files is NOT NULL
        _writer(tmp_path).add_dataset_version("ds", {**FIELDS, "files": None})
    assert Workspace.open(tmp_path).store.list_datasets() == []


def _add_many(root: str, name: str, count: int) -> None:
    writer = _writer(Path(root))
    for i in range(count):
        writer.add_dataset_version(name, {**FIELDS, "message": f"{i}"})


def test_concurrent_adds_from_processes_get_distinct_numbers(tmp_path: Path) -> None:
    _created(tmp_path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_many, args=(str(tmp_path), "ds", 15))
               for _ in range(3)]
    for worker in workers:
        worker.start()
    _add_many(str(tmp_path), "ds", 15)  # and one more writer here
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    versions = Workspace.open(tmp_path).store.list_dataset_versions("ds")
    assert [v.version for v in versions] == list(range(1, 61))


def test_keel_data_add_goes_through_it(tmp_path: Path) -> None:
    _created(tmp_path)
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.csv").write_text("x,y\n1,2\n3,4\n")
    result = keel.data.add(folder, "table", message="first")
    stored = Workspace.open(tmp_path).store.get_dataset_version("table")
    assert result.created and stored == result.version
    assert stored.profiles_digest is not None  # a CSV gets its profile stored
