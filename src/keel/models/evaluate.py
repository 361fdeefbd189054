"""Evaluate a model on a table: standard metrics, per-slice metrics, plots,
stored as an evaluation run linked to the model version and the data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from keel.errors import InvalidInput
from keel.models import plots
from keel.models.load import load_model
from keel.models.metrics import classification_metrics, regression_metrics
from keel.models.registry import resolve
from keel.models.table import read_table, split_label
from keel.packaging.model import PackagedModel
from keel.workspace import Workspace, resolve_workspace

EVALUATION_EXPERIMENT = "model-evaluations"
MAX_SLICES = 50  # per column; more values than this are not a slice but an id


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation found, and the run that stores it."""

    model: str                    # churn/4, or the URI when not registered
    data: str
    label: str
    rows: int
    metrics: dict[str, float]
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    plots: tuple[str, ...] = ()
    run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "label": self.label, "rows": self.rows,
                "metrics": self.metrics, "slices": self.slices, "plots": list(self.plots),
                "run_id": self.run_id}


def evaluate(model: str, data: str, label: str | None = None,
             slice_by: list[str] | tuple[str, ...] = (), trust: bool = False,
             ws: Workspace | None = None) -> Evaluation:
    """Score ``model`` (any model reference) on ``data`` (``holdout@3`` or a file).

    >>> keel.models.evaluate("churn/4", "holdout@3", label="churned", slice_by=["region"])
    """
    from keel.tracking.api import start_run

    ws = resolve_workspace(ws)
    resolved = resolve(model, ws)
    loaded = load_model(model, trust=trust, ws=ws)
    table = read_table(data, ws)
    columns = loaded.signature.names
    features, y_true, label = split_label(table.frame, label, columns)
    for column in slice_by:
        if column not in table.frame.columns:
            raise InvalidInput(f"slice column {column!r} is not in the data",
                               hint="columns: " + ", ".join(map(str, table.frame.columns[:20])))
    if columns:  # columns the model does not take (ids, slice keys) are left out
        features = features[[c for c in features.columns if str(c) in columns]]
    scores = _score(loaded, features, y_true)
    slices = {column: _slice_metrics(loaded, features, y_true, table.frame[column])
              for column in slice_by}
    label_of_model = resolved.label
    with start_run(experiment=EVALUATION_EXPERIMENT, name=f"evaluate {label_of_model}",
                        nested=False, ws=ws,
                        tags={"keel.kind": "evaluation", "keel.model": label_of_model,
                              "keel.model.package": resolved.package_digest},
                        params={"model": label_of_model, "data": data, "label": label,
                                "slice_by": ",".join(slice_by) or "-",
                                "data.digest": table.digest}) as run:
        if table.version is not None:
            ws.store.link_run_dataset(run.id, table.version.id, "input")
        run.log_metrics(scores)
        for column, groups in slices.items():
            for value, found in groups.items():
                run.log_metrics({f"slice/{column}={value}/{k}": v for k, v in found.items()})
        stored = _plots(run, loaded, features, y_true)
        result = Evaluation(label_of_model, data, label, len(features), scores, slices,
                            stored, run.id)
        run.log_dict(result.to_dict(), "evaluation.json")
    return result


def _score(model: PackagedModel, features: pd.DataFrame, y_true: pd.Series) -> dict[str, float]:
    predictions = model.predict(features)
    if model.task == "regression":
        return regression_metrics(y_true, predictions)
    proba = None
    if model.task == "classification":
        proba = model.predict_proba(features)
    return classification_metrics(y_true, predictions, proba, model.classes)


def _slice_metrics(model: PackagedModel, features: pd.DataFrame, y_true: pd.Series,
                   key: pd.Series) -> dict[str, dict[str, float]]:
    counts = key.value_counts(dropna=False)
    if len(counts) > MAX_SLICES:
        raise InvalidInput(f"column {key.name!r} has {len(counts)} distinct values",
                           hint=f"slice by a column with at most {MAX_SLICES} groups "
                                "(a region, a segment), not an id")
    out: dict[str, dict[str, float]] = {}
    for value in counts.index:
        mask = (key.isna() if pd.isna(value) else key == value).to_numpy()
        found = _score(model, features[mask], y_true[mask])
        out[str(value)] = {**found, "rows": float(mask.sum())}
    return out


def _plots(run: Any, model: PackagedModel, features: pd.DataFrame, y_true: pd.Series
           ) -> tuple[str, ...]:
    predictions = model.predict(features)
    made: dict[str, bytes] = {}
    if model.task == "regression":
        made["plots/residuals.png"] = plots.residuals_png(y_true, predictions)
    else:
        labels = list(model.classes) if model.classes else sorted(set(np.asarray(y_true)))
        made["plots/confusion_matrix.png"] = plots.confusion_matrix_png(y_true, predictions,
                                                                        labels)
        if model.task == "classification" and len(labels) == 2 and y_true.nunique() == 2:
            proba = model.predict_proba(features)[:, 1]
            made["plots/calibration.png"] = plots.calibration_png(y_true, proba, labels[1])
    for path, png in made.items():
        run.log_bytes(png, path)
    return tuple(made)
