"""The traffic policy, the canary guard and request bodies: pure functions, tested
without a server."""

from __future__ import annotations

import random

import pytest

from keel.entities import VersionStats
from keel.errors import InvalidInput
from keel.serving.guard import breach
from keel.serving.payload import BadRequest, parse_body
from keel.serving.rollout import parse_split
from keel.serving.spec import CanaryLimits, DeploymentSpec
from keel.serving.split import Route, TrafficSplit, bucket
from keel.serving.stats import EDGES_MS, LiveStats, bucket_of, percentile


def test_a_split_sends_each_version_its_share() -> None:
    split = TrafficSplit((Route("churn/1", 90), Route("churn/2", 10, "canary")))
    draws = random.Random(7)
    chosen = [split.choose(None, draws.random()).version for _ in range(20_000)]
    share = chosen.count("churn/2") / len(chosen)
    assert 0.09 < share < 0.11


def test_sticky_keys_always_reach_the_same_version_and_spread_by_weight() -> None:
    split = TrafficSplit((Route("churn/1", 50, "ab"), Route("churn/2", 50, "ab")))
    first = {f"user-{i}": split.choose(f"user-{i}", 0.0).version for i in range(2000)}
    again = {key: split.choose(key, random.random()).version for key in first}
    assert first == again
    assert 0.45 < list(first.values()).count("churn/2") / len(first) < 0.55
    assert bucket("user-1") == bucket("user-1") and 0 <= bucket("user-1") < 1


def test_a_split_refuses_weights_that_cannot_route() -> None:
    with pytest.raises(InvalidInput, match="add up to 0"):
        TrafficSplit((Route("churn/1", 0),))
    with pytest.raises(InvalidInput, match="negative"):
        TrafficSplit((Route("churn/1", 110), Route("churn/2", -10)))


@pytest.mark.parametrize(("text", "message"), [
    ("champion=50", "at least two arms"),
    ("champion=60,challenger=50", "add up to 110"),
    ("champion=fifty,challenger=50", "bad weight"),
    ("champion,challenger=50", "bad --split part"),
])
def test_bad_splits_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_split(text)


def test_a_spec_round_trips_through_its_stored_form() -> None:
    spec = DeploymentSpec("churn", (Route("churn/1", 90, "stable", "champion"),
                                    Route("churn/2", 10, "canary", "challenger")),
                          (Route("churn/3", 0, "shadow"),), "X-User-Id",
                          CanaryLimits(0.02, 1.5, 50, 0.2), 123, 0.5)
    assert DeploymentSpec.from_dict(spec.to_dict()) == spec
    assert spec.canary.version == "churn/2" and spec.stable.version == "churn/1"


def _stats(version: str, role: str, requests: int, errors: int, latency_ms: float,
           predictions: dict[str, int] | None = None) -> VersionStats:
    live = LiveStats()
    for i in range(requests):
        live.observe(version, role, latency_ms, error=i < errors)
    got = live.drain()[0]
    return VersionStats(version, role, got.requests, got.errors, got.latency,
                        predictions or {})


def test_the_guard_waits_for_enough_requests_then_judges_errors() -> None:
    limits = CanaryLimits(max_error_rate=0.01, min_requests=100)
    stable = _stats("churn/1", "stable", 1000, 2, 1.0)
    assert breach(stable, _stats("churn/2", "canary", 99, 50, 1.0), limits) is None
    reason, figures = breach(stable, _stats("churn/2", "canary", 100, 20, 1.0), limits)
    assert "error rate 20.00%" in reason
    assert figures["canary"]["errors"] == 20 and figures["stable"]["requests"] == 1000
    assert breach(stable, _stats("churn/2", "canary", 200, 1, 1.0), limits) is None


