"""The demo's team act: the demo workspace behind `keel server` on 127.0.0.1, and a
second workspace (a teammate's laptop, ``build/demo-laptop``) whose store is that
server (``KEEL_STORE=http://...`` + ``KEEL_TOKEN``): a run logged there lands in
the team's store with its artifact, the CLI reads it back, and a viewer's
token is refused a write.

Uses only the standard library for HTTP (the demo runs on keel's base install).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console

from serving import KEEL, _port

console = Console()

TEAMMATE = textwrap.dedent('''
    import keel
    with keel.start_run(experiment="team-demo", name="from-the-laptop") as run:
        run.log_params({"model": "logreg", "C": 0.5})
        for step, loss in enumerate([0.61, 0.43, 0.35]):
            run.log_metric("loss", loss, step=step)
        run.log_text("trained on breast-cancer@2", "notes.txt")
    print(run.id)
''')


def share(workspace: Path) -> list[str]:
    """Serve ``workspace`` to a teammate's workspace; returns commands to try."""
    laptop = workspace.parent / "demo-laptop"
    laptop.mkdir(exist_ok=True)
    (laptop / ".keel").mkdir(exist_ok=True)  # what `keel init` makes: a spool folder
    editor = _token(workspace, "editor")
    viewer = _token(workspace, "viewer")
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*KEEL, "server", "--port", str(port)], cwd=workspace,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait(url, server)
        console.print(f"keel server on {url} (the demo workspace's store; tokens required)")
        env = {**os.environ, "KEEL_STORE": url, "KEEL_TOKEN": editor}
        logged = subprocess.run([sys.executable, "-c", TEAMMATE], cwd=laptop, env=env,
                                capture_output=True, text=True, check=False)
        if logged.returncode != 0:
            raise SystemExit(f"the teammate's run failed: {logged.stderr[-2000:]}")
        run_id = logged.stdout.strip().splitlines()[-1]
        console.print(f"a teammate's workspace with KEEL_STORE={url} logged run "
                      f"{run_id[:12]}: it is in the team store, not on the laptop "
                      f"({'no' if not (laptop / '.keel' / 'keel.db').exists() else 'a'} "
                      "local database)")
        shown = subprocess.run([*KEEL, "runs", "show", run_id], cwd=laptop, env=env,
                               capture_output=True, text=True, check=False)
        lines = [line for line in shown.stdout.splitlines()
                 if "loss" in line or "notes.txt" in line]
        console.print("keel runs show, through the server: " + "; ".join(
            " ".join(line.replace("│", " ").split()) for line in lines[:2]))
        refused = _post(f"{url}/api/v1/store/create_experiment", {"name": "not-allowed"},
                        viewer)
        console.print(f"a viewer's token writing: HTTP {refused[0]} {refused[1]}")
    finally:
        server.terminate()
        server.wait(30)
    return [f"keel server --port {port}   # then open {url}/ and log in with a token",
            f"keel token create --role editor   # then KEEL_STORE={url} KEEL_TOKEN=... "
            "keel runs list"]


def _token(workspace: Path, role: str) -> str:
    made = subprocess.run([*KEEL, "token", "create", "--role", role, "--description",
                           "make demo"], cwd=workspace, capture_output=True, text=True,
                          check=False)
    if made.returncode != 0:
        raise SystemExit(f"keel token create failed: {made.stderr}")
    return made.stdout.strip().splitlines()[-1]


def _wait(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"keel server exited: {server.stderr.read() if server.stderr else ''}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("keel server did not start in 60 s")


def _post(url: str, payload: object, token: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, "accepted"
    except urllib.error.HTTPError as exc:
        return exc.code, str(json.load(exc).get("message", ""))
