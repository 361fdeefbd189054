"""Evaluation plots as PNG bytes (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _figure().close(fig)
    return buffer.getvalue()


def confusion_matrix_png(y_true: Any, y_pred: Any, labels: list[Any]) -> bytes:
    """A labelled confusion matrix, counts in each cell."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), [str(x) for x in labels])
    ax.set_yticks(range(len(labels)), [str(x) for x in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black")
    ax.set_title("confusion matrix")
    return _png(fig)


def calibration_png(y_true: Any, proba: Any, positive: Any) -> bytes:
    """Predicted probability against observed frequency (10 bins)."""
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(np.asarray(y_true) == positive, proba, n_bins=10)
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title("calibration")
    ax.legend()
    return _png(fig)


def residuals_png(y_true: Any, y_pred: Any) -> bytes:
    """Residuals against predictions: structure here means a biased model."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(y_pred, y_true - y_pred, s=8, alpha=0.6)
    ax.axhline(0, color="grey", linestyle="--")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual - predicted")
    ax.set_title("residuals")
    return _png(fig)
