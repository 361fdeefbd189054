"""The inference log: every prediction recorded off the request path, read back as a
DataFrame, joined with feedback, and walked back to its model, run and data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import keel
from keel.errors import InvalidInput
from keel.serving import rollout
from keel.serving.inference_log import Entries, Entry, InferenceLogWriter
from keel.serving.lineage import request_lineage, request_time
from keel.serving.payload import Batch
from keel.serving.runtime import ServeOptions
from tests.conftest import run_keel
from tests.serving.conftest import FEATURES, Registry, Server, rows, wait_for


def _read_when(ws: object, deployment: str, count: int) -> pd.DataFrame:
    def ready() -> list[pd.DataFrame] | None:
        table = keel.inference_log(deployment, ws).read()
        return [table] if len(table) >= count else None

    return wait_for(ready, what=f"{count} logged rows")[0]


def test_every_prediction_is_logged_with_its_inputs_and_version(
        serve: Callable[..., Server], registry: Registry) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    server = serve(deployment="prod")
    frames = [rows(3, seed=i) for i in range(5)]
    answers = [server.predict(f).json() for f in frames]
    table = _read_when(registry.ws, "prod", 15)
    assert len(table) == 15
    assert {"request_id", "time", "deployment", "model_version", "role", "latency_ms",
            "prediction", "label", *FEATURES} <= set(table.columns)
    assert set(table["deployment"]) == {"prod"} and set(table["role"]) == {"live"}
    assert str(table["time"].dtype).startswith("datetime64") and table["time"].dt.tz
    for frame, answer in zip(frames, answers, strict=True):
        mine = table[table["request_id"] == answer["request_id"]].sort_values("row")
        assert mine["prediction"].tolist() == answer["predictions"]
        assert mine[FEATURES].to_numpy().tolist() == frame.to_numpy().tolist()
        assert set(mine["model_version"]) == {answer["model_version"]}
    assert (table["latency_ms"] > 0).all()
    assert table["label"].isna().all()


def test_feedback_labels_join_their_predictions_by_request_id(
        serve: Callable[..., Server], registry: Registry) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    server = serve(deployment="prod")
    single = server.predict(rows(1, seed=1)).json()
    batch = server.predict(rows(3, seed=2)).json()
    unlabelled = server.predict(rows(1, seed=3)).json()
    assert server.client.post("/feedback", json={"request_id": single["request_id"],
                                                 "label": 1}).json() == {"stored": 1}
    server.client.post("/feedback", json=[{"request_id": batch["request_id"],
                                           "label": [0, 1, 1]}])
    # A corrected label replaces the first one.
    server.client.post("/feedback", json={"request_id": single["request_id"], "label": 0})
    table = _read_when(registry.ws, "prod", 5).set_index(["request_id", "row"])
    assert table.loc[(single["request_id"], 0), "label"] == 0
    assert [table.loc[(batch["request_id"], i), "label"] for i in range(3)] == [0, 1, 1]
    assert table.loc[(unlabelled["request_id"], 0), "label"] is None


def test_reading_a_time_window_and_a_role(registry: Registry) -> None:
    ws = registry.ws
    writer = InferenceLogWriter(ws, "batch", "test", flush_seconds=0.05)
    now = datetime.now(UTC)
    hours_ago = int((now - timedelta(hours=3)).timestamp() * 1000)
    just_now = int(now.timestamp() * 1000)
    frame = rows(2)
    writer.submit(Entry("old", hours_ago, "churn/1", "live", 1.0, Batch(frame), [0, 1]))
    writer.submit(Entry("new", just_now, "churn/1", "live", 1.0, Batch(frame), [1, 1]))
    writer.submit(Entry("new", just_now, "churn/2", "shadow", 2.0, Batch(frame), [0, 0]))
    writer.close()
    log = keel.inference_log("batch", ws)
    assert len(log.read()) == 6
    assert set(log.read(start="1h")["request_id"]) == {"new"}
    assert set(log.read(end=now - timedelta(hours=1))["request_id"]) == {"old"}
    assert set(log.read(start=hours_ago, end=hours_ago)["request_id"]) == {"old"}
    assert set(log.read(role="shadow")["model_version"]) == {"churn/2"}
    assert keel.inference_log("nobody", ws).read().empty
    with pytest.raises(InvalidInput, match="is not a time"):
        log.read(start="yesterday-ish")


def test_a_batch_of_requests_logs_each_request_under_its_own_id(registry: Registry) -> None:
    """The shadow mirror logs a whole model call as one ``Entries``: each request
    still gets its own rows, numbered from 0, its time and its latency."""
    ws = registry.ws
    writer = InferenceLogWriter(ws, "mixed", "test", flush_seconds=0.05)
    one, three = rows(1, seed=1), rows(3, seed=2)
    writer.submit(Entry("live-1", 1_000, "churn/1", "live", 1.5, Batch(three), [1, 0, 1]))
    writer.submit(Entries(["s-a", "s-b"], [2_000, 3_000], "churn/2", "shadow", [0.25, 0.75],
                          [1, 3], Batch(pd.concat([one, three], ignore_index=True)),
                          [0, 1, 1, 0]))
    writer.close()
    table = keel.inference_log("mixed", ws).read()
    assert writer.counters.written == 7 and len(table) == 7
    shadow_b = table[table["request_id"] == "s-b"].sort_values("row")
    assert shadow_b["row"].tolist() == [0, 1, 2]
    assert shadow_b["prediction"].tolist() == [1, 1, 0]
    assert shadow_b[FEATURES].to_numpy().tolist() == three.to_numpy().tolist()
    assert set(shadow_b["latency_ms"]) == {0.75} and set(shadow_b["role"]) == {"shadow"}
    shadow_a = table[table["request_id"] == "s-a"]
    assert shadow_a[FEATURES].to_numpy().tolist() == one.to_numpy().tolist()
    assert shadow_a["time"].iloc[0] == pd.Timestamp(2_000, unit="ms", tz="UTC")
    live = table[table["request_id"] == "live-1"].sort_values("row")
    assert live["row"].tolist() == [0, 1, 2] and set(live["model_version"]) == {"churn/1"}


def test_a_backlog_is_written_in_segments_of_bounded_size(registry: Registry) -> None:
    """A writer that fell behind takes everything waiting at once; it still writes
    segments of segment_rows at most (one huge table would hold the interpreter
    the requests need for seconds)."""
    writer = InferenceLogWriter(registry.ws, "backlog", "test", segment_rows=50,
                                flush_seconds=60)
    frame = rows(1)
    for i in range(500):  # far faster than the writer's 50 ms turn
        writer.submit(Entry(f"r{i}", i, "churn/1", "live", 1.0, Batch(frame), [1]))
    writer.close()
    segments = registry.ws.store.inference_segments("backlog", None, None)
    assert sum(count for _, _, count in segments) == 500 == writer.counters.written
    assert len(segments) >= 10 and max(count for _, _, count in segments) <= 50


def test_a_segments_time_range_covers_its_shadow_rows(registry: Registry) -> None:
    """Shadow answers are logged after the live requests they mirror, with the
    mirrored requests' (earlier) times: a time window still finds them."""
    writer = InferenceLogWriter(registry.ws, "late", "test", flush_seconds=60)
    writer.submit(Entry("live", 5_000, "churn/1", "live", 1.0, Batch(rows(1)), [1]))
    writer.submit(Entries(["early"], [1_000], "churn/2", "shadow", [1.0], [1],
                          Batch(rows(1)), [0]))
    writer.submit(Entry("later", 6_000, "churn/1", "live", 1.0, Batch(rows(1)), [1]))
    writer.close()
    log = keel.inference_log("late", registry.ws)
    assert log.read(start=500, end=1_500)["request_id"].tolist() == ["early"]
    assert log.read(start=5_500, end=6_500)["request_id"].tolist() == ["later"]


