"""The standard-library reader answers as the SQLAlchemy store does, and steps
aside whenever it cannot (see keel/store/sqlite_reader.py)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

import keel
import keel.data
from keel.entities import StepRecord
from keel.errors import InvalidInput, NotFound
from keel.store.sqlite_reader import SqliteReader, open_reader
from keel.workspace import Workspace, init_workspace


@pytest.fixture
def filled(tmp_path: Path) -> Workspace:
    """A workspace with runs in two experiments (one run deleted, one metric NaN),
    a dataset with a deleted version, and a pipeline step record."""
    init_workspace(tmp_path)
    for i in range(7):
        with keel.start_run(experiment="a" if i % 2 else "b", name=f"r{i}",
                            params={"i": i}, tags={"t": str(i)}) as run:
            run.log_metrics({"acc": i / 10, "loss": math.nan})
            last = run.id
    ws = Workspace.open(tmp_path)
    ws.store.set_run_lifecycle(last, "deleted")
    folder = tmp_path / "d"
    folder.mkdir()
    for n in range(3):
        (folder / "x.txt").write_text(str(n))
        keel.data.add(folder, "ds")
    keel.data.delete("ds@2")
    ws.store.record_step(StepRecord("k1", "pipe", "prep", last, {"o": 1}, {"p": 2}))
    with keel.start_run(experiment="b") as run:
        live = run.id
    ws.store.record_step(StepRecord("k2", "pipe", "prep", live, {"o": 3}, {"p": 4}))
    ws.close()
    return Workspace.open(tmp_path)


def _reader(ws: Workspace) -> SqliteReader:
    reader = open_reader(ws.store_url, lambda: ws.store)
    assert reader is not None
    return reader


def test_runs_are_the_stores_runs(filled: Workspace) -> None:
    reader, store = _reader(filled), filled.store
    a, b = store.get_experiment("a").id, store.get_experiment("b").id
    assert reader.get_experiment("a") == store.get_experiment("a")
    assert reader.get_experiment(b) == store.get_experiment(b)
    for args in [(None,), ([a],), ([a, b],), ([],)]:
        for kwargs in [{}, {"max_results": 2}, {"max_results": 3, "offset": 2},
                       {"include_deleted": True}]:
            mine = reader.search_runs(*args, **kwargs)  # type: ignore[arg-type]
            theirs = store.search_runs(*args, **kwargs)  # type: ignore[arg-type]
            # NaN != NaN: compare the NaN metric apart.
            assert [r.id for r in mine] == [r.id for r in theirs], (args, kwargs)
            assert [(r.params, r.tags, r.metrics.get("acc"), r.status, r.experiment, r.lifecycle)
                    for r in mine] == \
                   [(r.params, r.tags, r.metrics.get("acc"), r.status, r.experiment, r.lifecycle)
                    for r in theirs]
            assert all(math.isnan(r.metrics["loss"]) for r in mine if "loss" in r.metrics)
    assert len(reader.search_runs(None, include_deleted=True)) == 8
    with pytest.raises(NotFound, match="no experiment 'nope'"):
        reader.get_experiment("nope")
    with pytest.raises(InvalidInput, match="max_results"):
        reader.search_runs(None, max_results=0)
    reader.close()


def test_a_filter_or_an_order_goes_to_the_store(filled: Workspace) -> None:
    reader = _reader(filled)
    found = reader.search_runs(None, "metrics.acc >= 0.4", ["metrics.acc ASC"])
    assert [r.name for r in found] == ["r4", "r5"]  # r6 is deleted
    assert filled._store is not None  # the full store answered


def test_datasets_and_steps_are_the_stores(filled: Workspace) -> None:
    reader, store = _reader(filled), filled.store
    assert reader.get_dataset_version("ds") == store.get_dataset_version("ds")
    assert reader.get_dataset_version("ds", 1) == store.get_dataset_version("ds", 1)
    assert reader.list_dataset_versions("ds") == store.list_dataset_versions("ds")
    assert reader.list_dataset_versions("ds", include_deleted=True) == \
        store.list_dataset_versions("ds", include_deleted=True)
    for name, version, message in [("ds", 2, "ds@2 is deleted"),
                                   ("ds", 9, "has no version 9"),
                                   ("nope", None, "no dataset 'nope'")]:
        with pytest.raises(NotFound, match=message):
            reader.get_dataset_version(name, version)
        with pytest.raises(NotFound, match=message):
            store.get_dataset_version(name, version)
    # A step whose run was deleted is never reused.
    assert reader.cached_step("k1") is None and store.cached_step("k1") is None
    assert reader.cached_step("k2") == store.cached_step("k2")
    assert reader.last_step("pipe", "prep") == store.last_step("pipe", "prep")
    assert reader.last_step("pipe", "other") is None


def test_it_steps_aside_for_a_database_it_cannot_read(filled: Workspace,
                                                      tmp_path: Path) -> None:
    url = filled.store_url
    filled.close()
    assert open_reader("postgresql://u@127.0.0.1/db", lambda: filled.store) is None
    assert open_reader(str(tmp_path / "missing.db"), lambda: filled.store) is None
    assert open_reader("sqlite://", lambda: filled.store) is None
    not_sqlite = tmp_path / "garbage.db"
    not_sqlite.write_bytes(b"this is not a database" * 100)
    assert open_reader(str(not_sqlite), lambda: filled.store) is None
    # A database at another revision needs a migration (older) or a refusal
    # (newer): both are the full store's to do.
    with sqlite3.connect(url) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0008'")
    assert open_reader(url, lambda: filled.store) is None
    assert open_reader(f"sqlite:///{url}", lambda: filled.store) is None


def test_the_workspace_reads_through_the_store_once_it_is_open(filled: Workspace) -> None:
    assert isinstance(filled.reader, SqliteReader)  # nothing opened the store yet
    assert filled._store is None
    store = filled.store
    assert filled.reader is store
    filled.close()
    assert filled._store is None
