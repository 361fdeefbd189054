"""Spools belong to one store, bad lines never block the rest, and exits store what was logged."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import keel
from keel.errors import InvalidInput, StoreUnavailable
from keel.tracking import session
from keel.tracking.spool import Spool
from tests.conftest import run_keel, run_python

CHILD = textwrap.dedent("""
    import sys, time, keel
    run = keel.start_run(experiment="crash")
    print(run.id, flush=True)
    for i in range(1_000):
        run.log_metric("loss", 1.0 / (i + 1), step=i)
    print("logged", flush=True)
    time.sleep(600)
""")


def _log_then_die(env: dict[str, str], how: int = signal.SIGKILL) -> str:
    with subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                          env=env) as child:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        assert child.stdout.readline().strip() == "logged"
        os.kill(child.pid, how)
        child.wait(30)
    return run_id


@pytest.mark.postgres
def test_a_spool_of_another_store_is_left_alone_until_its_store_opens(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    keel.create_experiment("crash")  # a default SQLite workspace in this folder
    run_id = _log_then_die({**os.environ, "KEEL_STORE": postgres_url})
    spools = list((tmp_path / ".keel" / "spool").glob("*.spool"))
    assert len(spools) == 1

    listed = run_keel("runs", "list")  # the default SQLite store of the same workspace
    assert listed.returncode == 0, listed.stderr
    assert spools[0].exists()  # not deleted: it belongs to PostgreSQL

    session.reset()
    monkeypatch.setenv("KEEL_STORE", postgres_url)
    history = keel.get_metric_history(run_id, "loss")  # its own store: recovered now
    assert [p.step for p in history] == list(range(1_000))
    assert keel.get_run(run_id).status == "KILLED"
    assert not spools[0].exists()


def test_a_killed_run_ends_at_its_last_logged_point_not_at_recovery(backend: str) -> None:
    keel.create_experiment("crash")
    run_id = _log_then_die(dict(os.environ))
    time.sleep(1.2)
    session.reset()
    recovered = keel.recover()
    assert [r.run_id for r in recovered] == [run_id]  # what the automatic pass did, reported
    stored = keel.get_run(run_id)
    last = keel.get_metric_history(run_id, "loss")[-1]
    assert stored.status == "KILLED" and stored.end_time == last.timestamp
    assert keel.recover() == []


def test_sigterm_ends_the_run_killed_with_everything_stored(backend: str) -> None:
    keel.create_experiment("crash")
    run_id = _log_then_die(dict(os.environ), signal.SIGTERM)
    stored = keel.get_run(run_id)  # no recovery needed: the process stored it on SIGTERM
    assert stored.status == "KILLED" and "SIGTERM" in (stored.error or "")
    assert len(keel.get_metric_history(run_id, "loss")) == 1_000
    assert list(session.workspace().spool_dir.glob("*.spool")) == []


def test_importing_keel_installs_no_hooks() -> None:
    result = run_python(textwrap.dedent("""
        import atexit, signal
        hooks = []
        register = atexit.register
        def spy(func, *args, **kwargs):
            hooks.append(getattr(func, "__module__", "") or "")
            return register(func, *args, **kwargs)
        atexit.register = spy
        import keel, keel.data, keel.models, keel.tracking.api, keel.cli.main
        ours = [m for m in hooks if m.startswith("keel")]
        assert ours == [], f"importing keel registered exit hooks: {ours}"
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        with keel.start_run() as run:
            assert [m for m in hooks if m.startswith("keel")] == ["keel.tracking.shutdown"]
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        print("ok")
    """))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_a_step_beyond_64_bits_is_refused_at_the_call(backend: str) -> None:
    with keel.start_run() as run:
        with pytest.raises(InvalidInput, match="does not fit in 64 bits"):
            run.log_metric("m", 1.0, step=2**63)
        with pytest.raises(InvalidInput, match="does not fit in 64 bits"):
            run.log_batch([("m", 1.0, -(2**63) - 1)])
        with pytest.raises(InvalidInput, match="NUL"):
            run.set_tag("t", "a\x00b")
        run.log_metric("m", 2.0, step=2**63 - 1)
    assert keel.get_run(run.id).metrics == {"m": 2.0}


def _plant_spool(ws: keel.Workspace, run_id: str, lines: list[str]) -> Path:
    """A spool as an older keel (or a damaged disk) could have left it."""
    spool = Spool.create(ws.spool_dir, run_id, ws.store.store_id)
    spool.append("".join(lines).encode())
    path = spool.path
    spool.close(remove=False)  # its process "dies": the lock is released
    return path


def test_a_bad_spool_line_is_set_aside_and_the_good_ones_stored(backend: str) -> None:
    with keel.start_run(experiment="old") as run:
        pass
    ws = session.workspace()
    now = int(time.time() * 1000)
    path = _plant_spool(ws, run.id, [
        f"m\tloss\t0.5\t1\t{now}\n",
        f"m\tloss\t0.4\t{2**63}\t{now}\n",  # bigger than SQLite's and PostgreSQL's int64
        "garbage without tabs\n",
        f"m\tloss\t0.3\t3\t{now}\n",
        't\tnote\t"kept"\n'])
    for args in (("runs", "list"), ("data", "list"), ("recover",)):
        result = run_keel(*args)  # every command works; none replays the bad line forever
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    assert not path.exists()
    assert [p.step for p in keel.get_metric_history(run.id, "loss")] == [1, 3]
    assert keel.get_run(run.id).tags["note"] == "kept"
    aside = [json.loads(line) for line in
             (ws.spool_dir / "quarantine" / f"{path.name}.jsonl").read_text().splitlines()]
    assert [a["line"].split("\t")[0] for a in aside] == ["m", "garbage without tabs"]
    assert "64-bit" in aside[0]["reason"]
    assert "2 record(s) that could not be stored" in run_keel("recover").stdout


@pytest.mark.postgres
def test_a_record_the_database_refuses_is_isolated(tmp_path: Path, postgres_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_STORE", postgres_url)
    with keel.start_run(experiment="old") as run:
        pass
    ws = session.workspace()
    now = int(time.time() * 1000)
    lines = [f"m\tloss\t{i / 10}\t{i}\t{now}\n" for i in range(10)]
    lines.insert(6, 't\tbad\t"a\\u0000b"\n')  # parses, but PostgreSQL text cannot hold NUL
    _plant_spool(ws, run.id, lines)
    keel.recover()
    assert [p.step for p in keel.get_metric_history(run.id, "loss")] == list(range(10))
    assert "bad" not in keel.get_run(run.id).tags


@pytest.mark.postgres
def test_a_store_that_goes_away_is_reported_once_and_flush_raises(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("KEEL_STORE", postgres_url)
    name = postgres_url.rsplit("/", 1)[1]
    admin = sa.create_engine(postgres_url.rsplit("/", 1)[0] + "/postgres",
                             isolation_level="AUTOCOMMIT")
    caplog.set_level(logging.WARNING, logger="keel")
    try:
        with keel.start_run(experiment="outage") as run:
            run.log_metric("m", 1.0)
            run.flush()
            with admin.connect() as conn:  # the database disappears under the writer
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
                conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     f"WHERE datname = '{name}'")
            for step in range(1, 50):
                run.log_metric("m", 1.0, step=step)
            time.sleep(0.6)  # ~12 passes of the background writer
            with pytest.raises(StoreUnavailable, match="cannot reach the metadata store"):
                run.flush()
            warnings = [r for r in caplog.records if "cannot store what run" in r.message]
            assert len(warnings) == 1  # said once, with the cause
            with admin.connect() as conn:
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    finally:
        admin.dispose()
    assert len(keel.get_metric_history(run.id, "m")) == 50  # nothing was lost
