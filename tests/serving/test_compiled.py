"""Plain numpy predict gives exactly scikit-learn's predictions, or is not used."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from keel.serving.compiled import compile_predict


@pytest.mark.parametrize("make", [
    lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    lambda: LogisticRegression(max_iter=500),
    lambda: make_pipeline(StandardScaler(with_mean=False), SGDClassifier(random_state=0)),
    lambda: make_pipeline(StandardScaler(), "passthrough", LogisticRegression(max_iter=500)),
], ids=["scaled-logistic", "logistic", "sgd", "passthrough"])
@pytest.mark.parametrize("classes", [2, 4])
def test_classifiers_predict_exactly_what_scikit_learn_predicts(make, classes: int) -> None:
    X, y = make_classification(n_samples=600, n_features=12, n_informative=6,
                               n_classes=classes, random_state=classes)
    model = make().fit(X, np.array(["a", "b", "c", "d"])[y])
    compiled = compile_predict(model)
    assert compiled is not None
    probe = np.random.default_rng(1).normal(0, 3, (2_000, 12))
    assert np.array_equal(compiled(probe), model.predict(probe))


@pytest.mark.parametrize("make", [LinearRegression, Ridge,
                                  lambda: make_pipeline(StandardScaler(), Ridge())])
def test_regressors_predict_the_very_same_values(make) -> None:
    X, y = make_regression(n_samples=500, n_features=8, n_targets=1, random_state=3)
    model = make().fit(X, y)
    compiled = compile_predict(model)
    assert compiled is not None
    probe = np.random.default_rng(2).normal(0, 2, (1_000, 8))
    assert np.array_equal(compiled(probe), model.predict(probe))


def test_what_it_does_not_know_is_left_to_scikit_learn() -> None:
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    assert compile_predict(RandomForestClassifier(n_estimators=3).fit(X, y)) is None
    assert compile_predict(make_pipeline(MinMaxScaler(), LogisticRegression()).fit(X, y)) \
        is None


def test_nan_and_infinity_are_refused_as_scikit_learn_refuses_them() -> None:
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    compiled = compile_predict(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y))
    assert compiled is not None
    for bad in (np.nan, np.inf):
        rows = X[:3].copy()
        rows[1, 2] = bad
        with pytest.raises(ValueError, match="NaN or infinity"):
            compiled(rows)
