"""The server against requests generated from its own OpenAPI spec: whatever a
client sends, the answer is never a 5xx, and a refusal has MLflow's
``{error_code, message}`` shape. On SQLite and on PostgreSQL, which refuses
values SQLite takes (NUL in text)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Ok

from keel.server import tokens
from keel.server.app import create_app
from keel.workspace import Workspace, init_workspace

# Examples per operation: from the spec, valid and invalid, and with MLflow's fields.
# Generating JSON is most of the time: 24 operations take ~20 s.
EXAMPLES, FIELD_EXAMPLES = 5, 12
# The fields of MLflow's tracking requests. The spec only says "an object" (the
# routes take the JSON body as a dict), so the generator alone rarely sends
# `metrics` or a real run id; these bodies reach the code behind them.
FIELDS = ("name", "tags", "experiment_id", "experiment_ids", "run_id", "run_uuid", "run_name",
          "user_id", "start_time", "end_time", "status", "key", "value", "step", "timestamp",
          "metrics", "params", "datasets", "max_results", "page_token", "view_type",
          "run_view_type", "filter", "order_by")
ENTRY_FIELDS = ("key", "value", "step", "timestamp", "dataset")


@pytest.fixture
def ws(backend: str, tmp_path: Path) -> Iterator[Workspace]:
    """A workspace on SQLite or PostgreSQL."""
    opened = Workspace.open(tmp_path)
    yield opened
    opened.close()


def test_no_generated_request_gets_a_server_error(ws: Workspace) -> None:
    auth = {"Authorization": f"Bearer {tokens.create(ws, 'editor').secret}"}
    experiment = ws.store.create_experiment("fuzzed")
    run = ws.store.create_run(experiment.id, "target", "", 0, experiment_name=experiment.name)
    # /ajax-api/2.0 serves the same handlers as /api/2.0.
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(ws, auth=True),
                                            headers=auth).exclude(path_regex="^/ajax-api/")
    bodies = _mlflow_bodies(run.id, str(experiment.id))
    failures: list[str] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the spec itself is valid
        operation = result.ok()
        modes = [schemathesis.GenerationMode.POSITIVE]
        if operation.body or len(operation.path_parameters) + len(operation.query):
            modes.append(schemathesis.GenerationMode.NEGATIVE)  # something to get wrong
        for mode in modes:
            _fuzz(operation.as_strategy(mode), st.none(), auth, failures, EXAMPLES)()
        if operation.body and not operation.path.startswith("/api/v1/"):
            # MLflow's fields mean nothing to keel's own API, whose spec types them.
            _fuzz(operation.as_strategy(), bodies, auth, failures, FIELD_EXAMPLES)()
    assert not failures, "\n\n".join(failures)


def _fuzz(cases: st.SearchStrategy[schemathesis.Case], bodies: st.SearchStrategy[Any],
          auth: dict[str, str], failures: list[str], examples: int) -> Callable[[], None]:
    """A Hypothesis test sending ``cases`` (their body replaced by one of ``bodies``
    unless that is None). The smallest request answered with a 5xx, or with an
    error in another shape, goes to ``failures``; an exception escaping the app
    (which the in-process call raises instead of answering 500) fails at once."""

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases, body=bodies)
    def fuzz(case: schemathesis.Case, body: Any) -> None:
        if body is not None:
            case.body = body
        response = case.call(headers=auth)
        sent = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"
        assert response.status_code < 500, f"{sent}\n-> {response.status_code} " \
                                           f"{response.text[:500]}"
        if response.status_code >= 400 and case.method != "HEAD":  # HEAD answers carry no body
            assert {"error_code", "message"} <= set(_json(response.text)), \
                f"{sent}\n-> {response.status_code} {response.text[:500]}"

    def run() -> None:
        try:
            fuzz()
        except AssertionError as exc:
            failures.append(str(exc))
        except Unsatisfiable:  # no request of this kind exists (no wrong path of type string)
            pass

    return run


def _json(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _mlflow_bodies(run_id: str, experiment_id: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with MLflow's field names and any JSON values, often the real run."""
    scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                                     allow_infinity=False)
               | st.text(max_size=12) | st.sampled_from(["0", "NaN", "loss", "FINISHED"]))
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                          max_leaves=4)
    entry = st.fixed_dictionaries({}, optional=dict.fromkeys(ENTRY_FIELDS, values))
    field = values | st.lists(entry, max_size=3)
    optional = dict.fromkeys(FIELDS, field)
    optional["run_id"] = st.just(run_id) | field
    optional["experiment_id"] = st.just(experiment_id) | field
    return st.fixed_dictionaries({}, optional=optional)


