"""Deployments on a live server: canary, A/B, shadow, promote, rollback, automatic
rollback, hot reload and failed loads; the acceptance points of the serving issue."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import keel
from keel.errors import InvalidInput
from keel.serving import rollout
from keel.serving.runtime import ServeOptions
from keel.serving.spec import CanaryLimits
from tests.conftest import run_keel
from tests.serving.conftest import Registry, Server, body, rows, wait_for


def _send(server: Server, count: int, threads: int = 4, **headers: str) -> list[dict]:
    payload = body(rows(1))
    local = threading.local()
    clients: list[httpx.Client] = []

    def one(_: int) -> dict:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=server.url, timeout=30)
            clients.append(client)
        response = client.post("/predict", json=payload, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, range(count)))
    finally:
        for client in clients:
            client.close()


def test_a_10_percent_canary_gets_10_percent_of_10000_requests(
        serve: Callable[..., Server], registry: Registry) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    rollout.canary("prod", "churn@challenger", 10, registry.ws)
    server = serve(deployment="prod")
    answers = _send(server, 10_000)
    versions = Counter(a["model_version"] for a in answers)
    assert [e.action for e in rollout.history("prod", registry.ws)] == ["create", "canary"]
    assert set(versions) == {registry.versions["champion"], registry.versions["challenger"]}
    share = versions[registry.versions["challenger"]] / 10_000
    assert 0.085 <= share <= 0.115, versions
    # The live figures every worker flushes add up to what was answered.
    figures = wait_for(lambda: (f := rollout.live_figures("prod", registry.ws)) and
                       sum(s.requests for s in f) == 10_000 and f, what="figures")
    by_role = {s.role: s.requests for s in figures}
    assert by_role["canary"] == versions[registry.versions["challenger"]]


def test_sticky_keys_always_reach_the_same_version(serve: Callable[..., Server],
                                                   registry: Registry) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    rollout.ab("prod", "champion=50,challenger=50", registry.ws, sticky_header="X-User-Id")
    server = serve(deployment="prod")
    seen: dict[str, set[str]] = {}
    for user in range(200):
        for _ in range(3):
            answer = server.predict(rows(1), **{"X-User-Id": f"user-{user}"}).json()
            seen.setdefault(f"user-{user}", set()).add(answer["model_version"])
    assert all(len(v) == 1 for v in seen.values())
    arms = Counter(next(iter(v)) for v in seen.values())
    assert len(arms) == 2 and min(arms.values()) > 60  # both arms get users
    unkeyed = Counter(a["model_version"] for a in _send(server, 400))
    assert len(unkeyed) == 2  # without the header, random by the split


def test_a_canary_that_fails_on_some_inputs_is_rolled_back_with_the_figures(
        serve: Callable[..., Server], registry: Registry) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    rollout.canary("prod", registry.versions["flaky"], 50, registry.ws,
                   limits=CanaryLimits(max_error_rate=0.05, min_requests=40))
    server = serve(deployment="prod")
    frame = rows(400, seed=5, scale=1.5)  # some rows have f0 > 1: the flaky model raises
    statuses = Counter()
    for i in range(len(frame)):
        statuses[server.predict(frame.iloc[[i]]).status_code] += 1
        if statuses[500] and rollout.get("prod", registry.ws)[1].canary is None:
            break
    assert statuses[500] > 0
    deployment, spec = wait_for(lambda: (got := rollout.get("prod", registry.ws))[1].canary
                                is None and got, what="the automatic rollback")
    assert [r.version for r in spec.routes] == [registry.versions["champion"]]
    event = rollout.history("prod", registry.ws)[-1]
    assert event.action == "auto-rollback" and event.user == "keel-guard"
    assert "error rate" in event.reason
    assert event.figures["canary"]["version"] == registry.versions["flaky"]
    assert event.figures["canary"]["errors"] > 0
    assert event.figures["canary"]["requests"] >= 40
    # The server follows: every request now reaches the stable version and succeeds.
    wait_for(lambda: server.runtime.serving.revision == deployment.revision, what="reload")
    after = [server.predict(frame.iloc[[i]]).json() for i in range(50)]
    assert {a["model_version"] for a in after} == {registry.versions["champion"]}
    shown = run_keel("deploy", "history", "prod")
    assert "auto-rollback" in shown.stdout and "errors" in shown.stdout


def test_shadow_answers_are_logged_never_returned(serve: Callable[..., Server],
                                                  registry: Registry) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    rollout.shadow("prod", registry.versions["constant"], registry.ws)  # always predicts 7
    server = serve(deployment="prod")
    answers = [server.predict(rows(2, seed=i)).json() for i in range(30)]
    assert all(7 not in a["predictions"] for a in answers)
    assert {a["model_version"] for a in answers} == {registry.versions["champion"]}
    def logged() -> object:
        table = keel.inference_log("prod", registry.ws).read()
        return [table] if (table["role"] == "shadow").sum() == 60 else None

    log = wait_for(logged, what="shadow rows")[0]
    shadow = log[log["role"] == "shadow"]
    assert set(shadow["model_version"]) == {registry.versions["constant"]}
    assert set(shadow["prediction"]) == {7}
    live = log[log["role"] == "live"]
    assert set(shadow["request_id"]) == set(live["request_id"]) == \
        {a["request_id"] for a in answers}


def test_a_shadow_that_fails_and_hangs_never_touches_live_requests(
        serve: Callable[..., Server], registry: Registry) -> None:
    """The shadow blocks until the gate file exists, then raises: every live request
    must be answered while it is stuck, so the live path cannot be waiting on it."""
    rollout.create("prod", "churn@champion", registry.ws)
    rollout.shadow("prod", registry.versions["gated"], registry.ws)
    server = serve(deployment="prod")
    answers = _send(server, 500)  # the gate is still closed: the shadow is stuck
    assert all(a["model_version"] == registry.versions["champion"] for a in answers)
    assert not registry.gate.exists()
    registry.gate.touch()
    figures = wait_for(lambda: [s for s in rollout.live_figures("prod", registry.ws)
                                if s.role == "shadow" and s.errors], what="shadow errors")
    assert figures[0].errors == figures[0].requests
    live = [s for s in rollout.live_figures("prod", registry.ws) if s.role == "stable"]
    assert live[0].errors == 0


def test_changes_reach_a_running_server_without_a_restart(
        serve: Callable[..., Server], registry: Registry) -> None:
    ws = registry.ws
    champion, challenger = registry.versions["champion"], registry.versions["challenger"]
    rollout.create("prod", "churn@champion", ws)
    server = serve(deployment="prod")

    def answered_by() -> set[str]:
        target = ws.store.deployment_revision("prod")
        wait_for(lambda: server.client.get("/health").json()["revision"] == target,
                 what=f"the server to reach revision {target}")
        assert server.client.get("/health").json()["last_error"] is None
        return {a["model_version"] for a in _send(server, 200)}

    assert answered_by() == {champion}
    rollout.canary("prod", "churn@challenger", 50, ws)
    assert answered_by() == {champion, challenger}
    rollout.promote("prod", ws=ws)
    assert answered_by() == {challenger}
    rollout.rollback("prod", ws)
    assert answered_by() == {champion}
    rollout.ab("prod", "champion=50,challenger=50", ws)
    assert answered_by() == {champion, challenger}
    rollout.promote("prod", ws=ws, arm="challenger")
    assert answered_by() == {challenger}
    assert server.runtime.pool.loaded == [challenger]  # the champion's memory is freed


def test_a_version_that_fails_to_load_leaves_the_previous_one_serving(
        serve: Callable[..., Server], registry: Registry) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    # Without --trust the pickled flaky model cannot load.
    server = serve(deployment="prod", options=ServeOptions(poll_seconds=0.1,
                                                           stats_seconds=0.2))
    rollout.canary("prod", registry.versions["flaky"], 50, registry.ws)
    health = wait_for(lambda: (h := server.client.get("/health").json())["load_failures"]
                      and h, what="the load failure")
    assert health["load_failures"][0]["version"] == registry.versions["flaky"]
    assert "trust" in health["load_failures"][0]["reason"]
    answers = _send(server, 200)
    assert {a["model_version"] for a in answers} == {registry.versions["champion"]}
    assert server.client.get("/ready").status_code == 200


def test_stepwise_promotion_then_rollback_to_the_old_stable(registry: Registry) -> None:
    ws = registry.ws
    champion, challenger = registry.versions["champion"], registry.versions["challenger"]
    rollout.create("prod", "churn@champion", ws)
    rollout.canary("prod", "churn@challenger", 10, ws)
    _, spec = rollout.get("prod", ws)
    since = spec.canary_since
    rollout.promote("prod", 40, ws)
    _, spec = rollout.get("prod", ws)
    assert [(r.version, r.weight, r.role) for r in spec.routes] == \
        [(champion, 50.0, "stable"), (challenger, 50.0, "canary")]
    assert spec.canary_since == since  # still judged since the canary started
    rollout.promote("prod", 60, ws)
    _, spec = rollout.get("prod", ws)
    assert [(r.version, r.weight, r.role) for r in spec.routes] == [(challenger, 100.0,
                                                                     "stable")]
    rollout.rollback("prod", ws, reason="complaints")
    _, spec = rollout.get("prod", ws)
    assert [r.version for r in spec.routes] == [champion]
    actions = [(e.action, e.revision) for e in rollout.history("prod", ws)]
    assert actions == [("create", 1), ("canary", 2), ("promote", 3), ("promote", 4),
                       ("rollback", 5)]
    assert rollout.history("prod", ws)[-1].reason == "complaints"


def test_deployment_mistakes_are_refused_and_change_nothing(registry: Registry) -> None:
    ws = registry.ws
    rollout.create("prod", "churn@champion", ws)
    before = ws.store.get_deployment("prod")
    for action, message in [
        (lambda: rollout.canary("prod", "churn@champion", 10, ws), "already the stable"),
        (lambda: rollout.canary("prod", "churn@challenger", 100, ws), "between 0 and 100"),
        (lambda: rollout.canary("prod", "churn@nobody", 10, ws), "no alias 'nobody'"),
        (lambda: rollout.promote("prod", ws=ws), "no canary"),
        (lambda: rollout.rollback("prod", ws), "nothing to roll back"),
        (lambda: rollout.ab("prod", "champion=70,challenger=20", ws), "add up to 90"),
        (lambda: rollout.create("prod", "churn@champion", ws), "already exists"),
        (lambda: rollout.create("bad name", "churn@champion", ws), "bad deployment name"),
        (lambda: rollout.shadow("prod", None, ws, off=True), "no such shadow"),
    ]:
        with pytest.raises(keel.KeelError, match=message):
            action()
    assert ws.store.get_deployment("prod") == before
    reset = rollout.create("prod", "churn@challenger", ws, replace=True)
    assert reset.revision == before.revision + 1
    assert rollout.history("prod", ws)[-1].action == "reset"
    with pytest.raises(InvalidInput):
        rollout.create("other", "churn@champion", ws, sample=1.5)


def test_the_deploy_commands(registry: Registry) -> None:
    created = run_keel("deploy", "create", "prod", "--model", "churn@champion")
    assert created.returncode == 0, created.stderr
    assert "100% stable" in created.stdout
    canary = run_keel("deploy", "canary", "prod", "--model", "churn@challenger", "--percent",
                      "10", "--max-error-rate", "0.02", "--min-requests", "50")
    assert canary.returncode == 0 and "10% canary" in canary.stdout
    status = run_keel("deploy", "status", "prod")
    assert status.returncode == 0
    assert registry.versions["challenger"] in status.stdout and "canary" in status.stdout
    as_json = run_keel("deploy", "status", "prod", "--json")
    import json

    limits = json.loads(as_json.stdout)["deployment"]["spec"]["limits"]
    assert limits["max_error_rate"] == 0.02 and limits["min_requests"] == 50
    assert run_keel("deploy", "shadow", "prod", "--model", "churn/5").returncode == 0
    assert run_keel("deploy", "promote", "prod", "--step", "40").returncode == 0
    assert "50% canary" in run_keel("deploy", "list").stdout
    assert run_keel("deploy", "rollback", "prod").returncode == 0
    history = run_keel("deploy", "history", "prod").stdout
    for action in ("create", "canary", "shadow", "promote", "rollback"):
        assert action in history
    wrong = run_keel("deploy", "canary", "prod", "--model", "churn@challenger",
                     "--percent", "150")
    assert wrong.returncode == 1 and "between 0 and 100" in wrong.stderr
    missing = run_keel("deploy", "status", "nope")
    assert missing.returncode == 1 and "no deployment 'nope'" in missing.stderr
