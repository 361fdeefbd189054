"""Live figures of a deployment are merged as they age, and every sum since a
change of the deployment stays exact (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

import keel.store.deployment_store as deployment_store
from keel.entities import VersionStats
from keel.workspace import current_workspace

HOUR = 3_600_000
T0 = 500_000 * HOUR  # an hour boundary, far from now


def test_compaction_keeps_every_sum_since_a_change(backend: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = current_workspace().store
    clock = [T0]
    monkeypatch.setattr(deployment_store, "now_ms", lambda: clock[0])
    store.create_deployment("prod", {"routes": ["a"]}, "ann")

    def flush(version: str, role: str, requests: int, worker: str) -> None:
        latency = [0] * 8
        latency[requests % 8] = requests
        store.add_deployment_stats("prod", worker, [
            VersionStats(version, role, requests, requests % 3, latency,
                         {"yes": requests, str(requests % 2): 1})])

    canary_at = T0 + HOUR + 30 * 60_000  # a change in the middle of an hour
    for minute in range(0, 180, 5):
        clock[0] = T0 + minute * 60_000
        if clock[0] == canary_at:
            store.update_deployment("prod", {"routes": ["a", "b"]}, 1, "canary", "ann")
        for worker in ("w1", "w2"):
            flush("a", "stable", 10 + minute, worker)
            if clock[0] >= canary_at:
                flush("b", "canary", 1 + minute % 7, worker)
    sinces = [0, T0 + HOUR, canary_at - 3, canary_at, T0 + 2 * HOUR + 55 * 60_000]
    before = {since: store.deployment_stats("prod", since) for since in sinces}
    assert [v.version for v in before[canary_at]] == ["a", "b"]

    clock[0] = T0 + 3 * HOUR
    removed = store.compact_deployment_stats("prod", T0 + 2 * HOUR + 30 * 60_000)
    # 2 workers x 30 flushes of "a" plus 2 x 12 of "b" became 3 + 2 hourly rows
    # ("a" in hours 0, 1 before the canary, 1 after it, 2; "b" in hours 1 and 2).
    assert removed == (60 + 24) - (4 + 2)
    # Since the start, an hour, the change (or a guard's canary start, which
    # precedes its event by milliseconds), and rows not yet merged: exact.
    for since in sinces:
        assert store.deployment_stats("prod", since) == before[since], since
    # Merging again finds nothing new; a deployment without figures is left alone.
    assert store.compact_deployment_stats("prod", T0 + 2 * HOUR + 30 * 60_000) == 0
    assert store.compact_deployment_stats("other", T0 + 3 * HOUR) == 0
