"""Monitoring records, alerts and automation chains on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest

from keel.errors import NotFound
from keel.workspace import current_workspace


def test_records_alerts_and_chains_round_trip(backend: str) -> None:
    store = current_workspace().store
    first = store.add_monitor_record("deployment:prod", "train@1", "prod, last 1h", 0.25, False,
                                     {"figures": {"drift.x": math.nan, "rows": 10}}, 1, 2)
    second = store.add_monitor_record("a -> b", "a", "b", 0.75, True, {})
    assert [r.id for r in store.list_monitor_records("deployment:prod")] == [first.id]
    assert [r.id for r in store.list_monitor_records()] == [first.id, second.id]
    # NaN is not JSON: it is stored as null rather than refused or corrupted.
    assert store.get_monitor_record(first.id).result["figures"] == {"drift.x": None, "rows": 10}
    assert (first.window_start, first.window_end, second.drifted) == (1, 2, True)
    alert = store.add_alert("deployment:prod", first.id, "drift_share > 0.2", 0.25, "high",
                            "delivered (204)")
    assert store.list_alerts("deployment:prod") == [alert]
    trigger = store.add_automation_action("prod", "trigger", "ok", "drift", {"drift_share": 0.3})
    assert trigger.chain == trigger.id  # a trigger starts its own chain
    retrain = store.add_automation_action("prod", "retrain", "ok", "trained",
                                          links={"model_version": "churn/2"},
                                          chain=trigger.chain)
    store.add_automation_action("staging", "trigger", "ok", "schedule")
    chain = store.list_automation_actions("prod", chain=trigger.id)
    assert [(a.action, a.links) for a in chain] == [("trigger", {}),
                                                    ("retrain", {"model_version": "churn/2"})]
    assert retrain.chain == trigger.id
    with pytest.raises(NotFound, match="no monitoring record 999"):
        store.get_monitor_record(999)
