"""``keel.autolog()``: scikit-learn training logged in one line.

Every top-level ``fit`` of a scikit-learn estimator records its params,
training metrics, the fitted model (a verified package with its signature)
and the digest of the data it was fitted on, in the active run or in a new one.
Fits that a meta-estimator (Pipeline, GridSearchCV) makes inside its own fit
are not logged separately.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from contextvars import ContextVar
from typing import Any

import numpy as np

from keel.models.metrics import classification_metrics, regression_metrics
from keel.workspace import Workspace

# Patching a class is process-wide by nature, so autolog's switch and options
# are too. Which run or workspace a fit is recorded in is not: that comes from
# the context of the thread or task that calls fit (its active run, its
# keel.use_workspace), and only then from the workspace given to autolog().
_patched: dict[type, Any] = {}
_options: dict[str, Any] = {"log_models": True, "ws": None}
# How deep in nested fits this thread or task is (a Pipeline's steps fit inside it).
_depth: ContextVar[int] = ContextVar("keel_autolog_depth", default=0)
# Runs that already hold a logged fit (their params are write-once).
_logged_runs: weakref.WeakSet[Any] = weakref.WeakSet()


def autolog(disable: bool = False, log_models: bool = True, ws: Workspace | None = None) -> None:
    """Turn scikit-learn autologging on (or off with ``disable=True``).

    A fit is recorded in the active run of the thread or task that calls it;
    without one, in a new run of the workspace that context uses, else of
    ``ws``, else of the current folder.

    >>> keel.autolog()
    >>> RandomForestClassifier().fit(X, y)   # a run with params, metrics, model
    """
    if disable:
        for cls, original in _patched.items():
            setattr(cls, "fit", original)  # noqa: B010 - a class attribute mypy cannot see
        _patched.clear()
        _options.update(ws=None)
        return
    from sklearn.utils import all_estimators

    _options.update(log_models=log_models, ws=ws)
    for _name, cls in all_estimators():
        # fit is often inherited (RandomForestClassifier's lives on BaseForest):
        # patch the class that defines it; a super().fit() call is just a nested fit.
        owner = next((c for c in cls.__mro__ if "fit" in c.__dict__), None)
        if owner is not None and owner not in _patched:
            _patched[owner] = owner.__dict__["fit"]
            setattr(owner, "fit", _wrap(owner.__dict__["fit"]))  # noqa: B010


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth = _depth.get()
        # Inner fits (a Pipeline's steps, fits made while we compute metrics)
        # run at depth > 0 and are not logged on their own.
        token = _depth.set(depth + 1)
        try:
            result = original(self, *args, **kwargs)
            if depth == 0:
                X = args[0] if args else kwargs.get("X")
                y = args[1] if len(args) > 1 else kwargs.get("y")
                _log_fit(self, X, y)
        finally:
            _depth.reset(token)
        return result

    return fit


def _log_fit(estimator: Any, X: Any, y: Any) -> None:
    from keel import context
    from keel.tracking.api import active_run, start_run

    current = active_run()
    if current is not None and current not in _logged_runs:
        _logged_runs.add(current)
        _record(current, estimator, X, y)
        return
    # A second fit in the same run would clash with its write-once params:
    # give it a run of its own (a child of the active run, if any).
    ws = current.workspace if current is not None else \
        context.current_workspace() or _options["ws"]
    with start_run(name=f"{type(estimator).__name__}-autolog", ws=ws) as run:
        _logged_runs.add(run)
        _record(run, estimator, X, y)


def _record(run: Any, estimator: Any, X: Any, y: Any) -> None:
    try:
        run.set_tags({"keel.autolog": "sklearn", "keel.estimator": type(estimator).__name__})
        run.log_params(_params(estimator) | {"dataset.digest": dataset_digest(X, y),
                                             "dataset.rows": len(X)})
        run.log_metrics(_training_metrics(estimator, X, y))
        if _options["log_models"]:
            example = X.iloc[:5] if hasattr(X, "iloc") else np.asarray(X)[:5]
            run.log_model(estimator, "model", input_example=example)
    except Exception as exc:  # never break the user's training because logging failed
        warnings.warn(f"keel autolog could not record this fit: {exc}", stacklevel=3)


def _params(estimator: Any) -> dict[str, Any]:
    found = estimator.get_params(deep=True)
    return {k: v for k, v in found.items()
            if isinstance(v, bool | int | float | str | type(None)) and len(k) <= 200}


def _training_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn.base import is_classifier, is_regressor

    if y is None:
        return {}
    predictions = estimator.predict(X)
    if is_classifier(estimator):
        proba = estimator.predict_proba(X) if hasattr(estimator, "predict_proba") else None
        found = classification_metrics(y, predictions, proba,
                                        list(getattr(estimator, "classes_", [])) or None)
    elif is_regressor(estimator):
        found = regression_metrics(y, predictions)
    else:
        return {}
    return {f"training_{k}": v for k, v in found.items()}


def dataset_digest(X: Any, y: Any = None) -> str:
    """BLAKE3 of the training data's values and column names: the same data
    gives the same digest in any process."""
    import pandas as pd
    from blake3 import blake3

    hasher = blake3()
    for part in (X, y):
        if part is None:
            continue
        if isinstance(part, pd.DataFrame | pd.Series):
            names = list(part.columns) if isinstance(part, pd.DataFrame) else [part.name]
            hasher.update(repr(names).encode())
            hasher.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        else:
            array = np.ascontiguousarray(np.asarray(part))
            hasher.update(f"{array.dtype}{array.shape}".encode())
            if array.dtype == object:
                # Hash every element (pandas hashes strings and mixed objects by
                # value); repr() would elide the middle of arrays over 1,000 items.
                values = pd.util.hash_array(array.ravel())
                hasher.update(np.ascontiguousarray(values).tobytes())
            else:
                hasher.update(array.tobytes())
    return hasher.hexdigest()