def test_the_guard_judges_p99_latency_and_prediction_shift() -> None:
    stable = _stats("churn/1", "stable", 500, 0, 10.0, {"0": 250, "1": 250})
    slow = _stats("churn/2", "canary", 200, 0, 40.0)
    reason, _ = breach(stable, slow, CanaryLimits(min_requests=100, max_p99_ratio=2.0))
    assert "p90 latency" in reason  # 200 requests: p99 would be one outlier
    one_pause = _stats("churn/2", "canary", 200, 0, 10.0)
    merged = [a + b for a, b in zip(one_pause.latency, _stats("c", "canary", 2, 0,
                                                                900.0).latency, strict=True)]
    paused = VersionStats("churn/2", "canary", 202, 0, merged, {})
    assert breach(stable, paused, CanaryLimits(min_requests=100)) is None
    shifted = _stats("churn/2", "canary", 200, 0, 10.0, {"1": 200})
    reason, figures = breach(stable, shifted, CanaryLimits(min_requests=100,
                                                           max_prediction_shift=0.3))
    assert "distributed differently" in reason and figures["prediction_shift"] == 0.5
    same = _stats("churn/2", "canary", 200, 0, 10.0, {"0": 95, "1": 105})
    assert breach(stable, same, CanaryLimits(min_requests=100,
                                             max_prediction_shift=0.3)) is None


def test_latency_percentiles_come_from_the_shared_buckets() -> None:
    counts = [0] * (len(EDGES_MS) + 1)
    for value in [1.0] * 98 + [50.0] * 2:
        counts[bucket_of(value)] += 1
    assert 1.0 <= percentile(counts, 0.5) < 1.25
    assert 50.0 <= percentile(counts, 0.99) < 62.5
    assert percentile([0] * len(counts), 0.5) is None


COLUMNS = ["age", "plan"]


@pytest.mark.parametrize("payload", [
    b'[{"age": 31, "plan": "pro"}, {"age": 40, "plan": "free"}]',
    b'{"columns": ["age", "plan"], "data": [[31, "pro"], [40, "free"]]}',
    b'{"dataframe_split": {"columns": ["age", "plan"], "data": [[31, "pro"], [40, "free"]]}}',
    b'{"dataframe_records": [{"age": 31, "plan": "pro"}, {"age": 40, "plan": "free"}]}',
    b'{"instances": [{"age": 31, "plan": "pro"}, {"age": 40, "plan": "free"}]}',
    b'{"inputs": {"age": [31, 40], "plan": ["pro", "free"]}}',
])
def test_every_accepted_body_shape_gives_the_same_rows(payload: bytes) -> None:
    frame = parse_body(payload, "application/json", 10_000).frame
    assert list(frame.columns) == COLUMNS
    assert frame.to_dict(orient="records") == [{"age": 31, "plan": "pro"},
                                               {"age": 40, "plan": "free"}]


def test_csv_bodies_are_read_with_their_header() -> None:
    frame = parse_body(b"age,plan\n31,pro\n", "text/csv", 10_000).frame
    assert frame.to_dict(orient="records") == [{"age": 31, "plan": "pro"}]


@pytest.mark.parametrize(("payload", "content_type", "status", "message"), [
    (b'{"columns": ["a"', "application/json", 400, "not valid JSON"),
    (b"", "application/json", 400, "empty"),
    (b"a=1", "application/x-www-form-urlencoded", 415, "not supported"),
    (b"x" * 2000, "application/json", 413, "the limit is 1,000"),
    (b'{"columns": ["a", "b"], "data": [[1]]}', "application/json", 422, "row 0"),
    (b'"hello"', "application/json", 422, "expected rows"),
    (b"[1, 2]", "application/json", 422, "object of column"),
    (b'{"instances": [[1, 2], [3]]}', "application/json", 422, "different lengths"),
    (b'{"inputs": [], "instances": []}', "application/json", 422, "both"),
])
def test_bad_bodies_say_what_is_wrong(payload: bytes, content_type: str, status: int,
                                      message: str) -> None:
    with pytest.raises(BadRequest, match=message) as caught:
        parse_body(payload, content_type, 1000)
    assert caught.value.status == status
