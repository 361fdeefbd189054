"""MLflow's half of bench/tracking.py; runs in bench/.venv-mlflow, prints JSON timings.

Usage: python mlflow_side.py WORKDIR A1_RUNS A2_CALLS A3_POINTS SEARCH_SIZES
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
import warnings


def main() -> None:
    workdir, runs, calls, points, sizes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        int(sys.argv[4]), [int(s) for s in sys.argv[5].split(",")]
    os.chdir(workdir)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    mlflow.set_experiment("bench")
    with mlflow.start_run():  # warm-up: schema creation is not part of any workload
        mlflow.log_metric("warm", 1.0)
    result: dict[str, float] = {}

    started = time.perf_counter()
    for r in range(runs):
        with mlflow.start_run():
            for p in range(10):
                mlflow.log_param(f"p{p}", r * p)
            for m in range(5):
                mlflow.log_metric(f"m{m}", r * 0.1 + m)
    result["a1"] = time.perf_counter() - started

    started = time.perf_counter()
    with mlflow.start_run():
        for i in range(calls):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    result["a2"] = time.perf_counter() - started

    client = MlflowClient()
    started = time.perf_counter()
    with mlflow.start_run() as run:
        now = int(time.time() * 1000)
        client.log_batch(run.info.run_id,
                         metrics=[Metric("loss", 1.0 / (i + 1), now, i) for i in range(points)])
    result["a3"] = time.perf_counter() - started

    for size in sizes:
        exp = mlflow.create_experiment(f"search-{size}")
        now = int(time.time() * 1000)
        for i in range(size):  # populating is not timed: the fewest calls MLflow allows
            run_id = client.create_run(exp).info.run_id
            client.log_batch(run_id, metrics=[Metric("acc", (i * 7919 % size) / size, now, 0),
                                              Metric("loss", (i % 97) / 97, now, 0)])
        times = []
        for _ in range(5):
            started = time.perf_counter()
            found = client.search_runs([exp], "metrics.acc >= 0.5", order_by=["metrics.loss ASC"],
                                       max_results=100)
            times.append(time.perf_counter() - started)
        assert len(found) == min(100, size // 2)
        result[f"a4_{size}"] = statistics.median(times)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
