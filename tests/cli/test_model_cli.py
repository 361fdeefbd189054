"""The model commands as a user types them: register, promote (refused and
audited), history, ci gate, evaluate, lineage, predict."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_keel
from tests.models.fixtures import Trained


def test_model_lifecycle_from_the_command_line(trained: Trained, tmp_path: Path) -> None:
    good_run, poor_run = trained.good_uri.split("/")[1], trained.poor_uri.split("/")[1]
    out = run_keel("model", "register", f"runs:/{good_run[:10]}/model", "--name", "bc")
    assert out.returncode == 0, out.stderr
    assert "Registered bc/1" in out.stdout
    assert run_keel("model", "register", trained.poor_uri, "--name", "bc").returncode == 0

    out = run_keel("model", "promote", "bc/1", "--alias", "champion", "--reason", "baseline",
                   "--require", "auc >= 0.9", "--holdout", "holdout@1")
    assert out.returncode == 0, out.stderr
    assert "bc@champion -> version 1" in out.stdout

    out = run_keel("model", "promote", "bc/2", "--alias", "champion", "--reason", "cheaper",
                   "--holdout", "holdout@1", "--max-regression", "0.01")
    assert out.returncode == 1
    assert "FAIL" in out.stderr and "no regression vs bc/1" in out.stderr
    assert "error: bc/2 cannot become 'champion'" in out.stderr
    assert "Traceback" not in out.stderr

    history = json.loads(run_keel("model", "history", "bc", "--json").stdout)
    assert [e["action"] for e in history] == ["register", "register", "promote", "refuse"]
    assert history[-1]["reason"] == "cheaper" and history[-1]["evidence"]["passed"] is False
    table = run_keel("model", "history", "bc").stdout
    assert "refuse" in table and "FAIL" in table

    summary = tmp_path / "gate.md"
    out = run_keel("ci", "gate", "bc/2", "--alias", "champion", "--holdout", "holdout@1",
                   "--summary", str(summary))
    assert out.returncode == 1
    assert "**FAILED**" in summary.read_text()
    assert run_keel("ci", "gate", "bc/1", "--require", "auc >= 0.5", "--holdout",
                    "holdout@1").returncode == 0

    shown = json.loads(run_keel("model", "show", "bc@champion", "--json").stdout)
    assert shown["version"] == 1 and shown["aliases"] == ["champion"]
    assert run_keel("model", "show", "bc").stdout.count("active") == 2

    out = run_keel("model", "evaluate", "bc/1", "--data", "holdout@1", "--slice-by", "region")
    assert out.returncode == 0, out.stderr
    assert "by region" in out.stdout and "plots/confusion_matrix.png" in out.stdout

    lineage = json.loads(run_keel("lineage", "models:/bc@champion", "--json").stdout)
    assert lineage["run"]["id"] == good_run
    assert [d["ref"] for d in lineage["datasets"]] == ["holdout@1"]
    tree = run_keel("lineage", "models:/bc@champion").stdout
    assert "holdout@1" in tree and "environment: Python" in tree

    trained.holdout.to_csv(tmp_path / "rows.csv", index=False)
    out = run_keel("predict", "models:/bc@champion", str(tmp_path / "rows.csv"), "-o",
                   str(tmp_path / "scored.parquet"))
    assert out.returncode == 0, out.stderr
    assert f"Scored {len(trained.holdout)} rows" in out.stdout
    assert poor_run not in out.stdout


def test_model_command_errors_are_two_lines_and_exit_1(trained: Trained) -> None:
    out = run_keel("model", "show", "nobody")
    assert out.returncode == 1
    assert out.stderr.startswith("error: no registered model 'nobody'")
    assert "hint:" in out.stderr
    out = run_keel("model", "promote", "bc/1", "--alias", "champion", "--force")
    assert out.returncode == 1 and "no registered model 'bc'" in out.stderr