def test_a_store_outage_counts_drops_and_never_fails_a_prediction(
        serve: Callable[..., Server], registry: Registry) -> None:
    server = serve(model="models:/churn@champion", options=ServeOptions(
        log_flush_seconds=0.1, poll_seconds=0.1, stats_seconds=0.2))
    server.runtime.ws.blobs.root = "/proc/no-such-place"  # every segment write now fails
    for _ in range(20):
        assert server.predict(rows(2)).status_code == 200
    counters = wait_for(lambda: (c := server.runtime.log.counters).dropped >= 40 and c,
                        what="drops to be counted")
    assert counters.written == 0 and counters.last_error
    health = server.client.get("/health").json()
    assert health["inference_log"]["dropped"] >= 40


def test_a_full_queue_drops_instead_of_waiting(registry: Registry) -> None:
    writer = InferenceLogWriter(registry.ws, "tiny", "test", max_queue=1,
                                flush_seconds=60)
    frame = rows(1)
    for i in range(200):
        writer.submit(Entry(str(i), 0, "churn/1", "live", 1.0, Batch(frame), [1]))
    assert writer.counters.dropped > 0
    writer.close()
    assert writer.counters.written + writer.counters.dropped == 200


def test_lineage_walks_from_a_request_to_the_model_run_and_data(
        serve: Callable[..., Server], registry: Registry) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    server = serve(deployment="prod")
    answer = server.predict(rows(2, seed=9)).json()
    request_id = answer["request_id"]
    assert request_time(request_id) is not None  # server ids carry their time
    server.client.post("/feedback", json={"request_id": request_id, "label": [1, 0]})
    found = wait_for(lambda: _lineage(request_id, registry), what="the request in the log")
    assert found["prediction"]["model_version"] == registry.versions["champion"]
    assert found["prediction"]["predictions"] == answer["predictions"]
    assert found["prediction"]["label"] == [1, 0]
    assert found["model"]["name"] == "churn"
    assert found["run"]["experiment"] == "serving"
    shown = run_keel("lineage", request_id)
    assert shown.returncode == 0, shown.stderr
    assert f"prediction {request_id}" in shown.stdout
    assert registry.versions["champion"] in shown.stdout and "run " in shown.stdout
    unknown = run_keel("lineage", "0" * 32)
    assert unknown.returncode == 1 and "request id" in unknown.stderr


def _lineage(request_id: str, registry: Registry) -> dict | None:
    try:
        return request_lineage(request_id, registry.ws)
    except keel.KeelError:
        return None


def test_deploy_log_shows_recent_predictions(serve: Callable[..., Server],
                                             registry: Registry) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    server = serve(deployment="prod")
    answers = [server.predict(rows(1, seed=i)).json() for i in range(3)]
    _read_when(registry.ws, "prod", 3)
    shown = run_keel("deploy", "log", "prod", "--since", "1h")
    assert shown.returncode == 0, shown.stderr
    for answer in answers:
        assert answer["request_id"] in shown.stdout
    assert "3 of 3 row(s)" in shown.stdout
    assert run_keel("deploy", "log", "prod", "--role", "boss").returncode == 1
