"""MLflow's half of bench/serving.py; runs in bench/.venv-mlflow.

Usage: python mlflow_serving_side.py WORKDIR TABLE.csv

Trains the benchmark's model (StandardScaler + LogisticRegression) on the
table, logs and registers it as ``bench-serving`` in a SQLite store in
WORKDIR, and prints ``{"uri": ..., "tracking_uri": ...}`` as its last line.
bench/serving.py then starts ``mlflow models serve`` on that URI.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path

os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"


def main(workdir: Path, table: Path) -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking)
    frame = pd.read_csv(table)
    X, y = frame.drop(columns=["target"]), frame["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    mlflow.set_experiment("bench-serving")
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name="model", input_example=X[:5],
                                 registered_model_name="bench-serving",
                                 skops_trusted_types=trusted or None)
    version = mlflow.MlflowClient().get_latest_versions("bench-serving")[0].version
    print(json.dumps({"uri": f"models:/bench-serving/{version}", "tracking_uri": tracking,
                      "mlflow": mlflow.__version__}))


if __name__ == "__main__":
    os.chdir(sys.argv[1])
    main(Path(sys.argv[1]), Path(sys.argv[2]))