# -- what the generator found, pinned -------------------------------------------------

RUN = "<run>"  # stands for the run the test creates
BAD_INPUT = [
    # (case, method, path under /api/2.0/mlflow/, body (JSON, or bytes as sent),
    #  status, MLflow error code, words the message must hold)
    ("malformed JSON", "POST", "runs/log-batch", b'{"run_id": ', 400,
     "INVALID_PARAMETER_VALUE", "not valid JSON"),
    ("a body that is not UTF-8", "POST", "runs/log-batch", b"\x80", 400, "BAD_REQUEST",
     "parsing the body"),
    ("a body that is not an object", "POST", "runs/log-batch", b"[1]", 400,
     "INVALID_PARAMETER_VALUE", "the request body"),
    ("metrics that are not a list", "POST", "runs/log-batch", {"run_id": RUN, "metrics": 5},
     400, "INVALID_PARAMETER_VALUE", "metrics"),
    ("a metric that is not an object", "POST", "runs/log-batch",
     {"run_id": RUN, "metrics": [5]}, 400, "INVALID_PARAMETER_VALUE", "metrics"),
    ("a step that is not an integer", "POST", "runs/log-batch",
     {"run_id": RUN, "metrics": [{"key": "loss", "value": 1, "step": "x"}]}, 400,
     "INVALID_PARAMETER_VALUE", "step"),
    ("a step beyond 64 bits", "POST", "runs/log-batch",
     {"run_id": RUN, "metrics": [{"key": "loss", "value": 1, "step": 2**64}]}, 400,
     "INVALID_PARAMETER_VALUE", "step"),
    ("a timestamp that is not an integer", "POST", "runs/log-metric",
     {"run_id": RUN, "key": "loss", "value": 1, "timestamp": "noon"}, 400,
     "INVALID_PARAMETER_VALUE", "timestamp"),
    ("params that are not a list", "POST", "runs/log-batch", {"run_id": RUN, "params": "lr"},
     400, "INVALID_PARAMETER_VALUE", "params"),
    ("experiment tags that are not a list", "POST", "experiments/create",
     {"name": "churn", "tags": {"team": "risk"}}, 400, "INVALID_PARAMETER_VALUE", "tags"),
    ("a tag without a key", "POST", "runs/create", {"tags": [{"value": "risk"}]}, 400,
     "INVALID_PARAMETER_VALUE", "tag"),
    ("an experiment name that is a list", "POST", "experiments/create", {"name": ["churn"]},
     400, "INVALID_PARAMETER_VALUE", "name"),
    ("a start time that is not an integer", "POST", "runs/create", {"start_time": "noon"},
     400, "INVALID_PARAMETER_VALUE", "start_time"),
    ("a start time beyond 64 bits", "POST", "runs/create", {"start_time": 10**30}, 400,
     "INVALID_PARAMETER_VALUE", "start_time"),
    ("an end time that is not an integer", "POST", "runs/update",
     {"run_id": RUN, "status": "FINISHED", "end_time": "noon"}, 400,
     "INVALID_PARAMETER_VALUE", "end_time"),
    ("datasets that are not a list", "POST", "runs/log-inputs", {"run_id": RUN, "datasets": 5},
     400, "INVALID_PARAMETER_VALUE", "datasets"),
    ("max_results that is not an integer", "POST", "runs/search", {"max_results": "ten"}, 400,
     "INVALID_PARAMETER_VALUE", "max_results"),
    # 0 answered an empty page whose next page was the same page: a client paged forever.
    ("a search page of 0 runs", "POST", "runs/search", {"max_results": 0}, 400,
     "INVALID_PARAMETER_VALUE", "max_results"),
    ("a search page of 0 experiments", "POST", "experiments/search", {"max_results": 0}, 400,
     "INVALID_PARAMETER_VALUE", "max_results"),
    ("a history page of 0 points", "GET",
     f"metrics/get-history?run_id={RUN}&metric_key=loss&max_results=0", None, 400,
     "INVALID_PARAMETER_VALUE", "max_results"),
    ("order_by that is not strings", "POST", "runs/search", {"order_by": [1]}, 400,
     "INVALID_PARAMETER_VALUE", "order_by"),
    ("experiment ids that are not ids", "POST", "runs/search", {"experiment_ids": [{}]}, 400,
     "INVALID_PARAMETER_VALUE", "experiment_ids"),
    ("an experiment id in superscript digits", "GET", "experiments/get?experiment_id=%C2%B3",
     None, 404, "RESOURCE_DOES_NOT_EXIST", "³"),
    ("an experiment id beyond 64 bits", "POST", "experiments/delete",
     {"experiment_id": 10**30}, 404, "RESOURCE_DOES_NOT_EXIST", str(10**30)),
    ("an unknown endpoint", "GET", "runs/nothing-here", None, 404, "ENDPOINT_NOT_FOUND", ""),
    ("a wrong method", "GET", "runs/create", None, 405, "BAD_REQUEST", "Method Not Allowed"),
]


