"""The command line, run as a user runs it: output, exit codes, error shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import keel
from keel.tracking import session
from tests.conftest import run_keel


@pytest.fixture
def two_runs(backend: str) -> list[str]:
    ids = []
    for model, acc in (("rf", 0.91), ("lr", 0.84)):
        with keel.start_run(experiment="churn", name=f"{model}-run",
                            params={"model": model, "seed": 1}) as run:
            run.log_metric("acc", acc)
        ids.append(run.id)
    session.reset()
    return ids


def test_init_creates_a_workspace(tmp_path: Path) -> None:
    result = run_keel("init", "proj", process=True)  # end to end, in a new process
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "proj" / ".keel" / "keel.db").is_file()
    assert "Initialised" in result.stdout


def test_commands_outside_a_workspace_say_how_to_make_one(tmp_path: Path) -> None:
    result = run_keel("runs", "list")
    assert result.returncode == 1
    assert "error: no .keel/ found" in result.stderr
    assert "hint: run `keel init`" in result.stderr
    assert "Traceback" not in result.stderr


def test_runs_list_with_filter_and_json(two_runs: list[str]) -> None:
    result = run_keel("runs", "list", "--experiment", "churn", "--filter", "metrics.acc > 0.9",
                      "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["rf-run"]
    table = run_keel("runs", "list", "--order-by", "metrics.acc ASC").stdout
    assert table.index("lr-run") < table.index("rf-run")


def test_runs_show_by_prefix(two_runs: list[str]) -> None:
    result = run_keel("runs", "show", two_runs[0][:8])
    assert result.returncode == 0, result.stderr
    for text in ("rf-run", "model", "acc", "0.91", "keel/requirements.txt", "git.status"):
        assert text in result.stdout


def test_runs_compare_highlights_differences(two_runs: list[str]) -> None:
    result = run_keel("runs", "compare", *two_runs, "--json")
    rows = json.loads(result.stdout)["rows"]
    assert rows["params.model"] == ["rf", "lr"] and rows["params.seed"] == ["1", "1"]
    assert rows["metrics.acc"] == ["0.91", "0.84"]
    assert "differences highlighted" in run_keel("runs", "compare", *two_runs).stdout


def test_delete_and_restore_a_run(two_runs: list[str]) -> None:
    assert run_keel("runs", "delete", two_runs[0]).returncode == 0
    listed = json.loads(run_keel("runs", "list", "--json").stdout)
    assert [r["name"] for r in listed] == ["lr-run"]
    assert run_keel("runs", "restore", two_runs[0]).returncode == 0
    assert len(json.loads(run_keel("runs", "list", "--json").stdout)) == 2


def test_experiments_create_list_delete(backend: str) -> None:
    assert run_keel("experiments", "create", "churn", "-d", "who leaves").returncode == 0
    again = run_keel("experiments", "create", "churn")
    assert again.returncode == 1 and "already exists" in again.stderr
    listed = json.loads(run_keel("experiments", "list", "--json").stdout)
    assert [(e["name"], e["description"]) for e in listed] == [("churn", "who leaves")]
    assert run_keel("experiments", "delete", "churn").returncode == 0
    assert json.loads(run_keel("experiments", "list", "--json").stdout) == []
    recreate = run_keel("experiments", "create", "churn")
    assert "restore" in recreate.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["runs", "show", "ffff"], "no run 'ffff'"),
    (["runs", "list", "--filter", "metrics.acc >"], "bad filter at position 13"),
    (["runs", "list", "--experiment", "nope"], "no experiment 'nope'"),
])
def test_errors_are_one_line_and_a_hint_exit_1(two_runs: list[str], args: list[str],
                                                message: str) -> None:
    result = run_keel(*args)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "hint: " in result.stderr and "Traceback" not in result.stderr


def test_usage_errors_exit_2(backend: str) -> None:
    assert run_keel("runs", "frobnicate").returncode == 2


def test_recover_reports_nothing_to_do(backend: str) -> None:
    result = run_keel("recover")
    assert result.returncode == 0 and "Nothing to recover" in result.stdout


def test_db_upgrade_and_config(backend: str) -> None:
    from keel.store.schema import SCHEMA_REVISION

    assert f"schema revision {SCHEMA_REVISION}" in run_keel("db", "upgrade").stdout
    shown = run_keel("config").stdout
    assert "store" in shown and ":keel@" not in shown  # passwords never printed
