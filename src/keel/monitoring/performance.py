"""Model quality from the inference log once labels arrive, per version, with
confidence intervals.

Classification: accuracy (Wilson score interval) and F1 of the positive class
(binary labels; bootstrap interval); when the model answers with
probabilities of the positive class, AUC too (bootstrap), and accuracy and F1
at the 0.5 threshold. Regression: MAE and RMSE (bootstrap
intervals). The bootstrap draws 200 resamples of at most 20,000 labelled rows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

Z95 = 1.959963984540054
RESAMPLES = 200
BOOTSTRAP_ROWS = 20_000


def performance(log: pd.DataFrame, task: str | None = None) -> list[dict[str, Any]]:
    """Per model version and metric: ``{version, metric, value, low, high, n}``
    from the rows of ``log`` that have a label (none: an empty list)."""
    if "label" not in log.columns or log.empty:
        return []
    labelled = log[log["label"].notna()]
    if labelled.empty:
        return []
    out: list[dict[str, Any]] = []
    for version, rows in labelled.groupby("model_version", sort=True):
        truth, predicted = rows["label"].to_numpy(), rows["prediction"].to_numpy()
        kind = task or task_of(truth)
        metrics = _classification(truth, predicted) if kind == "classification" \
            else _regression(truth, predicted)
        for metric, (value, low, high) in metrics.items():
            out.append({"version": str(version), "metric": metric, "value": value,
                        "low": low, "high": high, "n": len(rows)})
    return out


def task_of(labels: np.ndarray) -> str:
    """Classification when labels are text/bool or few whole numbers, else regression."""
    try:
        values = labels.astype(np.float64)
    except (TypeError, ValueError):
        return "classification"
    whole = np.all(np.isfinite(values)) and np.all(values == np.round(values))
    return "classification" if whole and len(np.unique(values)) <= 20 else "regression"


def _classification(truth: np.ndarray, predicted: np.ndarray
                    ) -> dict[str, tuple[float, float | None, float | None]]:
    truth, predicted = _same_type(truth), _same_type(predicted)
    scores = predicted if _probabilities(truth, predicted) else None
    if scores is not None:
        predicted = (scores >= 0.5).astype(np.float64)
    correct = truth == predicted
    n = len(correct)
    accuracy = float(correct.mean())
    out: dict[str, tuple[float, float | None, float | None]] = {
        "accuracy": (accuracy, *wilson(int(correct.sum()), n))}
    classes = np.unique(truth)
    if len(classes) <= 2:
        positive = classes.max() if len(classes) else 1
        out["f1"] = _bootstrap(lambda i: _f1(truth[i], predicted[i], positive), n)
    if scores is not None and len(classes) == 2:
        out["auc"] = _bootstrap(lambda i: _auc(truth[i] == classes.max(), scores[i]), n)
    return out


def _probabilities(truth: np.ndarray, predicted: np.ndarray) -> bool:
    """Scores in [0, 1] that are not all whole numbers, against 0/1 labels."""
    if predicted.dtype.kind != "f" or truth.dtype.kind != "f":
        return False
    return bool(set(np.unique(truth)) <= {0.0, 1.0} and np.all((predicted >= 0)
                & (predicted <= 1)) and np.any(predicted != np.round(predicted)))


def _auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by ranks (Mann-Whitney U), ties averaged."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _regression(truth: np.ndarray, predicted: np.ndarray
                ) -> dict[str, tuple[float, float | None, float | None]]:
    errors = predicted.astype(np.float64) - truth.astype(np.float64)
    n = len(errors)
    return {"mae": _bootstrap(lambda i: float(np.mean(np.abs(errors[i]))), n),
            "rmse": _bootstrap(lambda i: float(np.sqrt(np.mean(errors[i] ** 2))), n)}


def _same_type(values: np.ndarray) -> np.ndarray:
    # Labels arrive as JSON (1, 1.0 or "1"); compare as numbers where they are.
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        return values.astype(str)


def _f1(truth: np.ndarray, predicted: np.ndarray, positive: Any) -> float:
    tp = float(np.sum((predicted == positive) & (truth == positive)))
    fp = float(np.sum((predicted == positive) & (truth != positive)))
    fn = float(np.sum((predicted != positive) & (truth == positive)))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def wilson(successes: int, n: int) -> tuple[float | None, float | None]:
    """The 95% Wilson score interval of a proportion."""
    if n == 0:
        return None, None
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _bootstrap(metric: Any, n: int) -> tuple[float, float | None, float | None]:
    value = metric(np.arange(n))
    if n < 2:
        return value, None, None
    rng = np.random.default_rng(0)
    size = min(n, BOOTSTRAP_ROWS)
    draws = [metric(rng.integers(0, n, size)) for _ in range(RESAMPLES)]
    low, high = np.quantile(draws, [0.025, 0.975])
    # Resamples smaller than the data spread wider than the data's own
    # interval; the spread shrinks with the square root of the size.
    shrink = math.sqrt(size / n)
    return value, float(value - (value - low) * shrink), float(value + (high - value) * shrink)
