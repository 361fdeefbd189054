"""keel: one tool for the machine-learning lifecycle.

>>> import keel
>>> with keel.start_run(experiment="churn", params={"lr": 0.1}) as run:
...     run.log_metric("loss", 0.25)

Every name below is loaded on first use (PEP 562): ``import keel`` costs a
few milliseconds and loads no database driver, pandas, scikit-learn or web
framework, so ``keel --help`` and short scripts start at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from keel.entities import Artifact, DatasetVersion, Experiment, MetricPoint, Run
    from keel.errors import KeelError
    from keel.monitoring.drift import drift
    from keel.pipelines.inputs import dataset
    from keel.pipelines.pipeline import pipeline
    from keel.pipelines.step import step
    from keel.pipelines.sweep import sweep
    from keel.serving.inference_log import inference_log
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
        params,
        recover,
        restore_run,
        search_runs,
        set_tag,
        set_tags,
        start_run,
        use_dataset,
    )
    from keel.tracking.run import ActiveRun
    from keel.workspace import Workspace, use_workspace

__version__ = "0.1.0"

# name -> the module that defines it
_LAZY = {
    **dict.fromkeys(("Artifact", "DatasetVersion", "Experiment", "MetricPoint", "Run"),
                    "keel.entities"),
    "KeelError": "keel.errors",
    "drift": "keel.monitoring.drift",
    "ActiveRun": "keel.tracking.run",
    **dict.fromkeys(("step", "pipeline", "dataset", "sweep"), "keel.pipelines"),
    "Workspace": "keel.workspace",
    "inference_log": "keel.serving.inference_log",
    "use_workspace": "keel.workspace",
    **dict.fromkeys((
        "active_run", "create_experiment", "delete_run", "download_artifacts", "end_run",
        "flush", "get_experiment", "get_metric_history", "get_run", "list_artifacts",
        "log_artifact", "log_dataset", "log_dict", "log_metric", "log_metrics", "log_param",
        "log_params", "log_text", "params", "recover", "restore_run", "search_runs", "set_tag",
        "set_tags", "start_run", "use_dataset"), "keel.tracking.api"),
}
_SUBPACKAGES = ("data", "models", "packaging", "pipelines", "gc", "serving", "monitoring")


def load_model(uri: str, trust: bool = False, trusted_types: tuple[str, ...] = (),
               ws: Workspace | None = None) -> Any:
    """Load a model package: ``models:/churn@champion``, ``models:/churn/3``,
    ``runs:/<run id>/model`` or a package folder (see :mod:`keel.models`)."""
    from keel.models.load import load_model as _load

    return _load(uri, trust=trust, trusted_types=trusted_types, ws=ws)


def autolog(disable: bool = False, log_models: bool = True, ws: Workspace | None = None) -> None:
    """Log scikit-learn fits (params, training metrics, model, data digest)."""
    from keel.models.autolog import autolog as _autolog

    _autolog(disable=disable, log_models=log_models, ws=ws)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"keel.{name}")
    raise AttributeError(f"module 'keel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, *_SUBPACKAGES])


__all__ = [
    "ActiveRun",
    "Artifact",
    "DatasetVersion",
    "Experiment",
    "KeelError",
    "MetricPoint",
    "Run",
    "Workspace",
    "__version__",
    "active_run",
    "autolog",
    "create_experiment",
    "dataset",
    "delete_run",
    "download_artifacts",
    "drift",
    "end_run",
    "flush",
    "get_experiment",
    "get_metric_history",
    "get_run",
    "inference_log",
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
    "params",
    "pipeline",
    "recover",
    "restore_run",
    "search_runs",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
    "sweep",
    "use_dataset",
    "use_workspace",
]
