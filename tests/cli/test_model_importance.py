"""``keel model importance`` as a user types it: a ranked table, JSON for scripts,
a second ask served from the version's cache, and a two-line error for a bad label."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_keel
from tests.monitoring.test_explain import registered_model


def test_importance_table_json_and_cache(tmp_path: Path) -> None:
    ref = registered_model(tmp_path)
    out = run_keel("model", "importance", ref, "--data", "holdout@1", "--label", "y")
    assert out.returncode == 0, out.stderr
    ranked = [word for line in out.stdout.splitlines() for word in line.split()
              if word in ("x1", "x2", "x3")]
    assert ranked == ["x1", "x2", "x3"], out.stdout
    assert "auc drop" in out.stdout and "1,000 rows, label 'y'" in out.stdout
    assert "from the cache" not in out.stdout
    again = run_keel("model", "importance", ref, "--data", "holdout@1", "--label", "y")
    assert "(from the cache on clf/1)" in again.stdout

    out = run_keel("model", "importance", "clf@latest", "--data", "holdout@1", "--label", "y",
                   "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert list(report["importance"]) == ["x1", "x2", "x3"]
    assert report["model"] == "clf/1" and report["metric"] == "auc" and report["cached"]


def test_importance_of_a_missing_label_is_a_two_line_error(tmp_path: Path) -> None:
    ref = registered_model(tmp_path)
    out = run_keel("model", "importance", ref, "--data", "holdout@1", "--label", "churned")
    assert out.returncode == 1
    assert out.stderr.startswith("error: label column 'churned' is not in the data")
    assert "hint: columns: x1, x2, x3, y, id" in out.stderr
    assert "Traceback" not in out.stderr
