"""Plain numpy predict for the most common scikit-learn models.

A fitted scaler followed by a linear model is arithmetic on a few arrays, yet
``Pipeline.predict`` spends ~0.35 ms per call validating its input, computing
estimator tags and dispatching array APIs, whatever the number of rows: more
than half of a one-row request's time in ``keel serve``, and the whole
reason a 10% canary (its own model call in most event-loop turns) and a
shadow cost throughput. Here the same arithmetic, in the same order as
scikit-learn does it, costs ~10 us.

Only what is listed below is compiled, and a compiled predict is used only if
it gives exactly the predictions of the estimator itself (``fastpath.py``
checks that on the model's input example); anything else keeps scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Step = Callable[[np.ndarray], np.ndarray]

# Estimators whose predict is ``X @ coef_.T + intercept_`` (scikit-learn's
# LinearModel._decision_function), named rather than imported: importing
# scikit-learn here would cost every server start what it does not need.
_REGRESSORS = {"LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet",
               "ElasticNetCV", "SGDRegressor", "HuberRegressor", "BayesianRidge", "ARDRegression"}
# Estimators whose predict takes the class of the largest decision value
# (LinearClassifierMixin.predict).
_CLASSIFIERS = {"LogisticRegression", "LogisticRegressionCV", "RidgeClassifier",
                "RidgeClassifierCV", "SGDClassifier", "LinearSVC", "Perceptron"}


def compile_predict(estimator: Any) -> Step | None:
    """``estimator.predict`` on a float array as plain numpy, or None when the
    estimator (or a step of its pipeline) is not one compiled here."""
    steps = _pipeline_steps(estimator)
    if steps is None or not steps:
        return None
    *transforms, last = steps
    compiled = [_transform(t) for t in transforms]
    final = _predict(last)
    if final is None or any(t is None for t in compiled):
        return None
    chain = [t for t in compiled if t is not None]

    def predict(X: np.ndarray) -> np.ndarray:
        # scikit-learn refuses NaN and infinity in its input (the server answers
        # 500 for such a row); so does this, rather than predict from them.
        if not np.isfinite(X).all():
            raise ValueError("Input X contains NaN or infinity.")
        for transform in chain:
            X = transform(X)
        return final(X)

    return predict


def _pipeline_steps(estimator: Any) -> list[Any] | None:
    if type(estimator).__name__ != "Pipeline":
        return [estimator]
    steps = getattr(estimator, "steps", None)
    if not isinstance(steps, list):
        return None
    kept = [step for _name, step in steps if step is not None and step != "passthrough"]
    nested = [_pipeline_steps(step) for step in kept]
    if any(n is None for n in nested):
        return None
    return [s for n in nested if n is not None for s in n]


def _transform(step: Any) -> Step | None:
    if type(step).__name__ != "StandardScaler":
        return None
    mean = step.mean_ if step.with_mean else None
    scale = step.scale_ if step.with_std else None

    def standardise(X: np.ndarray) -> np.ndarray:
        # As StandardScaler.transform: on a copy, subtract, then divide.
        X = np.array(X, dtype=np.float64, copy=True)
        if mean is not None:
            X -= mean
        if scale is not None:
            X /= scale
        return X

    return standardise


def _predict(step: Any) -> Step | None:
    name = type(step).__name__
    coef = getattr(step, "coef_", None)
    intercept = getattr(step, "intercept_", None)
    if not isinstance(coef, np.ndarray) or intercept is None:
        return None
    weights = coef.T
    if name in _REGRESSORS:
        return lambda X: X @ weights + intercept
    classes = getattr(step, "classes_", None)
    if name not in _CLASSIFIERS or not isinstance(classes, np.ndarray):
        return None

    def classify(X: np.ndarray) -> np.ndarray:
        scores = X @ weights + intercept
        if scores.ndim > 1 and scores.shape[1] == 1:
            scores = scores.reshape(-1)
        indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        return classes.take(indices, axis=0)

    return classify
