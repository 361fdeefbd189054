"""MLflow's half of bench/models.py; runs in bench/.venv-mlflow, prints JSON timings.

Usage: python mlflow_models_side.py STEP WORKDIR TABLE [args]   (see models.side_main)

The protocol is bench/models.py's own (it needs only numpy, pandas and
scikit-learn); this file supplies MLflow's log, register and load calls. The
tracking and registry store is SQLite in WORKDIR, artifacts under WORKDIR/mlruns.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

# Before mlflow is imported: MLflow 3.17 refuses to deserialise any scikit-learn
# model, skops ones included, unless this is set; telemetry would phone home.
os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import Tool, side_main


class MlflowTool(Tool):
    name = "mlflow"

    def import_tool(self) -> None:
        warnings.filterwarnings("ignore")
        logging.disable(logging.WARNING)
        import mlflow
        import mlflow.pyfunc
        import mlflow.sklearn

        mlflow.set_tracking_uri(f"sqlite:///{Path.cwd() / 'mlflow.db'}")

    def log_and_register(self, model: Any, name: str, example: Any) -> str:
        import mlflow
        import skops.io

        # skops (MLflow's default format) will not reload the trees' own types
        # unless the model declares them trusted; this is what MLflow's error asks for.
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        mlflow.set_experiment("bench")
        with mlflow.start_run():
            mlflow.sklearn.log_model(model, name="model", input_example=example,
                                     registered_model_name=name,
                                     skops_trusted_types=trusted or None)
        version = mlflow.MlflowClient().get_latest_versions(name)[0].version
        return f"models:/{name}/{version}"

    def load(self, uri: str) -> Any:
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(uri)

    def estimator(self, loaded: Any) -> Any:
        return loaded.get_raw_model()

    def versions(self) -> dict[str, str]:
        import mlflow
        import numpy
        import pandas
        import sklearn
        import skops

        return {"mlflow": mlflow.__version__, "scikit-learn": sklearn.__version__,
                "skops": skops.__version__, "pandas": pandas.__version__,
                "numpy": numpy.__version__}


if __name__ == "__main__":
    side_main(MlflowTool(), sys.argv[1:])
