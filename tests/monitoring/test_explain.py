"""Model explanations as a user checks them: a model that leans on x1, a little on
x2 and not on x3 is explained that way, and a drift in x1 (not x3) is named as
what moved its predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import keel
import keel.data
import keel.models
from keel.errors import InvalidInput
from keel.monitoring.explain import (
    drift_attribution,
    importance_report,
    permutation_importance,
    version_importance,
)


def synthetic(rows: int, seed: int, shift: dict[str, float] | None = None
              ) -> tuple[pd.DataFrame, np.ndarray]:
    """y depends strongly on x1, weakly on x2, not at all on x3."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["x1", "x2", "x3"])
    for column, by in (shift or {}).items():
        frame[column] += by
    p = 1 / (1 + np.exp(-(3.0 * frame["x1"] + 0.8 * frame["x2"])))
    return frame, (rng.random(rows) < p).astype(int)


@pytest.fixture(scope="module")
def model() -> Any:
    from sklearn.linear_model import LogisticRegression

    frame, y = synthetic(3000, 0)
    return LogisticRegression().fit(frame, y)


def test_importance_ranks_the_features_the_model_uses(model: Any) -> None:
    frame, y = synthetic(2000, 1)
    found = permutation_importance(model.predict, frame, y)
    assert list(found) == ["x1", "x2", "x3"]
    assert found["x1"] > 0.2 and found["x2"] > 0.01
    assert abs(found["x3"]) < 0.01


def test_importance_of_a_model_object_uses_auc_and_is_reproducible(model: Any) -> None:
    frame, y = synthetic(2000, 1)
    found = permutation_importance(model, frame, pd.Series(y))
    assert list(found) == ["x1", "x2", "x3"] and abs(found["x3"]) < 0.01
    assert permutation_importance(model, frame, y) == found
    assert permutation_importance(model, frame, y, metric="accuracy") != found


def test_importance_of_a_regressor_with_rmse() -> None:
    from sklearn.linear_model import LinearRegression

    frame, _ = synthetic(1000, 2)
    y = 4 * frame["x1"] + frame["x2"] + np.random.default_rng(3).normal(scale=0.1, size=1000)
    regressor = LinearRegression().fit(frame, y)
    by_r2 = permutation_importance(regressor.predict, frame, y)
    by_rmse = permutation_importance(regressor.predict, frame, y, metric="rmse")
    assert list(by_r2) == list(by_rmse) == ["x1", "x2", "x3"]
    assert by_rmse["x1"] > 1 and abs(by_rmse["x3"]) < 0.01  # rmse rises: a positive drop


def test_importance_refuses_mismatched_labels_and_unknown_metrics(model: Any) -> None:
    frame, y = synthetic(100, 1)
    with pytest.raises(InvalidInput, match="99 values for 100 rows"):
        permutation_importance(model.predict, frame, y[:99])
    with pytest.raises(InvalidInput, match="unknown metric 'f2'") as raised:
        permutation_importance(model.predict, frame, y, metric="f2")
    assert raised.value.hint and "accuracy" in raised.value.hint


def test_drift_in_x1_is_attributed_to_x1(model: Any) -> None:
    reference, _ = synthetic(2000, 1)
    current, _ = synthetic(2000, 2, shift={"x1": 1.0})
    found = drift_attribution(model.predict, reference, current)
    assert next(iter(found)) == "x1" and found["x1"] > 0.6
    assert sum(found.values()) == pytest.approx(1.0)


def test_no_drift_or_drift_the_model_ignores_is_no_movement(model: Any) -> None:
    reference, _ = synthetic(2000, 1)
    unchanged, _ = synthetic(2000, 2)
    in_x3, _ = synthetic(2000, 3, shift={"x3": 1.5})
    for current in (unchanged, in_x3):
        for predict in (model.predict, model):  # labels, and probabilities
            assert drift_attribution(predict, reference, current) == \
                {"x1": 0.0, "x2": 0.0, "x3": 0.0}


def test_categorical_columns_are_explained() -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    def rows(n: int, seed: int, north: float) -> tuple[pd.DataFrame, np.ndarray]:
        rng = np.random.default_rng(seed)
        region = np.where(rng.random(n) < north, "north", rng.choice(["south", "east"], n))
        frame = pd.DataFrame({"region": region, "x3": rng.normal(size=n)})
        return frame, (rng.random(n) < np.where(region == "north", 0.9, 0.1)).astype(int)

    frame, y = rows(2000, 0, 0.3)
    pipe = make_pipeline(make_column_transformer((OneHotEncoder(), ["region"]),
                                                 remainder="passthrough"),
                         LogisticRegression()).fit(frame, y)
    found = permutation_importance(pipe.predict, frame, y)
    assert list(found) == ["region", "x3"] and found["region"] > 0.3
    moved = drift_attribution(pipe.predict, frame, rows(2000, 1, 0.8)[0])
    assert moved["region"] > 0.9


