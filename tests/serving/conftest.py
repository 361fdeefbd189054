"""Serving fixtures: a workspace with registered model versions, and a real
server on 127.0.0.1 (uvicorn in a thread of the test process, or ``keel serve``
in its own process)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn

import keel
import keel.models
from keel.serving.app import create_app
from keel.serving.runtime import Runtime, ServeOptions
from keel.workspace import Workspace
from tests.serving.models import Constant, Flaky, Gated

FEATURES = ["f0", "f1", "f2", "f3"]
FAST = ServeOptions(trust=True, poll_seconds=0.1, stats_seconds=0.2, log_flush_seconds=0.2)


def rows(n: int, seed: int = 0, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, len(FEATURES))) * scale, columns=FEATURES)


def body(frame: pd.DataFrame) -> dict[str, Any]:
    return {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}


@dataclass
class Registry:
    ws: Workspace
    root: Path
    gate: Path
    versions: dict[str, str]  # role in the tests -> churn/N


def _log(ws: Workspace, model: Any, example: pd.DataFrame) -> str:
    with keel.start_run(experiment="serving", ws=ws) as run:
        uri = run.log_model(model, "model", input_example=example)
    return keel.models.register(uri, "churn", ws=ws).ref


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """churn/1 champion and churn/2 challenger (logistic regressions), churn/3 a
    flaky model, churn/4 a shadow that blocks then fails, churn/5 a constant 7."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ws = Workspace.open(tmp_path, create=True)
    X = rows(500)
    y = (X.f0 + X.f1 > 0).astype(int)
    gate = tmp_path / "gate"
    versions = {
        "champion": _log(ws, make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
                         X[:5]),
        "challenger": _log(ws, make_pipeline(StandardScaler(),
                                             LogisticRegression(C=0.01)).fit(X, y), X[:5]),
        "flaky": _log(ws, Flaky(limit=1.0), X[:5]),
        "gated": _log(ws, Gated(str(gate)), X[:5]),
        "constant": _log(ws, Constant(7), X[:5]),
    }
    keel.models.promote(versions["champion"], "champion", reason="tests", ws=ws)
    keel.models.promote(versions["challenger"], "challenger", reason="tests", ws=ws)
    yield Registry(ws, tmp_path, gate, versions)
    ws.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    runtime: Runtime
    client: httpx.Client

    def predict(self, frame: pd.DataFrame, **headers: str) -> httpx.Response:
        return self.client.post("/predict", json=body(frame), headers=headers)


class ThreadServer:
    """uvicorn on 127.0.0.1 in a thread of this process."""

    def __init__(self, runtime: Runtime) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(runtime), host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def serve(registry: Registry) -> Iterator[Callable[..., Server]]:
    """``serve(deployment="prod")`` or ``serve(model="models:/churn@champion")``."""
    started: list[tuple[ThreadServer, httpx.Client]] = []

    def start(deployment: str | None = None, model: str | None = None,
              options: ServeOptions = FAST) -> Server:
        if deployment:
            runtime = Runtime.for_deployment(registry.ws, deployment, options)
        else:
            runtime = Runtime.for_model(registry.ws, str(model), options)
        thread = ThreadServer(runtime)
        client = httpx.Client(base_url=f"http://127.0.0.1:{thread.port}", timeout=30)
        started.append((thread, client))
        return Server(f"http://127.0.0.1:{thread.port}", runtime, client)

    yield start
    registry.gate.touch()  # release a blocked shadow so shutdown can finish
    for thread, client in started:
        client.close()
        thread.stop()


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (background threads at work)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
