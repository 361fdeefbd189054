"""Continuous training end to end on a real workspace and a real server:
trigger -> retrain -> gates -> canary -> promote, audited and linked; and
every way it must stop without touching the deployment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import keel.data
import keel.models
from keel.automation.loop import run_once
from keel.errors import InvalidInput, NotFound
from keel.models.lineage import lineage
from keel.serving import rollout
from tests.conftest import run_keel
from tests.serving.conftest import Registry, Server, rows, wait_for

PIPELINE = '''
from pathlib import Path

import keel


@keel.step
def train(data: Path, fail: bool) -> dict:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import keel.models as km

    if fail:
        raise RuntimeError("the training data is unreadable")
    frame = pd.read_parquet(next(Path(data).glob("*.parquet")))
    X, y = frame[["f0", "f1", "f2", "f3"]], frame["y"]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    run = keel.active_run()
    run.log_metric("accuracy", float(model.score(X, y)))
    uri = run.log_model(model, "model", input_example=X[:5])
    return {"model_version": km.register(uri, "churn").ref}


@keel.pipeline
def retrain(data: str = "train@latest", fail: bool = False):
    return train(keel.dataset(data), fail=fail)
'''

POLICY = '''
[automate.prod]
pipeline = "{pipeline}"
model = "churn"
data = "train@latest"
triggers = ["new_version: train"]
gates = ["{gate}"]
canary = {{ percent = 50, min_requests = 20, max_error_rate = 0.05 }}
'''


def setup(registry: Registry, gate: str = "accuracy >= 0.8",
          pipeline: str = "retrain.py:retrain") -> None:
    (registry.root / "retrain.py").write_text(PIPELINE)
    (registry.root / "keel.toml").write_text(POLICY.format(pipeline=pipeline, gate=gate))
    folder = registry.root / "train"
    folder.mkdir()
    frame = rows(800, seed=7)
    frame["f0"] += 0.5  # the world moved: new data to learn from
    frame.assign(y=(frame.f0 + frame.f1 > 0.5).astype(int)).to_parquet(folder / "t.parquet")
    keel.data.add(folder, "train", ws=registry.ws)
    rollout.create("prod", "churn@champion", registry.ws)


def actions(registry: Registry) -> list[tuple[str, str]]:
    return [(a.action, a.outcome) for a in registry.ws.store.list_automation_actions("prod")]


def test_the_loop_retrains_gates_canaries_and_promotes_by_itself(
        registry: Registry, serve: Callable[..., Server]) -> None:
    setup(registry)
    server = serve(deployment="prod")
    before = registry.ws.store.get_deployment("prod").revision

    planned = run_once(registry.ws, dry_run=True)
    assert [(s.action, s.outcome) for s in planned] == [("trigger", "dry-run"),
                                                        ("retrain", "dry-run")]
    assert "would run retrain.py:retrain on train@1" in planned[1].reason
    assert actions(registry) == [] and registry.ws.store.get_deployment("prod").revision \
        == before

    steps = run_once(registry.ws)
    assert [(s.action, s.outcome) for s in steps] == [
        ("trigger", "ok"), ("retrain", "ok"), ("gate", "ok"), ("canary", "ok")]
    assert "new version train@1" in steps[0].reason
    candidate = steps[1].links["model_version"]
    assert candidate not in registry.versions.values()
    assert steps[1].links["data"] == "train@1" and steps[1].links["pipeline_run"]
    _, spec = rollout.get("prod", registry.ws)
    assert spec.canary is not None and spec.canary.version == candidate
    assert len({s.chain for s in steps}) == 1 and steps[0].chain == steps[0].id

    # Too early to judge: nothing is changed or recorded.
    assert [(s.action, s.outcome) for s in run_once(registry.ws)] == [("wait", "waiting")]
    assert len(actions(registry)) == 4

    revision = registry.ws.store.deployment_revision("prod")
    wait_for(lambda: server.client.get("/health").json()["revision"] == revision,
             what="the server to load the canary")
    for i in range(60):
        assert server.predict(rows(1, seed=100 + i)).status_code == 200
    wait_for(lambda: sum(s.requests for s in rollout.live_figures("prod", registry.ws)
                         if s.role == "canary") >= 20, what="20 canary requests counted")
    judged = run_once(registry.ws)
    assert [(s.action, s.outcome) for s in judged] == [("promote", "ok")]
    _, spec = rollout.get("prod", registry.ws)
    assert spec.canary is None and spec.stable.version == candidate
    assert keel.models.get_version("churn@champion", ws=registry.ws).ref == candidate

    # The champion's lineage names the trigger that caused it.
    chain = lineage("churn@champion", ws=registry.ws)["automation"]
    assert chain[0]["action"] == "trigger" and "new version train@1" in chain[0]["reason"]
    assert [c["action"] for c in chain] == ["trigger", "retrain", "gate", "canary", "promote"]
    shown = run_keel("lineage", "models:/churn@champion", env={"COLUMNS": "200"}).stdout
    assert "made by continuous training" in shown and "new version train@1" in shown

    # The new champion was trained on train@1: the trigger is quiet now.
    assert [(s.action, s.outcome) for s in run_once(registry.ws)] == [("check", "quiet")]
    history = run_keel("automate", "history", "prod", env={"COLUMNS": "200"}).stdout
    for action in ("trigger", "retrain", "gate", "canary", "promote"):
        assert action in history


def test_a_failing_retrain_changes_nothing_is_audited_and_the_daemon_goes_on(
        registry: Registry) -> None:
    setup(registry)
    (registry.root / "retrain.py").write_text(
        PIPELINE.replace("fail: bool = False", "fail: bool = True"))
    before = registry.ws.store.get_deployment("prod").revision
    steps = run_once(registry.ws)
    assert [(s.action, s.outcome) for s in steps] == [("trigger", "ok"), ("retrain", "failed")]
    assert "the training data is unreadable" in steps[1].reason
    assert registry.ws.store.get_deployment("prod").revision == before
    out = run_keel("automate", "daemon", "--every", "0.05s", "--count", "2")
    assert out.returncode == 0
    assert out.stdout.count("prod: retrain failed") == 2  # both passes ran
    assert registry.ws.store.get_deployment("prod").revision == before
    failed = run_keel("automate", "run", "--json")
    assert failed.returncode == 1 and '"outcome": "failed"' in failed.stdout


def test_a_refused_gate_starts_no_canary(registry: Registry) -> None:
    setup(registry, gate="accuracy >= 0.999")
    steps = run_once(registry.ws)
    assert [(s.action, s.outcome) for s in steps] == [
        ("trigger", "ok"), ("retrain", "ok"), ("gate", "refused")]
    assert "accuracy" in steps[2].reason
    _, spec = rollout.get("prod", registry.ws)
    assert spec.canary is None and spec.stable.version == registry.versions["champion"]


def test_a_canary_ended_by_hand_is_recorded_as_observed(registry: Registry) -> None:
    setup(registry)
    steps = run_once(registry.ws)
    assert steps[-1].action == "canary"
    rollout.rollback("prod", registry.ws, reason="on-call rolled it back")
    judged = run_once(registry.ws)
    assert [(s.action, s.outcome) for s in judged] == [("rollback", "observed")]
    assert "on-call rolled it back" in judged[0].reason
    assert judged[0].chain == steps[0].chain


def test_bad_policies_are_named_with_their_fix(registry: Registry) -> None:
    setup(registry, pipeline="missing.py:retrain")
    steps = run_once(registry.ws)
    assert steps[-1].outcome == "failed" and "missing.py" in steps[-1].reason
    assert registry.ws.store.get_deployment("prod").revision == 1
    toml = registry.root / "keel.toml"
    toml.write_text('[automate.prod]\npipeline = "retrain.py"\nmodel = "churn"\n'
                    'triggers = ["drift_share is high"]\n')
    with pytest.raises(InvalidInput, match="bad trigger"):
        run_once(registry.ws)
    toml.write_text('[automate.prod]\npipeline = "retrain.py"\nmodel = "churn"\n'
                    'triggers = ["schedule: 1d"]\nretries = 3\n')
    with pytest.raises(InvalidInput, match="unknown keys: retries"):
        run_once(registry.ws)
    with pytest.raises(NotFound, match=r"no \[automate\.staging\]"):
        run_once(registry.ws, "staging")
    bad = run_keel("automate", "run", "staging")
    assert bad.returncode == 1 and "declares no [automate.staging]" in bad.stderr


def test_a_drift_rule_triggers_from_live_traffic(registry: Registry,
                                                serve: Callable[..., Server],
                                                tmp_path: Path) -> None:
    setup(registry)
    toml = registry.root / "keel.toml"
    toml.write_text(toml.read_text().replace('triggers = ["new_version: train"]',
                                             'triggers = ["drift_share > 0.4"]\n'
                                             'reference = "train@1"'))
    server = serve(deployment="prod")
    quiet = rows(300, seed=8)
    quiet["f0"] += 0.5  # traffic like the reference: no trigger
    server.predict(quiet)
    wait_for(lambda: len(keel.inference_log("prod", ws=registry.ws).read(labels=False)) >= 300,
             what="logged rows")
    dry = run_once(registry.ws, dry_run=True)
    assert [(s.action, s.outcome) for s in dry] == [("check", "quiet")]
    moved = rows(300, seed=9) * 3  # every feature spreads out
    server.predict(moved)
    wait_for(lambda: len(keel.inference_log("prod", ws=registry.ws).read(labels=False)) >= 600,
             what="logged rows")
    fired = run_once(registry.ws, dry_run=True)
    assert fired[0].action == "trigger" and "drift_share = " in fired[0].reason


def test_a_policy_declared_in_python_runs_the_pipeline_object(registry: Registry) -> None:
    from keel.automation import Policy, Trigger
    from keel.pipelines.pipeline import load_pipeline

    setup(registry)
    (registry.root / "keel.toml").unlink()
    pipeline = load_pipeline(str(registry.root / "retrain.py"))
    policy = Policy("prod", pipeline=pipeline, model="churn", data="train@latest",
                    triggers=(Trigger.parse("new_version: train"),),
                    gates=("accuracy >= 0.8",))
    steps = run_once(registry.ws, policy=policy)
    assert [(s.action, s.outcome) for s in steps] == [
        ("trigger", "ok"), ("retrain", "ok"), ("gate", "ok"), ("canary", "ok")]
    assert steps[1].links["pipeline"] == "retrain"