def test_a_model_refusing_missing_values_names_the_column(model: Any) -> None:
    reference, _ = synthetic(200, 1)
    current, _ = synthetic(200, 2)
    current.loc[5, "x2"] = np.nan
    with pytest.raises(InvalidInput, match="could not score the current data") as raised:
        drift_attribution(model.predict, reference, current)
    assert raised.value.hint and "x2" in raised.value.hint
    with pytest.raises(InvalidInput, match="lacks column"):
        drift_attribution(model.predict, reference, current, features=["x1", "x9"])


# -- registered versions --------------------------------------------------------------


def registered_model(folder: Path) -> str:
    """A workspace in ``folder`` with model clf/1 (trained on synthetic rows) and
    dataset holdout@1 (x1, x2, x3, y and an id column the model does not take)."""
    from sklearn.linear_model import LogisticRegression

    keel.Workspace.open(folder, create=True).close()
    train, y = synthetic(2000, 0)
    clf = LogisticRegression().fit(train, y)
    holdout, y_holdout = synthetic(1000, 1)
    (folder / "holdout").mkdir()
    holdout.assign(y=y_holdout, id=range(1000)).to_csv(folder / "holdout" / "rows.csv",
                                                       index=False)
    keel.data.add(folder / "holdout", "holdout", "held-out rows")
    with keel.start_run(experiment="explain") as run:
        uri = run.log_model(clf, "model", input_example=train[:5])
    return keel.models.register(uri, "clf").ref


def test_version_importance_is_cached_on_the_version(tmp_path: Path) -> None:
    ref = registered_model(tmp_path)
    first = importance_report(ref, "holdout@1", "y")
    assert list(first.importance) == ["x1", "x2", "x3"] and not first.cached
    assert first.metric == "auc" and first.rows == 1000
    assert abs(first.importance["x3"]) < 0.01

    tags = keel.models.get_version(ref).tags
    cache = {k: v for k, v in tags.items() if k.startswith("keel.importance/")}
    assert len(cache) == 1
    with keel.Workspace.open(tmp_path) as ws:
        stored = json.loads(ws.blobs.get_bytes(next(iter(cache.values()))))
    assert stored["report"]["importance"] == first.importance

    again = importance_report("models:/clf@latest", "holdout@1", "y")
    assert again.cached and again.importance == first.importance
    assert version_importance(ref, "holdout@1", "y") == first.importance
    # The cache was written once (an audited tag); the reads added nothing.
    with keel.Workspace.open(tmp_path) as ws:
        events = ws.store.model_history("clf")
    assert [(e.action, (e.reason or "").split("=")[0]) for e in events] == \
        [("register", ""), ("tag", next(iter(cache)))]

    other = importance_report(ref, "holdout@1", "y", repeats=2)
    assert not other.cached and list(other.importance) == ["x1", "x2", "x3"]


def test_version_importance_errors_name_the_fix(tmp_path: Path) -> None:
    ref = registered_model(tmp_path)
    with pytest.raises(InvalidInput, match="label column 'churned' is not in the data") as bad:
        version_importance(ref, "holdout@1", "churned")
    assert bad.value.hint and "x1" in bad.value.hint and "y" in bad.value.hint

    pd.DataFrame({"x1": [0.1, 0.2], "y": [0, 1]}).to_csv(tmp_path / "narrow.csv", index=False)
    with pytest.raises(InvalidInput, match="lacks column\\(s\\) 'x2', 'x3'") as narrow:
        version_importance(ref, str(tmp_path / "narrow.csv"), "y")
    assert narrow.value.hint and "table(x1: float" in narrow.value.hint

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no table here")
    keel.data.add(tmp_path / "notes", "notes")
    with pytest.raises(InvalidInput, match="notes@1 holds no CSV or Parquet file") as empty:
        version_importance(ref, "notes@1", "y")
    assert empty.value.hint and "readme.txt" in empty.value.hint


def test_gc_keeps_cached_importance(tmp_path: Path) -> None:
    from keel.gc import collect
    from keel.tracking import session

    ref = registered_model(tmp_path)
    first = importance_report(ref, "holdout@1", "y")
    collect(session.workspace(), older_than_s=0, grace_s=0)
    again = importance_report(ref, "holdout@1", "y")
    assert again.cached and again.importance == first.importance
