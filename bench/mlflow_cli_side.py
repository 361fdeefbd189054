"""MLflow's set-up for bench/cli.py; runs in bench/.venv-mlflow.

Usage: python mlflow_cli_side.py WORKDIR RUNS TRAIN_CSV

Seeds WORKDIR/mlflow.db with RUNS finished runs (two params, two metrics each,
as keel's side gets), logs a scikit-learn model trained on TRAIN_CSV, and
prints {"experiment_id": ..., "model_uri": ...} as JSON. The timed commands
are run by bench/cli.py itself, as whole processes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings


def main() -> None:
    workdir, runs, train_csv = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.chdir(workdir)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import mlflow
    import pandas as pd
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    client = MlflowClient()
    exp_id = client.create_experiment("bench")
    for i in range(runs):
        run = client.create_run(exp_id, run_name=f"run-{i}")
        client.log_batch(run.info.run_id,
                         params=[Param("lr", str(i)), Param("depth", str(i % 7))],
                         metrics=[Metric("acc", 0.5, 0, 0), Metric("loss", 0.5, 0, 0)])
        client.set_terminated(run.info.run_id)
    frame = pd.read_csv(train_csv)
    X, y = frame.drop(columns=["target"]), frame["target"]
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.sklearn.log_model(LogisticRegression(max_iter=5000).fit(X, y), name="model",
                                 input_example=X[:5])
    print(json.dumps({"experiment_id": exp_id, "model_uri": f"runs:/{run.info.run_id}/model"}))


if __name__ == "__main__":
    main()
