"""Running the app: uvicorn with one worker in this process, or N worker processes.

With several workers, each process builds its own :class:`Runtime` from the
same description (passed in ``KEEL_SERVE``), so they share nothing but the
store: the deployment's spec, the summed live figures and the inference log
index. Prometheus figures add up through ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from keel.errors import InvalidInput
from keel.serving.runtime import Runtime, ServeOptions
from keel.workspace import Workspace

ENV = "KEEL_SERVE"
# How long a thread may hold the interpreter before another may take it (see settle_heap).
SWITCH_INTERVAL_S = 0.001


@dataclass(frozen=True)
class ServeTarget:
    """What to serve: a deployment by name, or one model by reference."""

    root: str                      # the workspace folder
    deployment: str | None = None
    model: str | None = None
    name: str | None = None        # the log's deployment name when serving one model
    label: str | None = None       # the served model's version label (exported images)
    store: str | None = None
    blobs: str | None = None

    def to_json(self, options: ServeOptions) -> str:
        return json.dumps({"target": self.__dict__, "options": options.to_dict()})

    def runtime(self, options: ServeOptions) -> Runtime:
        ws = Workspace.open(Path(self.root), store=self.store, blobs=self.blobs)
        if self.deployment:
            return Runtime.for_deployment(ws, self.deployment, options)
        assert self.model is not None
        return Runtime.for_model(ws, self.model, options, name=self.name, label=self.label)


class GracefulServer(uvicorn.Server):
    """Exits 0 after a signal-initiated shutdown that drained every request and
    flushed the log; uvicorn re-raises the signal, which makes a clean stop look
    like a crash (exit 130 or 143) to supervisors and scripts."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def worker_app() -> Any:
    """The app of one worker process (uvicorn's factory, see :func:`serve`)."""
    from keel.serving.app import create_app

    raw = json.loads(os.environ[ENV])
    target = ServeTarget(**raw["target"])
    app = create_app(target.runtime(ServeOptions(**raw["options"])))
    settle_heap()
    return app


def settle_heap() -> None:
    """Move everything loaded so far (libraries, models) out of the collector's sight,
    and let the server's background threads take turns often.

    Without it, the allocations of a busy server trigger full collections that
    walk every object pandas and scikit-learn created at import: pauses of
    tens of milliseconds, which set the p99 (90 ms -> 12 ms at 6k requests/s,
    bench/serving.py). This process is a server: nothing else shares its heap.
    """
    gc.collect()
    gc.freeze()
    # The server's own threads (inference log, shadow mirror, housekeeping)
    # need the interpreter in many short turns, and a thread waiting for it
    # waits up to the switch interval each time (5 ms by default) while the
    # event loop is busy. At 100-row requests the log then wrote ~155k rows/s
    # and dropped 41% of them; at 1 ms it keeps up (no drops), and the p99 of
    # 1-row requests fell from ~12 to ~9 ms (bench/serving.py's load).
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def serve(target: ServeTarget, options: ServeOptions, host: str = "127.0.0.1",
          port: int = 8080, workers: int = 1, ready: Any = None) -> None:
    """Serve until interrupted; SIGINT/SIGTERM drain requests and flush the log."""
    if workers < 1:
        raise InvalidInput("--workers must be at least 1")
    if not 0 < port < 65536:
        raise InvalidInput(f"--port {port} is not a TCP port (1-65535)")
    settings: dict[str, Any] = {"host": host, "port": port, "log_level": "warning",
                                "access_log": False, "timeout_graceful_shutdown": 30,
                                "server_header": False}
    if workers == 1:
        from keel.serving.app import create_app

        runtime = target.runtime(options)  # fails here, before the port opens, if it cannot
        if ready is not None:
            ready(runtime)
        settle_heap()
        GracefulServer(uvicorn.Config(create_app(runtime), **settings)).run()
        return
    # Check it starts once here, so a bad model fails the command, not N workers.
    target.runtime(options).close()
    os.environ[ENV] = target.to_json(options)
    metrics_dir = tempfile.mkdtemp(prefix="keel-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    if ready is not None:
        ready(None)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    uvicorn.run("keel.serving.server:worker_app", factory=True, workers=workers, **settings)
