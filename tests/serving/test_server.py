"""The model server over HTTP on 127.0.0.1: answers, request ids, errors, health."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from keel.serving.runtime import ServeOptions
from tests.serving.conftest import Registry, Server, body, rows, wait_for


def test_a_model_answers_with_its_version_and_a_request_id(serve: Callable[..., Server],
                                                           registry: Registry) -> None:
    server = serve(model="models:/churn@champion")
    frame = rows(3)
    response = server.predict(frame)
    assert response.status_code == 200
    answer = response.json()
    assert answer["model_version"] == registry.versions["champion"]
    assert len(answer["predictions"]) == 3 and set(answer["predictions"]) <= {0, 1}
    assert response.headers["x-request-id"] == answer["request_id"]
    expected = (frame.f0 + frame.f1 > 0).astype(int).tolist()
    assert sum(a == b for a, b in zip(answer["predictions"], expected, strict=True)) >= 2


def test_every_mlflow_body_shape_is_answered_alike(serve: Callable[..., Server]) -> None:
    server = serve(model="models:/churn@champion")
    frame = rows(4, seed=3)
    records = frame.to_dict(orient="records")
    bodies = [records, body(frame), {"dataframe_split": body(frame)},
              {"dataframe_records": records}, {"instances": records},
              {"inputs": frame.to_dict(orient="list")}]
    answers = [server.client.post("/predict", json=b).json()["predictions"] for b in bodies]
    assert all(a == answers[0] for a in answers)
    mlflow_path = server.client.post("/invocations", json={"dataframe_split": body(frame)})
    assert mlflow_path.json()["predictions"] == answers[0]
    csv = server.client.post("/predict", content=frame.to_csv(index=False),
                             headers={"content-type": "text/csv"})
    assert csv.json()["predictions"] == answers[0]


def test_a_client_request_id_is_kept(serve: Callable[..., Server]) -> None:
    server = serve(model="models:/churn@champion")
    response = server.predict(rows(1), **{"X-Request-Id": "order-42"})
    assert response.headers["x-request-id"] == "order-42"
    assert response.json()["request_id"] == "order-42"


def test_bad_requests_get_json_errors_and_the_server_keeps_serving(
        serve: Callable[..., Server]) -> None:
    server = serve(model="models:/churn@champion",
                   options=ServeOptions(max_body_bytes=4096, poll_seconds=0.1,
                                        stats_seconds=0.2))
    client = server.client
    cases = [
        (client.post("/predict", content=b"{not json", headers={"content-type":
                                                                "application/json"}), 400),
        (client.post("/predict", content=b"f0=1", headers={"content-type": "text/plain"}),
         415),
        (client.post("/predict", content=b"[" + b"1," * 5000 + b"1]",
                     headers={"content-type": "application/json"}), 413),
        (client.post("/predict", json=[{"f0": 1.0, "f1": 2.0, "f2": 3.0}]), 422),
        (client.post("/predict", json=[{"f0": "x", "f1": 2.0, "f2": 3.0, "f3": 1.0}]), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]
    assert "'f3'" in cases[3][0].json()["error"]  # the missing column is named
    assert "'f0'" in cases[4][0].json()["error"]
    bad = [b"{oops", b"[]", b'{"columns": ["f0"], "data": [[1, 2]]}', b'"x"',
           b'[{"f0": null}]']
    for i in range(10_000):
        response = client.post("/predict", content=bad[i % len(bad)],
                               headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500
    assert server.predict(rows(2)).status_code == 200


def test_a_chunked_body_over_the_limit_is_refused(serve: Callable[..., Server]) -> None:
    server = serve(model="models:/churn@champion",
                   options=ServeOptions(max_body_bytes=1000))

    def chunks():
        for _ in range(50):
            yield b"[" + b" " * 100

    response = server.client.post("/predict", content=chunks(),
                                  headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "limit of 1,000 bytes" in response.json()["error"]


def test_health_ready_metrics_and_docs(serve: Callable[..., Server],
                                       registry: Registry) -> None:
    server = serve(model="models:/churn@champion")
    version = registry.versions["champion"]
    assert server.client.get("/health").json()["status"] == "ok"
    ready = server.client.get("/ready")
    assert ready.status_code == 200 and ready.json()["versions"] == [version]
    for _ in range(3):
        server.predict(rows(1))
    server.client.post("/predict", json=[{"nope": 1}])
    metrics = server.client.get("/metrics").text
    assert f'keel_requests_total{{deployment="churn",role="live",status="200",' \
           f'version="{version}"}} 3.0' in metrics
    assert 'status="422"' in metrics
    assert f'keel_request_latency_seconds_count{{deployment="churn",role="live",' \
           f'version="{version}"}} 3.0' in metrics
    spec = server.client.get("/openapi.json").json()
    assert {"/predict", "/invocations", "/feedback", "/health", "/ready",
            "/metrics"} <= set(spec["paths"])
    assert server.client.get("/docs").status_code == 200


def test_a_model_that_raises_answers_500_naming_its_version(
        serve: Callable[..., Server], registry: Registry) -> None:
    server = serve(model=f"models:/{registry.versions['flaky']}")
    fine = rows(1)
    fine.loc[0, "f0"] = 0.5
    assert server.predict(fine).status_code == 200
    fine.loc[0, "f0"] = 5.0
    failed = server.predict(fine)
    assert failed.status_code == 500
    assert failed.json()["model_version"] == registry.versions["flaky"]
    assert "f0 above 1.0" in failed.json()["error"]


def test_feedback_is_validated(serve: Callable[..., Server]) -> None:
    server = serve(model="models:/churn@champion")
    client = server.client
    assert client.post("/feedback", content=b"nope").status_code == 400
    assert client.post("/feedback", json={"label": 1}).status_code == 422
    assert client.post("/feedback", json=[]).status_code == 422
    assert client.post("/feedback", json={"request_id": "../etc", "label": 1}).status_code \
        == 422
    ok = client.post("/feedback", json={"items": [{"request_id": "a1", "label": 1},
                                                  {"request_id": "a2", "label": [0, 1]}]})
    assert ok.json() == {"stored": 2}


def test_json_answers_are_plain_json(serve: Callable[..., Server]) -> None:
    server = serve(model="models:/churn@champion")
    raw = httpx.post(f"{server.url}/predict", content=json.dumps(body(rows(2))),
                     headers={"content-type": "application/json; charset=utf-8"})
    assert json.loads(raw.content)["predictions"]


def test_the_fast_path_answers_as_the_model_does(serve: Callable[..., Server],
                                                 registry: Registry) -> None:
    """All-float rows skip pandas on the way in; the answers must not change."""
    import keel

    model = keel.load_model("models:/churn@champion", ws=registry.ws)
    frame = rows(200, seed=11, scale=3.0)
    expected = model.predict(frame).tolist()
    server = serve(model="models:/churn@champion")
    assert server.predict(frame).json()["predictions"] == expected
    shuffled = frame[["f3", "f1", "f0", "f2"]]  # columns in another order: general path
    assert server.client.post("/predict", json=shuffled.to_dict(orient="records")
                              ).json()["predictions"] == expected
    ints = frame.round().astype(int)
    assert server.predict(ints).json()["predictions"] == model.predict(ints).tolist()
    assert wait_for(lambda: server.runtime.log.counters.written >= 200 * 3, what="log")



def test_concurrent_requests_batched_together_each_get_their_own_answers(
        serve: Callable[..., Server], registry: Registry) -> None:
    """Requests arriving together share one model call (serving.batcher); each must
    still get exactly its rows' predictions, and a bad one must fail alone."""
    from concurrent.futures import ThreadPoolExecutor

    import keel

    model = keel.load_model("models:/churn@champion", ws=registry.ws)
    server = serve(model="models:/churn@champion")
    frames = [rows(1 + i % 5, seed=100 + i, scale=3.0) for i in range(200)]
    poisoned = {7, 123, 161}  # null features: the model raises on these alone

    def send(i: int) -> tuple[int, int, list]:
        payload = body(frames[i])
        if i in poisoned:
            payload["data"][0][0] = None
        with httpx.Client(base_url=server.url, timeout=30) as client:
            response = client.post("/predict", json=payload)
        return i, response.status_code, response.json().get("predictions", [])

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, range(len(frames))))
    for i, status, predictions in results:
        if i in poisoned:
            assert status == 500
        else:
            assert status == 200
            assert predictions == model.predict(frames[i]).tolist()
