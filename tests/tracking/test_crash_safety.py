"""Nothing acknowledged is lost: SIGKILL after a log call returns loses no point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import keel
from keel.tracking import session

CHILD = textwrap.dedent("""
    import sys, time, keel
    run = keel.start_run(experiment="crash")
    print(run.id, flush=True)
    for i in range(10_000):
        run.log_metric("loss", 1.0 / (i + 1), step=i)
    print("logged", flush=True)
    time.sleep(600)
""")


def log_then_get_killed() -> str:
    """Start a process that logs 10,000 points; SIGKILL it the moment the last
    call has returned. Returns the id of its run."""
    with subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                          text=True) as child:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        assert child.stdout.readline().strip() == "logged"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    return run_id


def test_sigkill_right_after_logging_loses_nothing(backend: str) -> None:
    keel.create_experiment("crash")  # this process has the workspace open already
    run_id = log_then_get_killed()

    recovered = keel.recover()
    assert [r.run_id for r in recovered] == [run_id]
    history = keel.get_metric_history(run_id, "loss")
    assert [p.step for p in history] == list(range(10_000))
    assert history[-1].value == 1.0 / 10_000
    stored = keel.get_run(run_id)
    assert stored.status == "KILLED"
    assert "died" in (stored.error or "")
    assert list(session.workspace().spool_dir.glob("*.spool")) == []


def test_opening_the_workspace_recovers_without_being_asked(backend: str) -> None:
    run_id = log_then_get_killed()
    session.reset()
    assert len(keel.get_metric_history(run_id, "loss")) == 10_000  # first open recovered it
    assert keel.get_run(run_id).status == "KILLED"


def test_recovery_leaves_live_runs_alone(backend: str) -> None:
    with keel.start_run() as run:
        run.log_metric("loss", 1.0)
        assert keel.recover() == []  # our own spool is locked: not an orphan
        assert keel.get_run(run.id).status == "RUNNING"
    assert keel.get_run(run.id).status == "FINISHED"
