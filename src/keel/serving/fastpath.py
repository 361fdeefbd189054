"""A faster predict for scikit-learn models fed all-float tables.

scikit-learn spends most of a one-row prediction checking the pandas
DataFrame it is given (feature names, dtypes, sparse accessors): ~0.6 ms of
~0.9 ms for a scaler + logistic regression pipeline (``bench/serving.py``).
Given a plain float array instead, it warns that feature names are missing.

So, when the model was fitted on exactly the signature's columns in the
signature's order (which ``Signature.enforce`` guarantees for every input), a
copy of the estimator with its recorded ``feature_names_in_`` removed is fed
a float array (``serving.payload`` lays JSON rows out straight into one).
The copy is used only if it gives the same predictions as the original on
the model's input example (or a row of zeros); anything else keeps the
ordinary path. The packaged model itself is never changed. Where the model
is a scaler and a linear model, its predict is plain numpy
(``compiled.py``), under the same check.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from keel.packaging.model import PackagedModel
from keel.serving.compiled import compile_predict
from keel.serving.payload import Batch

Predictor = Callable[[Batch], np.ndarray]


def plain_predictor(model: PackagedModel) -> Predictor:
    """The ordinary path: the signature checks the DataFrame, the flavor predicts."""
    def predict(batch: Batch) -> np.ndarray:
        return model.predict(batch.frame)

    return predict


def fast_predictor(model: PackagedModel) -> Predictor | None:
    """A checked array-fed predict for ``model``, or None when it does not apply."""
    signature = model.signature
    if model.manifest.flavor != "sklearn" or signature.kind != "table" or \
            any(c.dtype != "float64" for c in signature.columns):
        return None
    names = getattr(model.raw, "feature_names_in_", None)
    if names is None or [str(n) for n in names] != signature.names:
        return None
    try:
        stripped = copy.deepcopy(model.raw)
        for estimator in _estimators(stripped):
            if "feature_names_in_" in vars(estimator):
                del estimator.feature_names_in_
        example = _example(model)
        expected = np.asarray(model.predict(example))
        prepared = model.prepare(example)
        got = np.asarray(stripped.predict(prepared.to_numpy()))
    except Exception:  # any doubt: the ordinary path
        return None
    if not _same(got, expected):
        return None
    predict_array: Callable[[np.ndarray], Any] = stripped.predict
    compiled = compile_predict(stripped)
    if compiled is not None:
        try:
            # The example, and rows spread around it: the same arithmetic in the
            # same order gives the very same bits, or scikit-learn is kept.
            probe = _probe(prepared.to_numpy())
            exact = _same(np.asarray(compiled(probe)), np.asarray(stripped.predict(probe)))
        except Exception:  # any doubt: scikit-learn itself
            exact = False
        if exact:
            predict_array = compiled

    def predict(batch: Batch) -> np.ndarray:
        if batch.array is not None:  # laid out for this signature by serving.payload
            return np.asarray(predict_array(batch.array))
        return np.asarray(predict_array(model.prepare(batch.frame).to_numpy()))

    return predict


def _probe(example: np.ndarray, rows: int = 512) -> np.ndarray:
    """``example`` and ``rows`` rows drawn around it (fixed seed)."""
    rng = np.random.default_rng(0)
    centre = example.mean(axis=0)
    spread = np.where(example.std(axis=0) > 0, example.std(axis=0), 1.0) * 3
    drawn = centre + rng.standard_normal((rows, example.shape[1])) * spread
    return np.ascontiguousarray(np.vstack([example, drawn]), dtype=np.float64)


def _same(got: np.ndarray, expected: np.ndarray) -> bool:
    """The very same predictions: shape, dtype and every value."""
    return got.shape == expected.shape and got.dtype == expected.dtype and \
        bool(np.array_equal(got, expected))


def _estimators(root: Any) -> list[Any]:
    """``root`` and every estimator nested in it (pipelines, meta-estimators)."""
    found, todo, seen = [], [root], set()
    while todo:
        item = todo.pop()
        if id(item) in seen or not hasattr(item, "get_params"):
            continue
        seen.add(id(item))
        found.append(item)
        for value in vars(item).values():
            if isinstance(value, list | tuple):
                for part in value:
                    todo.extend(part if isinstance(part, tuple) else (part,))
            else:
                todo.append(value)
    return found


def _example(model: PackagedModel) -> pd.DataFrame:
    example = model.input_example()
    if isinstance(example, pd.DataFrame) and len(example):
        return example
    return pd.DataFrame(np.zeros((2, len(model.signature.columns))),
                        columns=model.signature.names)
