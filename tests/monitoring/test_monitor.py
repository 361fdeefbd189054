"""Monitoring a served deployment: drift of its live traffic against the
training data, prediction drift, performance from feedback, stored records,
alerts delivered to a webhook (and one that times out)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import keel.data
from keel.errors import InvalidInput, NotFound
from keel.monitoring import monitor
from keel.serving import rollout
from tests.serving.conftest import Registry, Server, rows, wait_for


class Hook:
    """A webhook receiver on 127.0.0.1 that records what it is sent, or hangs."""

    def __init__(self, hang: float = 0.0) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hang:
                    time.sleep(hang)
                outer.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Callable[..., Hook]]:
    made: list[Hook] = []

    def make(hang: float = 0.0) -> Hook:
        made.append(Hook(hang))
        return made[-1]

    yield make
    for h in made:
        h.close()


def training_data(registry: Registry) -> str:
    """The rows the registry's models were fitted on, as a dataset version."""
    folder = registry.root / "train"
    folder.mkdir()
    frame = rows(500)
    frame.assign(y=(frame.f0 + frame.f1 > 0).astype(int)).to_parquet(folder / "t.parquet")
    return keel.data.add(folder, "train", ws=registry.ws).version.ref


def traffic(server: Server, frame: pd.DataFrame, labels: bool = False) -> list[str]:
    ids = []
    for start in range(0, len(frame), 50):
        chunk = frame.iloc[start:start + 50]
        answer = server.predict(chunk).json()
        ids.append(answer["request_id"])
        if labels:
            truth = (chunk.f0 + chunk.f1 > 0).astype(int).tolist()
            server.client.post("/feedback", json={"request_id": answer["request_id"],
                                                  "label": truth})
    return ids


def logged(registry: Registry, count: int) -> None:
    wait_for(lambda: len(keel.inference_log("prod", ws=registry.ws).read(labels=False))
             >= count, what=f"{count} logged rows")


def test_drift_of_live_traffic_is_found_stored_and_alerted(
        registry: Registry, serve: Callable[..., Server], hook: Callable[..., Hook]) -> None:
    reference = training_data(registry)
    rollout.create("prod", "churn@champion", registry.ws)
    server = serve(deployment="prod")
    shifted = rows(600, seed=3)
    shifted["f0"] += 1.5  # a sensor reads high: f0 moves, and the predictions with it
    traffic(server, shifted, labels=True)
    logged(registry, 600)
    receiver = hook()
    result = monitor.run(deployment="prod", window="1h", reference=reference,
                         alerts=["drift_share > 0.2", "performance.accuracy < 0.5"],
                         webhook=receiver.url, ws=registry.ws)
    assert result.drift.feature("f0").drifted
    assert not result.drift.feature("f3").drifted
    assert result.drift.feature("prediction").drifted  # more positives than in training
    assert result.figures["drift_share"] == pytest.approx(result.drift.share_drifted)
    accuracy = next(p for p in result.performance if p["metric"] == "accuracy")
    assert accuracy["version"] == registry.versions["champion"] and accuracy["n"] == 600
    assert accuracy["low"] <= accuracy["value"] <= accuracy["high"]
    assert accuracy["value"] > 0.8  # the model still fits the labels
    stored = registry.ws.store.list_monitor_records("deployment:prod")
    assert [r.id for r in stored] == [result.record.id]
    assert stored[0].result["figures"]["drift.f0"] == pytest.approx(
        result.drift.feature("f0").statistic)
    # One rule fired (drift), the other did not (accuracy is fine).
    assert [a.rule for a in result.alerts] == ["drift_share > 0.2"]
    assert result.alerts[0].delivery == "delivered (204)"
    assert receiver.received[0]["figure"] == "drift_share"
    assert receiver.received[0]["record"] == result.record.id


def test_a_webhook_that_hangs_is_recorded_and_the_pass_finishes(
        registry: Registry, serve: Callable[..., Server], hook: Callable[..., Hook]) -> None:
    (registry.root / "keel.toml").write_text(
        '[monitor.prod]\nalerts = ["rows >= 1"]\nwebhook_timeout = 0.5\n')
    rollout.create("prod", "churn@champion", registry.ws)
    server = serve(deployment="prod")
    traffic(server, rows(100, seed=4))
    logged(registry, 100)
    slow = hook(hang=5.0)
    started = time.monotonic()
    result = monitor.run(deployment="prod", reference=training_data(registry),
                         webhook=slow.url, ws=registry.ws)
    assert time.monotonic() - started < 4.5
    assert result.alerts[0].delivery == "failed: the webhook did not answer within 0.5 s"
    assert registry.ws.store.list_alerts("deployment:prod")[0].delivery.startswith("failed")


