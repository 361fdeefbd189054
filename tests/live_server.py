"""A real keel server on 127.0.0.1: uvicorn in a thread of the test process."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from keel.server.app import create_app
from keel.workspace import Workspace
from tests.serving.conftest import free_port


@contextlib.contextmanager
def running_server(ws: Workspace, auth: bool = True) -> Iterator[str]:
    """Serve ``ws`` on a free loopback port for the block; yields the server's URL."""
    port = free_port()
    config = uvicorn.Config(create_app(ws, auth=auth), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(30)
