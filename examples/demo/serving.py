"""The demo's serving act: the champion behind `keel serve`, real HTTP traffic, a
challenger rolled out as a 10% canary and promoted, with the status, the
inference log, feedback and a prediction's lineage shown on the way.

Uses only the standard library for HTTP (the demo runs on keel's base install).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

from rich.console import Console

console = Console()
MODEL = "breast-cancer"
DEPLOYMENT = "demo"
KEEL = [sys.executable, "-m", "keel.cli.main"]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, payload: Any) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.load(response))


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(json.load(response))


def _keel(*args: str) -> str:
    out = subprocess.run([*KEEL, *args], capture_output=True, text=True, check=False,
                         env={**os.environ, "COLUMNS": str(console.width)})
    if out.returncode != 0:
        raise SystemExit(f"keel {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def challenger(runs: list[Any]) -> str:
    """The sweep's second-best trial, registered once and aliased ``challenger``."""
    import keel.models as km
    from keel.tracking.session import workspace

    model = workspace().store.get_registered_model(MODEL)
    if "challenger" in model.aliases:
        return f"{MODEL}/{model.aliases['challenger']}"
    second = [r for r in runs if r.status == "FINISHED"][1]
    version = km.register(f"runs:/{second.id}/model", MODEL,
                          description=f"runner-up of the sweep ({second.params.get('family')})")
    km.set_alias(version.ref, "challenger", reason="runner-up of the sweep, for the canary")
    return version.ref


def serve_and_roll_out(runs: list[Any]) -> list[str]:
    """Returns the commands worth trying afterwards."""
    import pandas as pd

    challenger_ref = challenger(runs)
    started = time.time()
    _keel("deploy", "create", DEPLOYMENT, "--model", f"{MODEL}@champion", "--replace",
          "--reason", "make demo")
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*KEEL, "serve", "--deployment", DEPLOYMENT, "--port", str(port),
                               "--poll-seconds", "0.2", "--stats-seconds", "0.5",
                               "--log-flush-seconds", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(url, server)
        console.print(f"  [green]✓[/] keel serve --deployment {DEPLOYMENT}: the champion "
                      f"answers on [bold]{url}[/] (POST /predict, GET /metrics, /docs)")
        holdout = pd.read_csv("holdout/holdout.csv")
        features = holdout.drop(columns="target")
        columns = list(features.columns)
        rows = features.to_numpy().tolist()
        labels = holdout["target"].tolist()

        def traffic(count: int) -> tuple[Counter[str], list[tuple[str, int]]]:
            seen: Counter[str] = Counter()
            ids = []
            for i in range(count):
                answer = _post(f"{url}/predict", {"columns": columns,
                                                  "data": [rows[i % len(rows)]]})
                seen[answer["model_version"]] += 1
                ids.append((answer["request_id"], labels[i % len(rows)]))
            return seen, ids

        seen, ids = traffic(300)
        console.print(f"  [green]✓[/] 300 requests, answered by: {dict(seen)}")
        _keel("deploy", "canary", DEPLOYMENT, "--model", f"{MODEL}@challenger", "--percent",
              "10", "--reason", "runner-up of the sweep")
        _wait_revision(url)
        seen, more = traffic(1000)
        ids += more
        share = seen[challenger_ref] / 1000
        console.print(f"  [green]✓[/] keel deploy canary {DEPLOYMENT} --model {MODEL}"
                      f"@challenger --percent 10: the running server followed (no restart); "
                      f"of 1,000 requests {seen[challenger_ref]} ({share:.1%}) reached the "
                      f"canary {challenger_ref}")
        stored = _post(f"{url}/feedback", [{"request_id": r, "label": y} for r, y in ids])
        console.print(f"  [green]✓[/] POST /feedback: {stored['stored']:,} ground-truth labels "
                      "attached to their predictions by request id")
        _keel("deploy", "promote", DEPLOYMENT, "--reason", "canary healthy")
        _wait_revision(url)
        seen, _ = traffic(200)
        console.print(f"  [green]✓[/] keel deploy promote {DEPLOYMENT}: every request now "
                      f"reaches {', '.join(seen)}")
        time.sleep(1.2)  # one figures flush, so the status below counts everything
    finally:
        server.send_signal(signal.SIGTERM)  # drains requests, flushes the inference log
        server.wait(60)
    print(_keel("deploy", "status", DEPLOYMENT).rstrip())  # as the command prints it
    _show_log_and_lineage(ids[-1][0], started)
    return [f"keel deploy status {DEPLOYMENT}", f"keel deploy history {DEPLOYMENT}",
            f"keel deploy log {DEPLOYMENT} --since 1h -n 20",
            f"keel lineage {ids[-1][0]}",
            f"keel serve --deployment {DEPLOYMENT}   # then open http://127.0.0.1:8080/docs"]


def _show_log_and_lineage(request_id: str, since: float) -> None:
    import keel

    log = keel.inference_log(DEPLOYMENT).read(start=int(since * 1000))  # this demo's traffic
    labelled = log[log["label"].notna()]
    accuracy = (labelled["prediction"] == labelled["label"]).mean() if len(labelled) \
        else float("nan")
    by_version = log.groupby("model_version").size().to_dict()
    console.print(f"  [green]✓[/] keel.inference_log('{DEPLOYMENT}').read(): {len(log):,} "
                  f"predictions logged (by version: {by_version}); "
                  f"{len(labelled):,} with feedback labels, accuracy {accuracy:.3f}")
    lines = _keel("lineage", request_id).rstrip().splitlines()
    console.print(f"[bold]keel lineage {request_id}[/] (first lines):")
    print("\n".join(lines[:9]))


def _wait_ready(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"keel serve exited: {server.stderr.read() if server.stderr else ''}")
        try:
            _get(f"{url}/ready")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise SystemExit("keel serve did not become ready in 120 s")


def _wait_revision(url: str) -> None:
    """Until the server reports the deployment's current revision (it polls the store)."""
    from keel.tracking.session import workspace

    target = workspace().store.deployment_revision(DEPLOYMENT)
    deadline = time.monotonic() + 30
    while _get(f"{url}/health")["revision"] < target and time.monotonic() < deadline:
        time.sleep(0.1)