class Api:
    """The app over a workspace, called in this process as an editor."""

    def __init__(self, ws: Workspace) -> None:
        self.ws, self.app = ws, create_app(ws, auth=True)
        self.headers = {"Authorization": f"Bearer {tokens.create(ws, 'editor').secret}"}
        experiment = ws.store.get_or_create_experiment("Default")
        self.run_id = ws.store.create_run(experiment.id, "target", "", 0,
                                          experiment_name=experiment.name).id

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        path = path.replace(RUN, self.run_id)
        content = body if isinstance(body, bytes) else \
            None if body is None else json.dumps(_fill(body, self.run_id)).encode()

        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                         base_url="http://keel", headers=self.headers) as c:
                return await c.request(method, "/api/2.0/mlflow/" + path, content=content,
                                       headers={"content-type": "application/json"})

        return asyncio.run(send())


def _fill(body: Any, run_id: str) -> Any:
    if isinstance(body, dict):
        return {k: _fill(v, run_id) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill(v, run_id) for v in body]
    return run_id if body == RUN else body


@pytest.fixture
def api(ws: Workspace) -> Api:
    return Api(ws)


@pytest.fixture(scope="module")
def refusing_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One SQLite workspace for the whole table: a refusal changes nothing."""
    root = init_workspace(tmp_path_factory.mktemp("refusing"))
    ws = Workspace.open(root, store=str(root / ".keel" / "keel.db"),
                        blobs=str(root / ".keel" / "blobs"))
    yield Api(ws)
    ws.close()


@pytest.mark.parametrize(("method", "path", "body", "status", "code", "words"),
                         [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_refused_naming_what_is_wrong(refusing_api: Api, method: str, path: str,
                                                  body: Any, status: int, code: str,
                                                  words: str) -> None:
    response = refusing_api.call(method, path, body)
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert words in response.json()["message"]


def test_a_refused_batch_stores_nothing(api: Api) -> None:
    batch = {"run_id": RUN, "params": [{"key": "lr", "value": "0.1"}],
             "metrics": [{"key": "loss", "value": 0.5, "step": 0, "timestamp": 1},
                         {"key": "loss", "value": 0.4, "step": "one", "timestamp": 2}]}
    assert api.call("POST", "runs/log-batch", batch).status_code == 400
    run = api.ws.store.get_run(api.run_id)
    assert api.ws.store.metric_history(api.run_id, "loss") == []
    assert run.params == {}


def test_a_nul_character_is_a_bad_request_on_every_store(api: Api, backend: str) -> None:
    # PostgreSQL refuses NUL in any text, even in a lookup; SQLite finds no such run.
    got = api.call("GET", "runs/get?run_id=%00")
    assert got.status_code == (400 if backend == "postgres" else 404), got.text
    created = api.call("POST", "runs/create", {"run_name": "a\x00b"})
    assert created.status_code == (400 if backend == "postgres" else 200), created.text
    if backend == "postgres":
        assert "NUL" in created.json()["message"]
        runs = api.call("POST", "runs/search", {}).json()["runs"]
        assert [r["info"]["run_name"] for r in runs] == ["target"]  # nothing half-made
