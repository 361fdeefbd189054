"""keel: one tool for the machine-learning lifecycle.

>>> import keel
>>> with keel.start_run(experiment="churn", params={"lr": 0.1}) as run:
...     run.log_metric("loss", 0.25)
"""

from typing import Any

from keel.entities import Artifact, DatasetVersion, Experiment, MetricPoint, Run
from keel.errors import KeelError
from keel.tracking.api import (
    active_run,
    create_experiment,
    delete_run,
    download_artifacts,
    end_run,
    flush,
    get_experiment,
    get_metric_history,
    get_run,
    list_artifacts,
    log_artifact,
    log_dataset,
    log_dict,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    recover,
    restore_run,
    search_runs,
    set_tag,
    set_tags,
    start_run,
    use_dataset,
)
from keel.tracking.run import ActiveRun


def load_model(uri: str, trust: bool = False, trusted_types: tuple[str, ...] = ()) -> Any:
    """Load a model package: ``models:/churn@champion``, ``models:/churn/3``,
    ``runs:/<run id>/model`` or a package folder (see :mod:`keel.models`)."""
    from keel.models.load import load_model as _load

    return _load(uri, trust=trust, trusted_types=trusted_types)


def autolog(disable: bool = False, log_models: bool = True) -> None:
    """Log scikit-learn fits (params, training metrics, model, data digest)."""
    from keel.models.autolog import autolog as _autolog

    _autolog(disable=disable, log_models=log_models)

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Artifact",
    "DatasetVersion",
    "Experiment",
    "KeelError",
    "MetricPoint",
    "Run",
    "__version__",
    "active_run",
    "autolog",
    "create_experiment",
    "delete_run",
    "download_artifacts",
    "end_run",
    "flush",
    "get_experiment",
    "get_metric_history",
    "get_run",
    "list_artifacts",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_dict",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "recover",
    "restore_run",
    "search_runs",
    "set_tag",
    "set_tags",
    "start_run",
    "use_dataset",
]


def __getattr__(name: str) -> Any:
    # keel.models / keel.data / keel.packaging on first use: `import keel`
    # stays free of scikit-learn and pyarrow.
    if name in ("models", "data", "packaging"):
        import importlib

        return importlib.import_module(f"keel.{name}")
    raise AttributeError(f"module 'keel' has no attribute {name!r}")
