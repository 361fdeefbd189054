"""Model serving benchmark: ``keel serve`` against ``mlflow models serve``, same model,
same load generator.

    .venv/bin/python bench/serving.py [--quick] [--duration 30] [--json FILE]

The model: StandardScaler + LogisticRegression trained on the same table
(make_classification, 20,000 x 20 float columns f00..f19) on both sides, each
logged and registered by its own tool and served with one worker on
127.0.0.1. Both servers must answer the benchmark's payloads identically
before anything is timed.

The load: ``wrk`` (apt-get install wrk), 2 threads, 16 connections, for
--duration seconds per case after a 2 s warm-up, posting the same
``dataframe_split`` body (MLflow's format, which keel accepts as is) with 1
row and with 100 rows. Reported: requests/s, p50 and p99 latency, and the
ratios (keel / MLflow for throughput, MLflow / keel for latency: above 1,
keel is better). Server and load generator share the machine's cores, the
same for both tools.

Then rollout overhead: keel serving a deployment with one version, against a
deployment with a 10% canary and a shadow of the challenger (every request
mirrored), 1-row requests, both servers up and measured in alternation three
times (medians). Overhead = 1 - throughput with / without.

keel logs every prediction to its inference log in all cases (sample 1);
MLflow's server logs nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers import peer_python  # noqa: E402

FEATURES = [f"f{i:02d}" for i in range(20)]
TARGETS = {"throughput": 10.0, "p99": 5.0, "overhead": 0.10}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_table(path: Path) -> Any:
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=20_000, n_features=20, n_informative=10,
                               random_state=0)
    frame = pd.DataFrame(X, columns=FEATURES)
    frame["target"] = y
    frame.to_csv(path, index=False)
    return frame


def payload(frame: Any, rows: int) -> str:
    part = frame[FEATURES].iloc[:rows]
    return json.dumps({"dataframe_split": {"columns": FEATURES,
                                           "data": part.round(6).to_numpy().tolist()}})


def keel_side(workdir: Path, table: Any) -> dict[str, str]:
    """Train, log and register the model (and a challenger) in a keel workspace."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import keel
    import keel.models

    ws = keel.Workspace.open(workdir, create=True)
    X, y = table[FEATURES], table["target"]
    refs = {}
    for label, c in (("champion", 1.0), ("challenger", 0.5)):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(X, y)
        with keel.start_run(experiment="bench-serving", ws=ws) as run:
            uri = run.log_model(model, "model", input_example=X[:5])
        version = keel.models.register(uri, "bench-serving", ws=ws)
        keel.models.promote(version.ref, label, reason="bench", ws=ws)
        refs[label] = version.ref
    ws.close()
    return refs


