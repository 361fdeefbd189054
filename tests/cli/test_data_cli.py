"""``keel data`` as a user runs it: checks that block, diffs that show statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import run_keel


def write_table(path: Path, rows: int, shift: float = 0.0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "id": np.arange(rows),
        "amount": rng.normal(100 + shift, 10, rows).round(2),
        "country": rng.choice(["DE", "FR", "US"], rows),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def test_diff_shows_changed_column_statistics(backend: str, tmp_path: Path) -> None:
    write_table(tmp_path / "data" / "t.csv", 2000)
    assert run_keel("data", "add", "data", "--name", "tx").returncode == 0
    write_table(tmp_path / "data" / "t.csv", 2500, shift=30, seed=1)
    assert run_keel("data", "add", "data", "--name", "tx", "-m", "shifted").returncode == 0
    result = run_keel("data", "diff", "tx@1", "tx@2")
    assert result.returncode == 0, result.stderr
    assert "~ t.csv" in result.stdout
    assert "rows 2000 -> 2500" in result.stdout
    amount = next(line for line in result.stdout.splitlines() if line.strip("│ ").startswith(
        "amount"))
    assert "yes" in amount  # its distribution moved
    data = json.loads(run_keel("data", "diff", "tx@1", "tx@2", "--json").stdout)
    assert "amount" in data["tables"]["t.csv"]["moved_columns"]


def test_failing_check_blocks_the_version_and_prints_failing_rows(backend: str,
                                                                  tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3, 3], "amount": [10.0, -5.0, 20.0, None],
                          "country": ["DE", "FR", "XX", "US"]})
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "t.csv", index=False)
    (tmp_path / "keel.toml").write_text(
        '[datasets.tx.checks]\nnot_null = ["amount"]\nunique = ["id"]\n'
        'ranges = { amount = [0, 1000] }\nallowed = { country = ["DE", "FR", "US"] }\n')
    refused = run_keel("data", "add", "data", "--name", "tx", "--check")
    assert refused.returncode == 1
    assert "quality check(s) failed" in refused.stderr and "--allow-failing" in refused.stderr
    out = refused.stdout
    assert "FAIL" in out and "not_null(amount)" in out and '"row": 3' in out
    assert '"amount": -5.0' in out and '"country": "XX"' in out
    assert "no dataset 'tx'" in run_keel("data", "log", "tx").stderr  # nothing was created
    kept = run_keel("data", "add", "data", "--name", "tx", "--check", "--allow-failing")
    assert kept.returncode == 0 and "Created tx@1" in kept.stdout
    assert "fail" in run_keel("data", "log", "tx").stdout


def test_status_checkout_and_show(backend: str, tmp_path: Path) -> None:
    write_table(tmp_path / "data" / "t.csv", 100)
    run_keel("data", "add", "data", "--name", "tx")
    assert "up to date" in run_keel("data", "status", "tx").stdout
    write_table(tmp_path / "data" / "t.csv", 50, seed=3)
    assert "modified t.csv" in " ".join(run_keel("data", "status", "tx").stdout.split())
    refused = run_keel("data", "checkout", "tx@1")
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert run_keel("data", "checkout", "tx@1", "--force").returncode == 0
    assert "up to date" in run_keel("data", "status", "tx").stdout
    profile = run_keel("data", "profile", "tx@1")
    assert profile.returncode == 0 and "amount" in profile.stdout and "100 rows" in profile.stdout
    shown = json.loads(run_keel("data", "show", "tx@1", "--json").stdout)
    assert shown["ref"] == "tx@1" and shown["runs"] == []


def test_remote_errors_are_shown_whole_and_create_nothing(backend: str, tmp_path: Path) -> None:
    no_remote = run_keel("data", "push")
    assert no_remote.returncode == 1
    assert "[remote]" in no_remote.stderr  # TOML table names survive the terminal markup
    missing = tmp_path / "typo-remote"
    pulled = run_keel("data", "pull", "--remote", str(missing))
    assert pulled.returncode == 1 and "holds no dataset versions" in pulled.stderr
    assert not missing.exists()  # a mistyped remote is not created
