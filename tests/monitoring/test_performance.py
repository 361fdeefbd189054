"""Performance from labelled predictions: the figures and their intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, roc_auc_score

from keel.monitoring.performance import performance, wilson


def log(prediction: np.ndarray, label: np.ndarray, version: str = "churn/1") -> pd.DataFrame:
    return pd.DataFrame({"model_version": version, "prediction": prediction,
                         "label": pd.Series(label, dtype=object)})


def by_metric(rows: list[dict]) -> dict[str, dict]:
    return {r["metric"]: r for r in rows}


def test_class_predictions_give_accuracy_and_f1_with_intervals() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 2000)
    predicted = np.where(rng.random(2000) < 0.85, truth, 1 - truth)
    found = by_metric(performance(log(predicted, truth)))
    assert found["accuracy"]["value"] == pytest.approx(accuracy_score(truth, predicted))
    assert found["f1"]["value"] == pytest.approx(f1_score(truth, predicted))
    for metric in ("accuracy", "f1"):
        assert found[metric]["low"] < found[metric]["value"] < found[metric]["high"]
        assert found[metric]["high"] - found[metric]["low"] < 0.06
    assert found["accuracy"]["n"] == 2000


def test_probabilities_add_auc_and_threshold_at_one_half() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 3000)
    scores = np.clip(truth * 0.3 + rng.random(3000) * 0.7, 0, 1)
    found = by_metric(performance(log(scores, truth)))
    assert found["auc"]["value"] == pytest.approx(roc_auc_score(truth, scores))
    assert found["accuracy"]["value"] == pytest.approx(accuracy_score(truth, scores >= 0.5))


def test_regression_gives_mae_and_rmse_per_version_and_skips_unlabelled_rows() -> None:
    rng = np.random.default_rng(2)
    truth = rng.normal(size=500)
    frame = pd.concat([log(truth + rng.normal(0, 0.5, 500), truth, "house/1"),
                       log(truth + rng.normal(0, 1.0, 500), truth, "house/2")])
    frame.loc[frame.index[:10], "label"] = None
    rows = performance(frame)
    mae = {r["version"]: r for r in rows if r["metric"] == "mae"}
    assert mae["house/1"]["value"] < mae["house/2"]["value"]
    assert mae["house/1"]["n"] == 490
    first = frame[frame.model_version == "house/1"].dropna(subset=["label"])
    assert mae["house/1"]["value"] == pytest.approx(
        mean_absolute_error(first.label.astype(float), first.prediction))
    assert {r["metric"] for r in rows} == {"mae", "rmse"}


def test_no_labels_means_no_figures_and_wilson_is_bounded() -> None:
    assert performance(log(np.array([1, 0]), np.array([None, None]))) == []
    low, high = wilson(10, 10)
    assert low is not None and high == pytest.approx(1.0) and 0.6 < low < 0.8
