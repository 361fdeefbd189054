"""The standard metrics of classifiers and regressors, and which way is better."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Metrics where a smaller value is better; every other metric is "higher is better".
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "mse", "rmse", "brier", "mape", "error_rate"})


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is an improvement."""
    return metric.rsplit("/", 1)[-1] not in LOWER_IS_BETTER


def classification_metrics(y_true: Any, y_pred: Any, proba: np.ndarray | None,
                           classes: list[Any] | None) -> dict[str, float]:
    """accuracy, precision, recall, f1 and, with probabilities, auc and log_loss."""
    from sklearn import metrics as m

    y_true = np.asarray(y_true)
    labels = list(classes) if classes is not None else sorted(set(y_true) | set(y_pred))
    binary = len(labels) == 2
    average = "binary" if binary else "macro"
    kwargs: dict[str, Any] = {"pos_label": labels[1]} if binary else {}
    out = {
        "accuracy": m.accuracy_score(y_true, y_pred),
        "precision": m.precision_score(y_true, y_pred, average=average, zero_division=0,
                                       **kwargs),
        "recall": m.recall_score(y_true, y_pred, average=average, zero_division=0, **kwargs),
        "f1": m.f1_score(y_true, y_pred, average=average, zero_division=0, **kwargs),
    }
    present = set(y_true.tolist())
    if proba is not None and len(present) > 1 and present <= set(labels):
        if binary:
            out["auc"] = m.roc_auc_score(y_true == labels[1], proba[:, 1])
            out["brier"] = m.brier_score_loss(y_true == labels[1], proba[:, 1])
        elif present == set(labels):
            out["auc"] = m.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
        out["log_loss"] = m.log_loss(y_true, np.clip(proba, 1e-15, 1), labels=labels)
    return {k: float(v) for k, v in out.items()}


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """mae, rmse and r2."""
    from sklearn import metrics as m

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    out = {"mae": m.mean_absolute_error(y_true, y_pred),
           "rmse": math.sqrt(m.mean_squared_error(y_true, y_pred))}
    if len(y_true) > 1:
        out["r2"] = m.r2_score(y_true, y_pred)
    return {k: float(v) for k, v in out.items()}
