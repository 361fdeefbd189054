"""Running the team server: one process, or uvicorn workers sharing a port."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput

ENV = "KEEL_SERVER"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_auth(host: str, auth: bool) -> None:
    """``--no-auth`` only where nobody else can connect."""
    if not auth and host not in LOOPBACK:
        raise InvalidInput(f"--no-auth on {host} would open the store to anyone who can reach "
                           "it", hint="listen on 127.0.0.1, or create a token: "
                                      "keel token create --role editor")


def worker_app() -> Any:
    """The app of one worker process (uvicorn's factory)."""
    from keel.server.app import create_app
    from keel.workspace import Workspace

    settings = json.loads(os.environ[ENV])
    ws = Workspace.open(Path(settings["root"]), store=settings["store"],
                        blobs=settings["blobs"])
    return create_app(ws, auth=settings["auth"])


def run_server(root: Path, store: str | None, blobs: str | None, host: str = "127.0.0.1",
               port: int = 5050, workers: int = 1, auth: bool = True) -> None:
    """Serve until interrupted (SIGINT/SIGTERM finish the requests in flight)."""
    import uvicorn

    from keel.serving.server import GracefulServer
    from keel.workspace import Workspace

    check_auth(host, auth)
    if workers < 1:
        raise InvalidInput("--workers must be at least 1")
    if not 0 < port < 65536:
        raise InvalidInput(f"--port {port} is not a TCP port (1-65535)")
    ws = Workspace.open(root, create=True, store=store, blobs=blobs)
    ws.store.list_experiments()  # a store that cannot open fails here, before the port
    settings: dict[str, Any] = {"host": host, "port": port, "log_level": "warning",
                                "access_log": False, "timeout_graceful_shutdown": 30,
                                "server_header": False}
    if workers == 1:
        from keel.server.app import create_app

        GracefulServer(uvicorn.Config(create_app(ws, auth=auth), **settings)).run()
        return
    os.environ[ENV] = json.dumps({"root": str(ws.root), "store": ws.store_url,
                                  "blobs": ws.blobs.url, "auth": auth})
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    uvicorn.run("keel.server.run:worker_app", factory=True, workers=workers, **settings)
