"""Sweeps and `keel run`: trials as child runs, ranked; rules stop runs early, with reasons."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import keel
from tests.conftest import run_keel

TRAIN = textwrap.dedent('''
    import keel
    p = keel.params(lr=0.1, depth=3)
    with keel.start_run() as run:
        for step in range(4):
            keel.log_metric("val_acc", 1 - abs(p["lr"] - 0.05) + p["depth"] * 0.01
                            - step * 0.001, step=step)
        if p["depth"] == 5 and p["lr"] == 0.1:
            raise ValueError("a bad trial")
''')


@pytest.fixture
def script(backend: str, tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(TRAIN)
    return path


def _sweep(*extra: str) -> dict:  # type: ignore[type-arg]
    result = run_keel("sweep", "train.py", "--grid", "lr=0.1,0.01", "--grid", "depth=3,5",
                      "--metric", "val_acc", "--mode", "max", "--json", *extra)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_a_grid_sweep_records_every_trial_as_a_child_run(script: Path) -> None:
    report = _sweep("--parallel", "2")
    trials = report["trials"]
    assert len(trials) == 4
    assert trials[0]["params"] == {"lr": 0.01, "depth": 5}  # the best first
    assert report["best_run_id"] == trials[0]["run_id"]
    statuses = {(t["params"]["lr"], t["params"]["depth"]): t["status"] for t in trials}
    assert statuses[(0.1, 5)] == "failed"  # recorded, not fatal
    sweep_run = keel.get_run(report["sweep_run_id"])
    assert sweep_run.tags["keel.sweep.best_run"] == report["best_run_id"]
    for trial in trials:
        run = keel.get_run(trial["run_id"])
        assert run.parent_id == report["sweep_run_id"]
        assert run.params == {k: str(v) for k, v in trial["params"].items()}
    assert keel.get_run(trials[-1]["run_id"]).status == "FAILED"


def test_the_same_sweep_runs_on_ray_and_records_the_same_trials(script: Path) -> None:
    local = _sweep("--parallel", "2")
    on_ray = _sweep("--parallel", "2", "--executor", "ray")

    def summary(report: dict) -> list[tuple[object, ...]]:  # type: ignore[type-arg]
        return sorted((t["params"]["lr"], t["params"]["depth"], t["status"], t["metric"])
                      for t in report["trials"])

    assert summary(on_ray) == summary(local)
    for trial in on_ray["trials"]:
        assert keel.get_run(trial["run_id"]).parent_id == on_ray["sweep_run_id"]
    assert keel.get_run(on_ray["sweep_run_id"]).tags["keel.sweep.executor"] == "ray"


def test_random_draws_are_seeded(script: Path) -> None:
    args = ["sweep", "train.py", "--random", "3", "--param", "lr=loguniform(1e-3,1e-1)",
            "--param", "depth=int(2,6)", "--seed", "7", "--metric", "val_acc", "--json"]
    first = json.loads(run_keel(*args).stdout)["trials"]
    second = json.loads(run_keel(*args).stdout)["trials"]
    assert sorted(str(t["params"]) for t in first) == sorted(str(t["params"]) for t in second)
    assert all(1e-3 <= t["params"]["lr"] <= 1e-1 and 2 <= t["params"]["depth"] <= 6
               for t in first)


def test_a_python_function_sweep(backend: str) -> None:
    def objective(lr: float, depth: int) -> dict[str, float]:
        keel.log_metric("loss", lr * depth)
        return {"score": 1 / (lr * depth)}

    result = keel.sweep(objective, grid={"lr": [0.1, 0.2], "depth": [1, 2]}, metric="score",
                        mode="max", executor="local", parallel=1)
    assert result.best is not None and result.best.params == {"lr": 0.1, "depth": 1}
    assert len(keel.search_runs(as_list=True)) == 5  # the sweep and its four trials


@pytest.mark.parametrize(("args", "message"), [
    (["--grid", "lr"], "bad --grid"),
    (["--grid", "lr=0.1", "--grid", "lr=0.2"], "names 'lr' twice"),
    (["--random", "3", "--param", "lr=gauss(0,1)"], "unknown distribution"),
    (["--random", "3", "--param", "lr=uniform(2,1)"], "bad distribution"),
    (["--grid", "lr=0.1", "--abort-if", "loss goes up"], "cannot parse the rule"),
    (["--grid", "lr=0.1", "--executor", "ray", "--address", "127.0.0.1:1"],
     "cannot reach the Ray cluster at 127.0.0.1:1"),
])
def test_bad_sweep_input_is_refused_before_anything_starts(script: Path, args: list[str],
                                                           message: str) -> None:
    result = run_keel("sweep", "train.py", *args)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert keel.search_runs(as_list=True) == []


DIVERGE = textwrap.dedent('''
    import keel, time
    with keel.start_run() as run:
        loss = 1.0
        for step in range(200):
            loss = loss * (0.8 if step < 10 else 1.2)
            keel.log_metric("val_loss", loss, step=step)
''')


def test_an_abort_rule_stops_a_diverging_run_and_says_why(backend: str,
                                                          tmp_path: Path) -> None:
    (tmp_path / "diverge.py").write_text(DIVERGE)
    result = run_keel("run", "diverge.py", "--abort-if", "val_loss not improved for 5 steps",
                      "--json")
    assert result.returncode == 3
    outcome = json.loads(result.stdout)
    run = keel.get_run(outcome["run_id"])
    assert run.status == "KILLED"
    assert "val_loss not improved for 5 steps" in (run.error or "")
    assert "not improved in 5 steps" in (run.error or "")
    assert len(keel.get_metric_history(run.id, "val_loss")) == 15  # kept, up to the stop
    shown = run_keel("runs", "show", run.id).stdout
    assert "aborted by rule" in shown


def test_a_threshold_rule_and_a_budget(backend: str, tmp_path: Path) -> None:
    (tmp_path / "diverge.py").write_text(DIVERGE)
    stopped = json.loads(run_keel("run", "diverge.py", "--abort-if",
                                  "metrics.val_loss > 0.5 after step 12", "--json").stdout)
    assert "val_loss" in stopped["reason"] and "step 12" in stopped["reason"]
    (tmp_path / "slow.py").write_text(textwrap.dedent('''
        import keel, time
        with keel.start_run() as run:
            keel.log_metric("x", 1.0)
            time.sleep(60)
    '''))
    started = time.monotonic()
    result = run_keel("run", "slow.py", "--budget", "1s", "--json", process=True)
    assert time.monotonic() - started < 30  # the sleep was cut short
    outcome = json.loads(result.stdout)
    assert result.returncode == 3 and outcome["status"] == "aborted"
    assert keel.get_run(outcome["run_id"]).error == "aborted by --budget 1s: the time ran out"


def test_median_early_stopping_stops_the_worst_trials(backend: str, tmp_path: Path) -> None:
    (tmp_path / "curve.py").write_text(textwrap.dedent('''
        import keel, time
        p = keel.params(quality=1.0)
        with keel.start_run():
            for step in range(8):
                keel.log_metric("acc", p["quality"] * (step + 1) / 8, step=step)
                keel.flush()
                time.sleep(0.05)
    '''))
    report = json.loads(run_keel("sweep", "curve.py", "--grid",
                                 "quality=1.0,0.9,0.8,0.2", "--metric", "acc",
                                 "--early-stop", "median", "--json").stdout)
    by_quality = {t["params"]["quality"]: t for t in report["trials"]}
    assert by_quality[0.2]["status"] == "aborted"
    assert "median rule" in by_quality[0.2]["reason"]
    assert by_quality[1.0]["status"] == "finished"


@pytest.mark.parametrize("parallel", ["1", "2"])
def test_ctrl_c_during_a_sweep_keeps_finished_trials(backend: str, tmp_path: Path,
                                                     parallel: str) -> None:
    (tmp_path / "wait.py").write_text(textwrap.dedent('''
        import keel, time
        p = keel.params(n=0)
        with keel.start_run():
            keel.log_metric("n", p["n"])
            time.sleep(0.1 if p["n"] < 2 else 60)
    '''))
    keel.create_experiment("wait")
    child = subprocess.Popen([sys.executable, "-m", "keel.cli.main", "sweep", "wait.py",
                              "--grid", "n=0,1,2,3", "--experiment", "wait",
                              "--parallel", parallel],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the quick trials are done and a slow one runs
        found = {r.params.get("n"): r.status for r in keel.search_runs("wait", as_list=True)}
        if found.get("0") == found.get("1") == "FINISHED" and found.get("2") == "RUNNING":
            break
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGINT)
    child.communicate(timeout=60)
    runs = keel.search_runs("wait", as_list=True)
    by_n = {r.params.get("n"): r.status for r in runs if "n" in r.params}
    assert by_n["0"] == by_n["1"] == "FINISHED"
    assert by_n["2"] == "KILLED"
    sweep_run = next(r for r in runs if r.name == "sweep wait")
    assert sweep_run.status == "KILLED"