def start(command: list[str], cwd: Path, env: dict[str, str], url: str,
          probe: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + probe, timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{' '.join(command)} did not become ready in 180 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(url: str, body: str, seconds: float, workdir: Path) -> dict[str, float]:
    """Requests/s and latency percentiles from wrk (2 threads, 16 connections)."""
    script = workdir / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = [==[{body}]==]\n")
    subprocess.run(["wrk", "-t2", "-c16", "-d2s", "-s", str(script), url],
                   capture_output=True, check=True)  # warm-up
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds:g}s", "--latency", "-s",
                          str(script), url], capture_output=True, text=True,
                         check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests at {url}:\n{out}")
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
            "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
            "requests": float(re.search(r"(\d+) requests in", out).group(1))}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def same_answers(urls: list[str], body: str) -> None:
    answers = [httpx.post(url, content=body, headers={"content-type": "application/json"},
                          timeout=30).json()["predictions"] for url in urls]
    if any(a != answers[0] for a in answers):
        raise RuntimeError(f"the servers disagree: {[a[:5] for a in answers]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per case: proves it runs")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per case")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.duration
    if shutil.which("wrk") is None:
        sys.exit("bench/serving.py needs wrk: apt-get install -y wrk")
    keel_bin = str(Path(sys.executable).parent / "keel")
    results: dict[str, Any] = {"python": platform.python_version(), "cores": os.cpu_count(),
                               "seconds_per_case": seconds, "load": "wrk -t2 -c16"}
    with tempfile.TemporaryDirectory(prefix="keel-bench-serving-") as tmp:
        work = Path(tmp)
        (work / "keel").mkdir()
        (work / "mlflow").mkdir()
        table = make_table(work / "table.csv")
        print("training and registering on both sides...", file=sys.stderr)
        refs = keel_side(work / "keel", table)
        side = subprocess.run([str(peer_python("mlflow")), str(HERE / "mlflow_serving_side.py"),
                               str(work / "mlflow"), str(work / "table.csv")],
                              capture_output=True, text=True, check=False)
        if side.returncode != 0:
            raise RuntimeError(f"MLflow side failed:\n{side.stderr[-3000:]}")
        mlflow = json.loads(side.stdout.strip().splitlines()[-1])
        results["mlflow"] = mlflow["mlflow"]
        bodies = {1: payload(table, 1), 100: payload(table, 100)}

        mlflow_port, keel_port = free_port(), free_port()
        mlflow_env = {"MLFLOW_TRACKING_URI": mlflow["tracking_uri"],
                      "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
                      "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
                      # it execs `uvicorn` from PATH: its own venv's
                      "PATH": f"{peer_python('mlflow').parent}:{os.environ.get('PATH', '')}"}
        mlflow_bin = str(peer_python("mlflow").parent / "mlflow")
        print("starting mlflow models serve and keel serve...", file=sys.stderr)
        servers = [
            ("mlflow", start([mlflow_bin, "models", "serve", "-m", mlflow["uri"], "-h",
                              "127.0.0.1", "-p", str(mlflow_port), "--env-manager", "local",
                              "-w", "1"], work / "mlflow", mlflow_env,
                             f"http://127.0.0.1:{mlflow_port}", "/ping"),
             f"http://127.0.0.1:{mlflow_port}/invocations"),
            ("keel", start([keel_bin, "serve", "models:/bench-serving@champion", "--port",
                            str(keel_port), "--workers", "1"], work / "keel", {},
                           f"http://127.0.0.1:{keel_port}", "/ready"),
             f"http://127.0.0.1:{keel_port}/invocations"),
        ]
        try:
            for body in bodies.values():
                same_answers([url for _, _, url in servers], body)
            for rows, body in bodies.items():
                for name, _, url in servers:
                    print(f"{name}: {rows} row(s) for {seconds:g} s...", file=sys.stderr)
                    results[f"{name}_{rows}"] = wrk(url, body, seconds, work)
        finally:
            for _, process, _ in servers:
                stop(process)

        results.update(rollout_overhead(keel_bin, work / "keel", refs, bodies[1], seconds))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def rollout_overhead(keel_bin: str, workdir: Path, refs: dict[str, str], body: str,
                     seconds: float, rounds: int = 3) -> dict[str, Any]:
    """Throughput of one deployment with a single version and of one with canary +
    shadow, both servers up at once and measured in alternation (``rounds``
    times each, medians), so drift in the machine's speed hits both alike."""
    run = [keel_bin, "deploy"]
    ports: dict[str, int] = {}
    processes = []
    try:
        for case in ("single", "canary_shadow"):
            name = f"bench-{case.replace('_', '-')}"
            subprocess.run([*run, "create", name, "--model", "bench-serving@champion"],
                           cwd=workdir, check=True, capture_output=True)
            if case == "canary_shadow":
                subprocess.run([*run, "canary", name, "--model", "bench-serving@challenger",
                                "--percent", "10", "--min-requests", "1000000"],
                               cwd=workdir, check=True, capture_output=True)
                subprocess.run([*run, "shadow", name, "--model", "bench-serving@challenger"],
                               cwd=workdir, check=True, capture_output=True)
            ports[case] = free_port()
            processes.append(start([keel_bin, "serve", "--deployment", name, "--port",
                                    str(ports[case])], workdir, {},
                                   f"http://127.0.0.1:{ports[case]}", "/ready"))
        runs: dict[str, list[dict[str, float]]] = {case: [] for case in ports}
        for number in range(rounds):
            for case, port in ports.items():
                print(f"keel deployment, {case.replace('_', ' + ')}, round {number + 1}/"
                      f"{rounds}: {seconds:g} s...", file=sys.stderr)
                runs[case].append(wrk(f"http://127.0.0.1:{port}/predict", body, seconds,
                                      workdir))
        out: dict[str, Any] = {}
        for case, port in ports.items():
            out[f"keel_{case}"] = {key: statistics.median(r[key] for r in runs[case])
                                   for key in runs[case][0]}
            out[f"keel_{case}_rounds"] = runs[case]
            out[f"keel_{case}_health"] = httpx.get(f"http://127.0.0.1:{port}/health",
                                                   timeout=10).json()
        return out
    finally:
        for process in processes:
            stop(process)


def report(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"keel serve vs mlflow models serve {r['mlflow']} (1 worker each, "
                        f"{r['load']}, {r['seconds_per_case']:g} s per case, "
                        f"{r['cores']} cores)")
    for column in ("workload", "keel", "MLflow", "ratio", "target", "pass/fail"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for rows in (1, 100):
        k, m = r[f"keel_{rows}"], r[f"mlflow_{rows}"]
        thr = k["rps"] / m["rps"]
        p99 = m["p99_ms"] / k["p99_ms"]
        table.add_row(f"{rows} row(s): requests/s", f"{k['rps']:,.0f}", f"{m['rps']:,.0f}",
                      f"{thr:.1f}x", f">= {TARGETS['throughput']:g}x",
                      "pass" if thr >= TARGETS["throughput"] else "FAIL")
        table.add_row(f"{rows} row(s): p99 latency ms", f"{k['p99_ms']:.1f}",
                      f"{m['p99_ms']:.1f}", f"{p99:.1f}x", f">= {TARGETS['p99']:g}x",
                      "pass" if p99 >= TARGETS["p99"] else "FAIL")
        table.add_row(f"{rows} row(s): p50 latency ms", f"{k['p50_ms']:.1f}",
                      f"{m['p50_ms']:.1f}", f"{m['p50_ms'] / k['p50_ms']:.1f}x", "-", "-")
    single, both = r["keel_single"], r["keel_canary_shadow"]
    overhead = 1 - both["rps"] / single["rps"]
    table.add_row("keel deployment, 1 row: requests/s, one version -> 10% canary + shadow",
                  f"{single['rps']:,.0f} -> {both['rps']:,.0f}", "-",
                  f"{overhead:+.1%}", f"<= {TARGETS['overhead']:.0%}",
                  "pass" if overhead <= TARGETS["overhead"] else "FAIL")
    table.add_row("  p99 latency ms, one version -> canary + shadow",
                  f"{single['p99_ms']:.1f} -> {both['p99_ms']:.1f}", "-", "-", "-", "-")
    Console().print(table)
    log = r["keel_canary_shadow_health"]
    print(f"keel logged every prediction: inference log {log['inference_log']}, shadow "
          f"requests dropped (queue full) {log['shadow_dropped']}")


if __name__ == "__main__":
    main()
