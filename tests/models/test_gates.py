"""Gated promotion: thresholds, no regression on a holdout, signatures, audit."""

from __future__ import annotations

from pathlib import Path

import pytest

import keel
import keel.models as km
from keel.errors import InvalidInput
from keel.workspace import current_workspace
from tests.models.fixtures import Trained


def _policy(**kwargs: object) -> km.GatePolicy:
    return km.GatePolicy.for_alias("bc", "champion", **kwargs)  # type: ignore[arg-type]


def test_a_regressing_model_is_refused_and_the_refusal_is_in_the_history(
        trained: Trained) -> None:
    km.register(trained.good_uri, "bc")
    km.register(trained.poor_uri, "bc")
    km.promote("bc/1", "champion", reason="baseline", policy=_policy(holdout="holdout@1"))
    with pytest.raises(km.GateFailed) as caught:
        km.promote("bc/2", "champion", reason="try the dummy",
                   policy=_policy(holdout="holdout@1", max_regression=0.01))
    failed = caught.value.report.failed
    assert [r.gate for r in failed] == ["no regression vs bc/1"]
    evidence = failed[0].evidence
    assert evidence["metric"] == "auc" and evidence["candidate"] == pytest.approx(0.5)
    assert evidence["current"] > 0.9 and evidence["regression"] > 0.01
    store = current_workspace().store
    assert store.get_registered_model("bc").aliases == {"champion": 1}   # unchanged
    refusal = store.model_history("bc")[-1]
    assert (refusal.action, refusal.from_version, refusal.to_version) == ("refuse", 1, 2)
    assert refusal.reason == "try the dummy"
    assert refusal.evidence["passed"] is False
    # Both models were scored now, on the same holdout, as evaluation runs.
    for run_id in (evidence["current_evaluation_run"],
                   refusal.evidence["results"][0]["evidence"]["current_evaluation_run"]):
        assert keel.get_run(run_id).params["data"] == "holdout@1"


def test_thresholds_use_holdout_metrics_and_name_missing_ones(trained: Trained) -> None:
    km.register(trained.good_uri, "bc")
    done = km.promote("bc/1", "champion", policy=_policy(require=["auc >= 0.9"],
                                                         holdout="holdout@1"))
    assert done.report.passed and "(holdout)" in done.report.results[0].detail
    km.register(trained.poor_uri, "bc")
    with pytest.raises(km.GateFailed, match="not found"):
        km.promote("bc/2", "challenger", policy=km.GatePolicy.for_alias(
            "bc", "challenger", require=["recall_at_5 >= 0.5"]))


def test_force_needs_a_reason_and_is_audited(trained: Trained) -> None:
    km.register(trained.good_uri, "bc")
    km.register(trained.poor_uri, "bc")
    km.promote("bc/1", "champion")
    rules = _policy(require=["auc >= 0.9"], holdout="holdout@1")
    with pytest.raises(InvalidInput, match="needs a reason"):
        km.promote("bc/2", "champion", policy=rules, force=True)
    done = km.promote("bc/2", "champion", reason="incident 42: roll forward", policy=rules,
                      force=True)
    assert done.forced and done.previous == 1
    last = current_workspace().store.model_history("bc")[-1]
    assert (last.action, last.reason) == ("force", "incident 42: roll forward")


def test_promoting_a_version_of_another_model_is_refused(trained: Trained) -> None:
    km.register(trained.good_uri, "bc")
    km.register(trained.poor_uri, "fraud")
    with pytest.raises(InvalidInput, match="is a version of 'fraud', not of 'bc'"):
        km.promote("fraud/1", "bc@champion")
    with pytest.raises(InvalidInput, match="not of 'bc'"):
        km.promote("fraud/1", "champion", model="bc")
    assert current_workspace().store.get_registered_model("bc").aliases == {}


def test_signature_change_fails_the_compatibility_gate(trained: Trained) -> None:
    from sklearn.linear_model import LogisticRegression

    X = trained.train.drop(columns=["target", "region"])
    narrow = LogisticRegression(max_iter=1000).fit(X.iloc[:, :3], trained.train["target"])
    with keel.start_run() as run:
        uri = run.log_model(narrow, "model", input_example=X.iloc[:5, :3])
    km.register(trained.good_uri, "bc")
    km.register(uri, "bc")
    km.promote("bc/1", "champion")
    with pytest.raises(km.GateFailed, match="drops column") as caught:
        km.promote("bc/2", "champion")
    assert caught.value.report.failed[0].gate == "signature compatible with bc/1"


def test_gates_declared_in_keel_toml_apply(trained: Trained, tmp_path: Path) -> None:
    (tmp_path / "keel.toml").write_text(
        '[models.bc.gates.champion]\nrequire = ["auc >= 0.99"]\nholdout = "holdout@1"\n')
    km.register(trained.good_uri, "bc")
    with pytest.raises(km.GateFailed, match=r"require auc >= 0.99: auc = 0\.\d+ \(holdout\)"):
        km.promote("bc/1", "champion")
    assert km.promote("bc/1", "staging").report.passed     # other aliases: no gates


def test_bad_gate_options_are_refused(trained: Trained) -> None:
    with pytest.raises(InvalidInput, match="bad requirement"):
        _policy(require=["auc is high"])
    with pytest.raises(InvalidInput, match="needs a holdout"):
        _policy(max_regression=0.1)