def test_same_distribution_traffic_is_quiet(registry: Registry,
                                           serve: Callable[..., Server]) -> None:
    reference = training_data(registry)
    rollout.create("prod", "churn@champion", registry.ws)
    server = serve(deployment="prod")
    traffic(server, rows(600, seed=21))
    logged(registry, 600)
    result = monitor.run(deployment="prod", reference=reference, ws=registry.ws)
    assert result.drift.share_drifted <= 0.2
    assert not result.drift.drifted


def test_bad_monitoring_requests_say_what_to_do(registry: Registry) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    with pytest.raises(InvalidInput, match="logged no live predictions") as caught:
        monitor.run(deployment="prod", ws=registry.ws)
    assert "--window" in (caught.value.hint or "")
    with pytest.raises(InvalidInput, match="nothing to monitor"):
        monitor.run(ws=registry.ws)
    with pytest.raises(InvalidInput, match="bad rule"):
        monitor.run(deployment="prod", alerts=["drift_share is high"], ws=registry.ws)


def test_without_recorded_training_data_the_default_reference_is_explained(
        registry: Registry, serve: Callable[..., Server]) -> None:
    rollout.create("prod", "churn@champion", registry.ws)
    server = serve(deployment="prod")
    traffic(server, rows(50, seed=5))
    logged(registry, 50)
    with pytest.raises(NotFound, match="no training data is recorded") as caught:
        monitor.run(deployment="prod", ws=registry.ws)
    assert "--reference" in (caught.value.hint or "")


def test_files_compare_from_the_command_line_and_records_list(tmp_path: Path) -> None:
    from tests.conftest import run_keel

    rows(2000, seed=1).to_parquet(tmp_path / "ref.parquet")
    rows(2000, seed=2).assign(f1=lambda f: f.f1 * 2).to_parquet(tmp_path / "cur.parquet")
    run_keel("init", ".")
    out = run_keel("monitor", "run", "--reference", "ref.parquet", "--current", "cur.parquet",
                   "--json")
    found = json.loads(out.stdout)
    drifted = {f["feature"] for f in found["features"] if f["drifted"]}
    assert drifted == {"f1"}
    assert found["record"] is not None
    table = run_keel("monitor", "run", "-r", "ref.parquet", "-c", "cur.parquet",
                     "--method", "f1=psi", "--method", "f0=wasserstein").stdout
    assert "psi" in table and "wasserstein" in table and "DRIFT" in table
    listed = run_keel("monitor", "history").stdout
    assert "ref.parquet -> cur.parquet" in listed
    bad = run_keel("monitor", "run", "-r", "ref.parquet", "-c", "nope.parquet")
    assert bad.returncode == 1 and "current file nope.parquet does not exist" in bad.stderr


def test_an_earlier_window_of_the_log_is_a_reference(registry: Registry,
                                                    serve: Callable[..., Server]) -> None:
    from datetime import UTC, datetime

    def now() -> str:
        return datetime.now(UTC).isoformat(timespec="milliseconds")

    rollout.create("prod", "churn@champion", registry.ws)
    server = serve(deployment="prod")
    before = now()
    traffic(server, rows(400, seed=31))
    logged(registry, 400)
    time.sleep(0.05)
    middle = now()
    moved = rows(400, seed=32)
    moved["f2"] = moved["f2"] * 3
    traffic(server, moved)
    logged(registry, 800)
    result = monitor.run(deployment="prod", window=middle, reference_window=f"{before}..{middle}",
                         ws=registry.ws)
    assert result.drift.rows_reference == 400 and result.drift.rows_current == 400
    assert result.drift.drifted_features == ["f2"]
    assert "live traffic" in result.reference
    with pytest.raises(InvalidInput, match="bad reference window"):
        monitor.run(deployment="prod", reference_window="yesterday", ws=registry.ws)


def test_watch_and_report_from_the_command_line(registry: Registry,
                                                serve: Callable[..., Server]) -> None:
    from tests.conftest import run_keel

    reference = training_data(registry)
    rollout.create("prod", "churn@champion", registry.ws)
    server = serve(deployment="prod")
    traffic(server, rows(200, seed=41), labels=True)
    logged(registry, 200)
    watched = run_keel("monitor", "watch", "-d", "prod", "--every", "0.1s", "--window", "1h",
                       "--count", "2", "-r", reference, "-o", "watch.html")
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.count("deployment:prod: share drifted") == 2
    assert (registry.root / "watch.html").stat().st_size > 10_000
    made = run_keel("monitor", "report", "-d", "prod", "-r", reference, "-o", "out/report.html")
    assert made.returncode == 0, made.stderr
    page = (registry.root / "out" / "report.html").read_text()
    assert "deployment:prod" in page and "f0" in page
    history = run_keel("monitor", "history", "-d", "prod", "--json")
    assert len(json.loads(history.stdout)) == 3  # two watch passes and the report's
