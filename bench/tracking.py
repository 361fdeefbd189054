"""Tracking benchmark: keel against MLflow's SQLite store, same workloads, one run.

    python bench/tracking.py [--quick]

A1  200 runs x (10 log_param + 5 log_metric) individual calls
A2  5,000 log_metric calls in one run (until everything is stored)
A3  5,000 points in one batch call (until stored)
A4  search: metrics.acc >= 0.5, order by metrics.loss, 100 results, over 600 and
    10,000 runs (median of 5)
L   keel's median log_metric cost on the caller's thread

Durability differs by default, and the table says so: MLflow's SQLite store
commits every call with SQLite's defaults (rollback journal, synchronous=FULL:
an fsync per call), so each acknowledged call survives a power loss. keel's
default (KEEL_DURABILITY=process) acknowledges a call once it is in the
kernel (it survives the process being killed, not a power loss). A1 and A2
are therefore also run with KEEL_DURABILITY=fsync (spool fsynced at every
50 ms flush, SQLite synchronous=FULL), the same guarantee at batch
granularity, so the cost of the guarantee is visible.

MLflow runs in bench/.venv-mlflow (created on first use). Targets: A1 >= 20x,
A2 >= 100x, A3 >= 10x, A4 >= 20x faster than MLflow; L <= 10 us.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import ratio, run_peer

TARGETS = {"a1": 20, "a2": 100, "a3": 10, "a4": 20}


def keel_side(runs: int, calls: int, points: int, sizes: list[int]) -> dict[str, float]:
    """keel's timings, measured in this process in a fresh workspace."""
    import keel

    with keel.start_run(experiment="bench") as warm:  # opens and migrates the store
        warm.log_metric("warm", 1.0)
    result: dict[str, float] = {}

    started = time.perf_counter()
    for r in range(runs):
        with keel.start_run(experiment="bench") as run:
            for p in range(10):
                run.log_param(f"p{p}", r * p)
            for m in range(5):
                run.log_metric(f"m{m}", r * 0.1 + m)
    result["a1"] = time.perf_counter() - started

    started = time.perf_counter()
    with keel.start_run(experiment="bench") as run:
        for i in range(calls):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
    result["a2"] = time.perf_counter() - started

    started = time.perf_counter()
    with keel.start_run(experiment="bench") as run:
        run.log_batch([("loss", 1.0 / (i + 1), i) for i in range(points)])
    result["a3"] = time.perf_counter() - started

    for size in sizes:
        for i in range(size):
            with keel.start_run(experiment=f"search-{size}") as run:
                run.log_metrics({"acc": (i * 7919 % size) / size, "loss": (i % 97) / 97})
        times = []
        for _ in range(5):
            started = time.perf_counter()
            found = keel.search_runs(f"search-{size}", "metrics.acc >= 0.5",
                                     order_by=["metrics.loss ASC"], max_results=100,
                                     as_list=True)
            times.append(time.perf_counter() - started)
        assert len(found) == min(100, size // 2)
        result[f"a4_{size}"] = statistics.median(times)

    with keel.start_run(experiment="bench") as run:
        costs = []
        for i in range(20_000):
            t0 = time.perf_counter_ns()
            run.log_metric("latency", float(i))
            costs.append(time.perf_counter_ns() - t0)
    result["log_metric_us"] = statistics.median(costs) / 1000
    return result


def keel_fsync_side(runs: int, calls: int) -> dict[str, float]:
    """A1 and A2 again, in a fresh workspace with KEEL_DURABILITY=fsync."""
    import keel
    from keel.tracking import session

    os.environ["KEEL_DURABILITY"] = "fsync"
    session.reset()
    try:
        with keel.start_run(experiment="bench") as warm:
            warm.log_metric("warm", 1.0)
        result: dict[str, float] = {}
        started = time.perf_counter()
        for r in range(runs):
            with keel.start_run(experiment="bench") as run:
                for p in range(10):
                    run.log_param(f"p{p}", r * p)
                for m in range(5):
                    run.log_metric(f"m{m}", r * 0.1 + m)
        result["a1"] = time.perf_counter() - started
        started = time.perf_counter()
        with keel.start_run(experiment="bench") as run:
            for i in range(calls):
                run.log_metric("loss", 1.0 / (i + 1), step=i)
        result["a2"] = time.perf_counter() - started
    finally:
        os.environ.pop("KEEL_DURABILITY", None)
        session.reset()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    runs, calls, points, sizes = (20, 500, 500, [60, 200]) if args.quick else \
        (200, 5000, 5000, [600, 10_000])
    console = Console()
    with tempfile.TemporaryDirectory() as keel_dir, tempfile.TemporaryDirectory() as ml_dir:
        os.chdir(keel_dir)
        console.print("keel workloads...")
        ours = keel_side(runs, calls, points, sizes)
    with tempfile.TemporaryDirectory() as fsync_dir:
        os.chdir(fsync_dir)
        console.print("keel A1 and A2 with KEEL_DURABILITY=fsync...")
        durable = keel_fsync_side(runs, calls)
    with tempfile.TemporaryDirectory() as keel_dir, tempfile.TemporaryDirectory() as ml_dir:
        os.chdir(keel_dir)
        console.print("MLflow workloads (SQLite store)...")
        theirs = run_peer("mlflow", "mlflow_side.py", ml_dir, str(runs), str(calls),
                          str(points), ",".join(map(str, sizes)))
    table = Table(title="keel vs MLflow 3.17.2 (SQLite), seconds; ratio = MLflow / keel")
    for column in ("workload", "keel", "MLflow", "ratio", "target", "result"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    labels = {"a1": f"A1 {runs} runs x 15 calls", "a2": f"A2 {calls} log_metric",
              "a3": f"A3 {points} points, one batch"}
    labels.update({f"a4_{s}": f"A4 search over {s:,} runs" for s in sizes})
    for key, label in labels.items():
        r = ratio(theirs[key], ours[key])
        target = TARGETS["a4"] if key.startswith("a4") else TARGETS[key]
        table.add_row(label, f"{ours[key]:.4f}", f"{theirs[key]:.4f}", f"{r:,.1f}x",
                      f">= {target}x", "[green]pass" if r >= target else "[red]miss")
    for key in ("a1", "a2"):
        r = ratio(theirs[key], durable[key])
        table.add_row(f"{labels[key]}, keel with KEEL_DURABILITY=fsync", f"{durable[key]:.4f}",
                      f"{theirs[key]:.4f}", f"{r:,.1f}x", "-", "-")
    cost = ours["log_metric_us"]
    table.add_row("L median log_metric (caller)", f"{cost:.2f} us", "-", "-", "<= 10 us",
                  "[green]pass" if cost <= 10 else "[red]miss")
    console.print(table)
    console.print("Durability: MLflow fsyncs every call (SQLite defaults); keel's default "
                  "survives a killed process but not a power loss; the fsync rows give keel "
                  "the power-loss guarantee at 50 ms batch granularity.")


if __name__ == "__main__":
    main()
