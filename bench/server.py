"""Team server benchmark: ``keel server`` against ``mlflow server``, both on SQLite,
driven through the same REST API (MLflow's, which keel serves).

    .venv/bin/python bench/server.py [--quick] [--seconds 10] [--json FILE]

Both servers run with one worker on 127.0.0.1 (keel with --no-auth, as
MLflow has no auth by default); the same client code drives each in turn:

- logging: 8 client threads, each with its own run, posting single
  ``runs/log-metric`` requests for --seconds: acknowledged requests/s and
  latency percentiles; then ``runs/log-batch`` of 100 points: points/s.
- search: 2,000 runs seeded with a metric and a param, then
  ``runs/search`` with a filter and an order-by on a metric, 100 rows a
  page: median and p95 latency of 20 queries.

Ratios: keel / MLflow for throughput, MLflow / keel for latency (above 1,
keel is better). Clients and server share the machine's 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers import peer_python  # noqa: E402

CLIENTS = 8
API = "/api/2.0/mlflow"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, process: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited ({process.returncode})")
        try:
            if httpx.get(url + path, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up in 120 s")


def start_keel(folder: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "keel.cli.main", "server", "--no-auth",
                                "--port", str(port), "--root", str(folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_up(url, process, "/health")
    return url, process


def start_mlflow(folder: Path) -> tuple[str, subprocess.Popen[bytes]]:
    python = peer_python("mlflow")
    port = free_port()
    mlflow = str(Path(python).parent / "mlflow")
    process = subprocess.Popen([mlflow, "server", "--backend-store-uri",
                                f"sqlite:///{folder / 'mlflow.db'}",
                                "--default-artifact-root", str(folder / "artifacts"),
                                "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PATH": f"{Path(python).parent}:"
                                                          f"{os.environ['PATH']}"})
    url = f"http://127.0.0.1:{port}"
    wait_up(url, process, "/health")
    return url, process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def experiment(client: httpx.Client, name: str) -> str:
    answer = client.post(f"{API}/experiments/create", json={"name": name})
    answer.raise_for_status()
    return str(answer.json()["experiment_id"])


def new_run(client: httpx.Client, experiment_id: str) -> str:
    answer = client.post(f"{API}/runs/create", json={"experiment_id": experiment_id,
                                                     "start_time": int(time.time() * 1000)})
    answer.raise_for_status()
    return str(answer.json()["run"]["info"]["run_id"])


def logging_load(url: str, seconds: float, batch: int) -> dict[str, Any]:
    """CLIENTS threads logging for ``seconds``: requests/s, points/s, latency."""
    with httpx.Client(base_url=url, timeout=60) as setup:
        experiment_id = experiment(setup, f"load-{batch}-{time.time_ns()}")
        runs = [new_run(setup, experiment_id) for _ in range(CLIENTS)]  # before the clock
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    stop_at = time.monotonic() + seconds

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            run_id = runs[i]
            step = 0
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                if batch == 1:
                    answer = http.post(f"{API}/runs/log-metric", json={
                        "run_id": run_id, "key": "loss", "value": 1.0 / (step + 1),
                        "timestamp": int(time.time() * 1000), "step": step})
                else:
                    answer = http.post(f"{API}/runs/log-batch", json={
                        "run_id": run_id, "metrics": [
                            {"key": "loss", "value": 1.0 / (s + 1), "step": s,
                             "timestamp": int(time.time() * 1000)}
                            for s in range(step, step + batch)]})
                answer.raise_for_status()
                latencies[i].append(time.perf_counter() - started)
                step += batch

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    flat = sorted(x for lane in latencies for x in lane)
    return {"requests_per_s": len(flat) / elapsed, "points_per_s": len(flat) * batch / elapsed,
            "p50_ms": 1000 * flat[len(flat) // 2],
            "p99_ms": 1000 * flat[min(len(flat) - 1, int(len(flat) * 0.99))]}


def search_latency(url: str, runs: int, queries: int) -> dict[str, Any]:
    """Seed ``runs`` runs, then time filtered, metric-ordered searches."""
    with httpx.Client(base_url=url, timeout=120) as http:
        experiment_id = experiment(http, f"search-{time.time_ns()}")
        for i in range(runs):
            run_id = new_run(http, experiment_id)
            http.post(f"{API}/runs/log-batch", json={
                "run_id": run_id,
                "metrics": [{"key": "auc", "value": (i * 7919 % 1000) / 1000, "step": 0,
                             "timestamp": 1}],
                "params": [{"key": "lr", "value": str(i % 10)}]}).raise_for_status()
        body = {"experiment_ids": [experiment_id], "filter": "metrics.auc > 0.5",
                "order_by": ["metrics.auc DESC"], "max_results": 100}
        times = []
        for _ in range(queries):
            started = time.perf_counter()
            answer = http.post(f"{API}/runs/search", json=body)
            answer.raise_for_status()
            times.append(time.perf_counter() - started)
            assert answer.json()["runs"], "the search found nothing"
    times.sort()
    return {"median_ms": 1000 * statistics.median(times),
            "p95_ms": 1000 * times[min(len(times) - 1, int(len(times) * 0.95))]}


def measure(name: str, start: Any, seconds: float, runs: int, queries: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"keel-bench-server-{name}-"))
    try:
        url, process = start(folder)
        try:
            return {"log_metric": logging_load(url, seconds, 1),
                    "log_batch": logging_load(url, seconds, 100),
                    "search": search_latency(url, runs, queries)}
        finally:
            stop(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves it runs")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    seconds, runs, queries = (1.0, 150, 3) if args.quick else (args.seconds, 2000, 20)
    results = {"keel": measure("keel", start_keel, seconds, runs, queries),
               "mlflow": measure("mlflow", start_mlflow, seconds, runs, queries)}
    k, m = results["keel"], results["mlflow"]
    ratios = {
        "log-metric requests/s (keel / MLflow)":
            k["log_metric"]["requests_per_s"] / m["log_metric"]["requests_per_s"],
        "log-metric p99 (MLflow / keel)": m["log_metric"]["p99_ms"] / k["log_metric"]["p99_ms"],
        "log-batch points/s (keel / MLflow)":
            k["log_batch"]["points_per_s"] / m["log_batch"]["points_per_s"],
        "search median (MLflow / keel)": m["search"]["median_ms"] / k["search"]["median_ms"],
    }
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"keel server vs mlflow server, SQLite, 1 worker, {CLIENTS} clients"
                        + (" (quick: nothing claimed)" if args.quick else ""))
    for column in ("case", "keel", "MLflow", "ratio"):
        table.add_column(column, justify="left" if column == "case" else "right")
    rows = [("log-metric requests/s", "log_metric", "requests_per_s", 0),
            ("log-metric p50 ms", "log_metric", "p50_ms", None),
            ("log-metric p99 ms", "log_metric", "p99_ms", 1),
            ("log-batch (100) points/s", "log_batch", "points_per_s", 2),
            ("log-batch p99 ms", "log_batch", "p99_ms", None),
            (f"search {runs:,} runs, median ms", "search", "median_ms", 3),
            ("search p95 ms", "search", "p95_ms", None)]
    names = list(ratios)
    for label, case, key, index in rows:
        shown = f"{ratios[names[index]]:.2f}x" if index is not None else "-"
        table.add_row(label, f"{k[case][key]:,.1f}", f"{m[case][key]:,.1f}", shown)
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"machine": platform.platform(), "results": results,
                                         "ratios": ratios, "quick": args.quick}, indent=2))


if __name__ == "__main__":
    main()
