"""A store that cannot be opened is one clear line with a hint, and nothing stored is lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import keel
from keel.errors import CorruptData, InvalidInput, StoreUnavailable
from keel.store.sql_store import open_store
from keel.tracking import session
from tests.conftest import run_keel


def _one_error(result: object) -> list[str]:
    """The lines a failed command printed, checked to be an error and a hint only."""
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert result.returncode == 1, result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    assert lines[0].startswith("error: ") and lines[-1].startswith("hint: ")
    return lines


def test_unreachable_postgresql_is_one_line(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    url = "postgresql+psycopg://keel:secret@127.0.0.1:1/keel"
    with pytest.raises(StoreUnavailable, match="cannot reach the metadata store") as caught:
        open_store(url)
    assert "secret" not in str(caught.value)  # passwords never reach the user
    keel.create_experiment("local")  # a workspace here, with its default store
    monkeypatch.setenv("KEEL_STORE", url)
    lines = _one_error(run_keel("runs", "list", process=True))
    assert "127.0.0.1:1" in lines[0] and "database server is running" in lines[-1]


def test_corrupt_keel_db_is_one_line_and_left_as_it_was(tmp_path: Path) -> None:
    with keel.start_run(experiment="kept") as run:
        run.log_metric("m", 1.0)
    session.reset()
    db = tmp_path / ".keel" / "keel.db"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    damaged = os.urandom(8192)
    db.write_bytes(damaged)
    lines = _one_error(run_keel("runs", "list"))
    assert "is not a keel database or is damaged" in lines[0]
    assert "restore it from a backup" in lines[-1]
    with pytest.raises(CorruptData):
        keel.get_run(run.id)
    assert db.read_bytes() == damaged  # nothing was written over it


def test_a_file_that_is_not_a_database_is_refused_untouched(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("not a database\n" * 100)
    keel.create_experiment("local")
    monkeypatch.setenv("KEEL_STORE", str(other))
    lines = _one_error(run_keel("runs", "list"))
    assert str(other) in lines[0]
    assert other.read_text() == "not a database\n" * 100


def test_a_sqlite_path_in_a_missing_folder_or_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="does not exist"):
        open_store(str(tmp_path / "missing" / "keel.db"))
    assert not (tmp_path / "missing").exists()  # nothing created on the way
    with pytest.raises(InvalidInput, match="is a folder"):
        open_store(str(tmp_path))


def test_a_bad_durability_setting_names_the_choices(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_DURABILITY", "always")
    with pytest.raises(InvalidInput, match=r"'process'.*'fsync'"):
        keel.create_experiment("x")


def test_fsync_durability_makes_sqlite_commits_durable(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with keel.start_run() as run:
        run.log_metric("m", 1.0)
    with session.workspace().store.writer.connect() as conn:  # type: ignore[attr-defined]
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    session.reset()
    monkeypatch.setenv("KEEL_DURABILITY", "fsync")
    ws = session.workspace()
    assert ws.durability == "fsync"
    with ws.store.writer.connect() as conn:  # type: ignore[attr-defined]
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    with keel.start_run() as run:
        run.log_metric("m", 2.0)
        run.flush()
    assert keel.get_metric_history(run.id, "m")[0].value == 2.0
