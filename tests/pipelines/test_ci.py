"""Staged CI: a smoke run on a sample in a throwaway workspace, and tiered workflows."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

import keel
import keel.data
from tests.conftest import run_keel

PIPELINE = textwrap.dedent('''
    import keel, pandas as pd

    @keel.step
    def load(folder):
        return pd.read_csv(f"{folder}/rows.csv")

    @keel.step
    def train(data):
        keel.log_metric("rows_seen", len(data))
        keel.log_metric("accuracy", 0.9 if len(data) > 10 else 0.5)
        return {"rows": len(data)}

    @keel.pipeline
    def churn():
        return train(load(keel.dataset("rows@latest")))
''')


@pytest.fixture
def project(backend: str, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("x\n" + "\n".join(str(i) for i in range(500)) + "\n")
    keel.data.add(data, "rows")
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return tmp_path


def test_smoke_runs_on_a_sample_in_a_throwaway_workspace(project: Path) -> None:
    result = run_keel("ci", "smoke", "pipeline.py", "--rows", "50", "--require",
                      "accuracy >= 0.8", "--summary", "smoke.md", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["metrics"]["rows_seen"] == 50
    assert [s["status"] for s in report["steps"]] == ["ran", "ran"]
    assert "**passed**" in (project / "smoke.md").read_text()
    assert keel.search_runs(as_list=True) == []  # the project's workspace saw nothing
    assert [v.ref for v in keel.data.log("rows")] == ["rows@1"]


def test_smoke_fails_when_a_bound_does_not_hold(project: Path) -> None:
    result = run_keel("ci", "smoke", "pipeline.py", "--sample", "1%", "--require",
                      "accuracy >= 0.8", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["metrics"]["rows_seen"] == 5
    assert report["checks"] == [{"rule": "accuracy >= 0.8", "passed": False, "detail": "0.5"}]


def test_smoke_bounds_can_be_declared_in_keel_toml(project: Path) -> None:
    (project / "keel.toml").write_text('[ci.smoke]\nrows = 20\nrequire = ["rows_seen <= 20"]\n')
    report = json.loads(run_keel("ci", "smoke", "pipeline.py", "--json").stdout)
    assert report["passed"] and report["metrics"]["rows_seen"] == 20


def test_bad_smoke_options_are_refused(project: Path) -> None:
    assert "bad --sample" in run_keel("ci", "smoke", "pipeline.py", "--sample", "lots").stderr
    assert "fraction" in run_keel("ci", "smoke", "pipeline.py", "--sample", "150%").stderr
    assert "bad requirement" in run_keel("ci", "smoke", "pipeline.py", "--require",
                                         "accuracy is high").stderr


def test_ci_init_github_writes_the_tiers(project: Path) -> None:
    result = run_keel("ci", "init", "github", "--model", "churn")
    assert result.returncode == 0, result.stderr
    workflow = yaml.safe_load((project / ".github" / "workflows" / "keel.yml").read_text())
    jobs = workflow["jobs"]
    assert set(jobs) == {"push", "nightly", "weekly"}
    runs = {job: " ".join(step.get("run", "") for step in spec["steps"])
            for job, spec in jobs.items()}
    assert "keel ci smoke pipeline.py" in runs["push"] and "pytest" in runs["push"]
    assert "keel pipeline run pipeline.py" in runs["nightly"] and "keel ci gate churn" in \
        runs["nightly"]
    assert "keel data pull" in runs["weekly"] and "--force load" in runs["weekly"]
    again = run_keel("ci", "init", "github", "--model", "churn")
    assert again.returncode == 1 and "--force" in again.stderr
