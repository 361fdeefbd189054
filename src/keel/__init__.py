"""keel: one tool for the machine-learning lifecycle.

>>> import keel
>>> with keel.start_run(experiment="churn", params={"lr": 0.1}) as run:
...     run.log_metric("loss", 0.25)
"""

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
    "create_experiment",
    "delete_run",
    "download_artifacts",
    "end_run",
    "flush",
    "get_experiment",
    "get_metric_history",
    "get_run",
    "list_artifacts",
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
