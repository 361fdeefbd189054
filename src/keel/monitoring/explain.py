"""Model explanations: which features a model relies on (permutation importance)
and which features moved its predictions between two tables (drift attribution).

Both treat the model as a black box: ``predict`` is a callable from a DataFrame
to one prediction per row (``keel.load_model(uri).predict``), or a model object
with ``predict`` (a loaded keel model, a scikit-learn estimator), whose
``predict_proba`` is then used where probabilities say more than labels.

>>> permutation_importance(model.predict, X, y)          # {"x1": 0.21, "x2": 0.04, "x3": 0.0}
>>> drift_attribution(model.predict, last_month, today)  # {"x1": 0.93, "x2": 0.05, "x3": 0.02}
>>> version_importance("churn@champion", "holdout@3", "churned")
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from keel.entities import DatasetVersion
from keel.errors import CorruptData, InvalidInput, KeelError, NotFound
from keel.workspace import Workspace, resolve_workspace

METRICS = ("accuracy", "auc", "r2", "rmse", "mae")
MAX_CLASSES = 20  # whole-number labels with more distinct values are a quantity, not classes
# A prediction statistic that moved less than 3 standard errors is sampling noise:
# a false alarm for ~0.3% of statistics when nothing changed.
NOISE_Z = 3.0
IMPORTANCE_ROWS = 5000  # rows version_importance scores: an accuracy's standard error <= 0.007
CACHE_TAG = "keel.importance/"
CACHE_FORMAT = 1  # bump when the computation changes, so older cached results are not reused

Output = Callable[[pd.DataFrame], Any]


@dataclass(frozen=True)
class _Scorer:
    """What a model offers: labels or values, and class probabilities if any."""

    labels: Output
    proba: Output | None = None
    task: str | None = None       # "classification", "regression", or unknown
    classes: list[Any] | None = None


@dataclass(frozen=True)
class ImportanceReport:
    """Permutation importance of a registered model version on a table.

    ``importance`` is the mean drop of ``metric`` (a rise, for rmse and mae:
    always "how much worse") when a feature's column is shuffled, best first.
    """

    model: str                    # churn/3
    data: str                     # holdout@3, as asked for
    label: str
    metric: str
    rows: int                     # rows scored (a sample of at most IMPORTANCE_ROWS)
    repeats: int
    importance: dict[str, float] = field(default_factory=dict)
    cached: bool = False          # served from the cache on the model version

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; ``importance`` keeps its ranked order."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportanceReport:
        """The inverse of :meth:`to_dict`; unknown keys are ignored."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# -- permutation importance ----------------------------------------------------------


def permutation_importance(predict: Any, frame: pd.DataFrame, label: pd.Series | np.ndarray,
                           *, metric: str | None = None, repeats: int = 5, seed: int = 0,
                           max_rows: int = 5000) -> dict[str, float]:
    """How much worse the model scores when each column of ``frame`` is shuffled.

    ``predict`` is a callable (``model.predict``) or a model object. ``metric``
    is one of ``accuracy``, ``auc``, ``r2``, ``rmse``, ``mae``; by default
    ``auc`` for a two-class model that offers ``predict_proba`` (a model
    object, not a bare callable), ``accuracy`` for other classifiers, ``r2``
    for regressors. A bare callable is taken for a classifier when the labels
    are text or booleans, or whole numbers with at most 20 distinct values that
    the predictions also are. With ``metric="auc"`` a bare callable must
    return scores of the larger label (or two columns of probabilities).

    At most ``max_rows`` rows are used (sampled); rows without a label are
    left out. Returns ``{column: mean drop}``, largest first; a value near 0
    (or below: shuffling helped by chance) means the model ignores the column.

    >>> permutation_importance(model.predict, X_test, y_test)
    {'x1': 0.21, 'x2': 0.04, 'x3': 0.0}
    """
    return _permutation(predict, frame, label, metric, repeats, seed, max_rows)[2]


def _permutation(predict: Any, frame: pd.DataFrame, label: pd.Series | np.ndarray,
                 metric: str | None, repeats: int, seed: int, max_rows: int
                 ) -> tuple[str, int, dict[str, float]]:
    """(metric used, rows scored, importances) of :func:`permutation_importance`."""
    from keel.models.metrics import higher_is_better

    if repeats < 1:
        raise InvalidInput(f"repeats is {repeats}", hint="shuffle each column at least once")
    scorer = _scorer(predict)
    rng = np.random.default_rng(seed)
    sample, y = _labelled_sample(frame, label, max_rows, rng)
    metric, output, baseline = _metric_for(scorer, metric, sample, y)
    positive = _positive_class(scorer, y)
    base = _scores(metric, y, baseline[None, ...], positive)[0]
    sign = 1.0 if higher_is_better(metric) else -1.0
    n = len(sample)
    tiled = sample.iloc[np.tile(np.arange(n), repeats)].reset_index(drop=True)
    drops = {}
    for column in sample.columns:
        # All shuffles of one column go to the model in one call (5 x 5,000 rows):
        # per-call costs (signature checks, the model's own validation) would
        # otherwise be paid repeats times per column.
        order = rng.permuted(np.tile(np.arange(n), (repeats, 1)), axis=1).ravel()
        shuffled = tiled.copy(deep=False)
        shuffled[column] = sample[column].iloc[order].set_axis(tiled.index)
        out = _predict(output, shuffled, f"the data with column {column!r} shuffled")
        scores = _scores(metric, y, out.reshape(repeats, n, *out.shape[1:]), positive)
        drops[str(column)] = sign * (base - float(np.mean(scores)))
    return metric, n, _ranked(drops)


def _labelled_sample(frame: pd.DataFrame, label: pd.Series | np.ndarray, max_rows: int,
                     rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    values = label.to_numpy() if isinstance(label, pd.Series) else np.asarray(label)
    if values.ndim != 1 or len(values) != len(frame):
        raise InvalidInput(f"the label has {values.shape[0] if values.ndim else 0} values for "
                           f"{len(frame)} rows", hint="pass one label per row of the frame")
    rows = np.flatnonzero(~pd.isna(values))
    if len(rows) < 2:
        raise InvalidInput(f"only {len(rows)} row(s) have a label",
                           hint="permutation importance needs labelled rows to score")
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(rows, max_rows, replace=False))
    return frame.iloc[rows].reset_index(drop=True), values[rows]


def _metric_for(scorer: _Scorer, metric: str | None, sample: pd.DataFrame, y: np.ndarray
                ) -> tuple[str, Output, np.ndarray]:
    """The metric, the model output it is computed on, and that output on ``sample``."""
    predictions = None
    if metric is None:
        if scorer.task is None:
            predictions = _predict(scorer.labels, sample, "the data")
            if predictions.ndim != 1:
                raise InvalidInput(f"the model returned an array of shape "
                                   f"{list(predictions.shape)}, not one prediction per row",
                                   hint="for class probabilities pass metric='auc'")
            classes = _looks_like_classes(y, predictions)
        else:
            classes = scorer.task == "classification"
        binary = classes and len(pd.unique(y)) == 2
        metric = "auc" if binary and scorer.proba is not None else \
            "accuracy" if classes else "r2"
    if metric not in METRICS:
        raise InvalidInput(f"unknown metric {metric!r}", hint="use one of " + ", ".join(METRICS))
    if metric == "auc" and len(pd.unique(y)) != 2:
        raise InvalidInput(f"auc needs two classes; the label has {len(pd.unique(y))}",
                           hint="use metric='accuracy'")
    if metric in ("r2", "rmse", "mae") and _numeric(y) is None:
        raise InvalidInput(f"{metric} needs a numeric label", hint="use metric='accuracy'")
    if metric == "r2" and np.ptp(_as_float(y)) == 0:
        raise InvalidInput("the label is constant, so r2 is undefined",
                           hint="use metric='rmse', or data where the label varies")
    output = scorer.proba if metric == "auc" and scorer.proba is not None else scorer.labels
    if predictions is None or output is not scorer.labels:
        predictions = _predict(output, sample, "the data")
    return metric, output, predictions


def _positive_class(scorer: _Scorer, y: np.ndarray) -> Any:
    """The class whose probability is the last column of predict_proba (binary)."""
    if scorer.classes is not None and len(scorer.classes) == 2:
        return scorer.classes[1]
    found = pd.unique(y)
    return sorted(found)[-1] if len(found) == 2 else None


def _scores(metric: str, y: np.ndarray, out: np.ndarray, positive: Any) -> np.ndarray:
    """``metric`` for each row of ``out`` (repeats x rows [x classes])."""
    if metric == "accuracy":
        return np.asarray((out == y).mean(axis=1), dtype=float)
    if metric == "auc":
        from sklearn.metrics import roc_auc_score

        scores = out[..., -1] if out.ndim == 3 else out
        truth = y == positive
        return np.array([roc_auc_score(truth, s.astype(float)) for s in scores])
    error = _as_float(out) - _as_float(y)
    if metric == "rmse":
        return np.sqrt(np.mean(error ** 2, axis=1))
    if metric == "mae":
        return np.mean(np.abs(error), axis=1)
    spread = np.sum((_as_float(y) - _as_float(y).mean()) ** 2)
    return 1.0 - np.sum(error ** 2, axis=1) / spread


def _looks_like_classes(y: np.ndarray, predictions: np.ndarray) -> bool:
    """Text or boolean labels, or whole numbers with few values both sides."""
    y_num, p_num = _numeric(y), _numeric(predictions)
    if y_num is None or p_num is None:
        return True
    whole = bool(np.all(y_num == np.round(y_num)) and np.all(p_num == np.round(p_num)))
    return whole and len(np.unique(y_num)) <= MAX_CLASSES


# -- drift attribution ---------------------------------------------------------------


def drift_attribution(predict: Any, reference: pd.DataFrame, current: pd.DataFrame,
                      features: list[str] | None = None, *, max_rows: int = 2000,
                      seed: int = 0) -> dict[str, float]:
    """Which features moved the model's predictions from ``reference`` to ``current``.

    The prediction statistic is the mean prediction for numbers, and the
    share of each class for class labels (text, booleans, or whole numbers
    with at most 20 values); for a model object offering ``predict_proba``
    (a classifier), the mean probability of each class. The shift is measured
    as the distance between the statistics: the absolute difference of means,
    or the total-variation distance of the class shares (for two classes, the
    change in the share of either class).

    For each feature, that column of (a sample of) ``current`` is replaced by
    values drawn from ``reference`` (with replacement; the other columns stay,
    so correlations between features are not carried over), and the distance
    between the statistic of ``current`` and of that mixture is the feature's
    attribution: how much of the shift putting the feature back undoes. The
    attributions are normalised to sum to 1, largest first.

    If the predictions did not move beyond sampling noise (no statistic moved
    by 3 standard errors of a two-sample test), every attribution is 0: a
    shift in features the model ignores is reported as no movement.

    Text and categorical columns are resampled like any other; missing values
    are passed to the model as they are, and a model that refuses them is
    reported as :class:`InvalidInput` naming the columns holding them.

    >>> drift_attribution(model.predict, training_rows, last_week)
    {'x1': 0.93, 'x2': 0.05, 'x3': 0.02}
    """
    scorer = _scorer(predict)
    features = _shared_features(reference, current, features)
    rng = np.random.default_rng(seed)
    ref, cur = _sample(reference, max_rows, rng), _sample(current, max_rows, rng)
    output = scorer.proba or scorer.labels
    ref_out = _predict(output, ref, "the reference data")
    cur_out = _predict(output, cur, "the current data")
    encode = _encoder(ref_out, cur_out)
    ref_m, cur_m = encode(ref_out), encode(cur_out)
    if not _moved(ref_m, cur_m):
        return dict.fromkeys(features, 0.0)
    statistic = cur_m.mean(axis=0)
    raw = {}
    for feature in features:
        mixed = cur.copy(deep=False)
        drawn = rng.integers(0, len(ref), len(cur))
        mixed[feature] = ref[feature].iloc[drawn].set_axis(cur.index)
        out = _predict(output, mixed, f"the current data with {feature!r} from the reference")
        # The L1 distance of the statistics: twice the total-variation distance of
        # class shares; the factor cancels in the normalisation below.
        raw[feature] = float(np.abs(statistic - encode(out).mean(axis=0)).sum())
    total = sum(raw.values())
    if total == 0:
        return dict.fromkeys(features, 0.0)
    return _ranked({f: v / total for f, v in raw.items()})


def _shared_features(reference: pd.DataFrame, current: pd.DataFrame,
                     features: list[str] | None) -> list[str]:
    if features is None:
        features = [str(c) for c in current.columns if c in reference.columns]
    for name, frame in (("reference", reference), ("current", current)):
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise InvalidInput(f"the {name} data lacks column(s) {', '.join(map(repr, missing))}",
                               hint="columns: " + ", ".join(map(str, frame.columns[:20])))
        if len(frame) < 2:
            raise InvalidInput(f"the {name} data has {len(frame)} row(s)",
                               hint="drift attribution compares tables of at least 2 rows")
    if not features:
        raise InvalidInput("the reference and current data share no columns",
                           hint="pass tables with the model's input columns")
    return features


def _sample(frame: pd.DataFrame, max_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    rows = np.sort(rng.choice(len(frame), max_rows, replace=False))
    return frame.iloc[rows].reset_index(drop=True)


def _encoder(*outputs: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Predictions as a (rows x k) matrix whose column means are the statistic:
    probabilities as they are, numbers as one column, class labels one-hot."""
    if outputs[0].ndim == 2:
        return lambda out: _as_float(out)
    if not _looks_like_classes(*outputs):  # numbers: the statistic is their mean
        return lambda out: _as_float(out)[:, None]
    joined = pd.unique(np.concatenate([np.asarray(o, dtype=object) for o in outputs]))
    classes = [c for c in joined if not pd.isna(c)]

    def shares(out: np.ndarray) -> np.ndarray:
        # A class neither table produced (or a missing prediction) counts in a last column.
        codes = pd.Categorical(np.asarray(out, dtype=object), categories=classes).codes
        matrix = np.zeros((len(out), len(classes) + 1))
        matrix[np.arange(len(out)), np.where(codes < 0, len(classes), codes)] = 1.0
        return matrix

    return shares


def _moved(reference: np.ndarray, current: np.ndarray) -> bool:
    """Whether any column mean differs by more than NOISE_Z standard errors."""
    diff = np.abs(current.mean(axis=0) - reference.mean(axis=0))
    error = np.sqrt(current.var(axis=0, ddof=1) / len(current)
                    + reference.var(axis=0, ddof=1) / len(reference))
    return bool(np.any(diff > NOISE_Z * error))


# -- shared --------------------------------------------------------------------------


def _scorer(predict: Any) -> _Scorer:
    if hasattr(predict, "predict"):
        task = getattr(predict, "task", None)
        # A keel model says its task (and has predict_proba even when it cannot
        # answer it); a scikit-learn estimator has predict_proba only if a classifier.
        offers = task == "classification" if hasattr(predict, "task") else True
        proba = getattr(predict, "predict_proba", None) if offers else None
        classes = getattr(predict, "classes", None)
        if classes is None:
            classes = getattr(predict, "classes_", None)
        return _Scorer(predict.predict, proba if callable(proba) else None,
                       task if isinstance(task, str) else None,
                       None if classes is None else list(classes))
    if callable(predict):
        return _Scorer(predict)
    raise TypeError(f"predict must be a callable or a model with .predict, got "
                    f"{type(predict).__name__}")


def _predict(output: Output, frame: pd.DataFrame, what: str) -> np.ndarray:
    """The model's output on ``frame``; a model's refusal becomes InvalidInput."""
    try:
        out = np.asarray(output(frame))
    except KeelError:
        raise
    except (ValueError, TypeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        gaps = [str(c) for c in frame.columns if frame[c].isna().any()]
        hint = (f"column(s) {', '.join(gaps)} hold missing values the model may not accept: "
                "fill or drop them first") if gaps else \
            "pass the columns and types the model was trained on"
        raise InvalidInput(f"the model could not score {what}: {reason}", hint=hint) from exc
    if out.ndim == 0 or len(out) != len(frame):
        raise InvalidInput(f"the model returned {out.size} value(s) for {len(frame)} rows",
                           hint="predict must return one prediction per row")
    return out


def _numeric(values: np.ndarray) -> np.ndarray | None:
    """``values`` as floats if they are numbers (not booleans), else None."""
    if values.dtype.kind in "iuf":
        return values.astype(float)
    if values.dtype.kind == "O" and values.size:
        if any(isinstance(v, bool | np.bool_ | str) for v in values.flat[:100]):
            return None
        converted = pd.to_numeric(pd.Series(values.ravel()), errors="coerce")
        if converted.notna().sum() == pd.notna(values.ravel()).sum():
            return converted.to_numpy(dtype=float).reshape(values.shape)
    return None


def _as_float(values: np.ndarray) -> np.ndarray:
    found = _numeric(np.asarray(values))
    if found is None:
        raise InvalidInput("the model's predictions are not numbers",
                           hint="use metric='accuracy' for class labels")
    return found


def _ranked(values: dict[str, float]) -> dict[str, float]:
    """Largest first; ties keep the column order; NaN last."""
    return {k: float(v) for k, v in sorted(values.items(),
                                           key=lambda kv: (np.isnan(kv[1]), -kv[1]))}


# -- registered versions -------------------------------------------------------------


def version_importance(ref: str, data: str, label: str, *, repeats: int = 5,
                       ws: Workspace | None = None) -> dict[str, float]:
    """Permutation importance of a registered version on a table, cached on the version.

    ``ref`` names a version (``churn/3``, ``churn@champion``,
    ``models:/churn@champion``); ``data`` a table as ``keel model evaluate``
    takes it (``holdout@3``, ``holdout@3:test.csv`` or a CSV/Parquet file).
    See :func:`importance_report` for the metric and the cache.

    >>> version_importance("churn@champion", "holdout@3", "churned")
    {'tenure': 0.12, 'plan': 0.05, 'region': 0.0}
    """
    return importance_report(ref, data, label, repeats=repeats, ws=ws).importance


def importance_report(ref: str, data: str, label: str, *, repeats: int = 5,
                      ws: Workspace | None = None) -> ImportanceReport:
    """:func:`version_importance` with what it measured: metric, rows, and
    whether it came from the cache.

    Results are kept as a JSON blob named by a tag of the model version
    (``keel.importance/<key>``, audited like any tag), keyed by the table's
    content (dataset manifest, or file digest), the label and ``repeats``: a
    second call with the same inputs reads the blob instead of loading the
    model. A cache blob removed by ``keel gc`` (nothing but the tag names it)
    is computed again.
    """
    from keel.models.load import load_model
    from keel.models.registry import get_version
    from keel.models.table import read_table, split_label

    ws = resolve_workspace(ws)
    version = get_version(ref, ws)
    key = _cache_key(ws, data, label, repeats)
    cached = _read_cache(ws, version.tags, key, version.package_digest)
    if cached is not None:
        return replace(cached, data=data, cached=True)
    model = load_model(version.uri, ws=ws)
    table = read_table(data, ws)
    columns = model.signature.names
    features, y, label = split_label(table.frame, label, columns)
    if columns:
        missing = [c for c in columns if c not in {str(f) for f in features.columns}]
        if missing:
            raise InvalidInput(f"{data} lacks column(s) {', '.join(map(repr, missing))} that "
                               f"{version.ref} takes",
                               hint=f"the model takes {model.signature.describe()}; the data "
                                    "has " + ", ".join(map(str, table.frame.columns[:20])))
        features = features[[c for c in features.columns if str(c) in columns]]
    metric, rows, found = _permutation(model, features, y, None, repeats, 0, IMPORTANCE_ROWS)
    report = ImportanceReport(version.ref, data, label, metric, rows, repeats, found)
    if key is not None:
        _write_cache(ws, version.name, version.version, key, version.package_digest, report)
    return report


def _cache_key(ws: Workspace, data: str, label: str, repeats: int) -> dict[str, Any] | None:
    """What the result depends on, found without reading the table; None when
    ``data`` is neither a file nor a dataset version (read_table then says so)."""
    from keel.blobs.digest import hash_file

    if Path(data).is_file():
        table: list[str] = ["file", hash_file(data)]
    else:
        name, _, inner = data.partition(":")
        if "@" not in name:
            return None
        table = ["dataset", _dataset_with_table(ws, name, inner).manifest_digest, inner]
    return {"format": CACHE_FORMAT, "table": table, "label": label, "repeats": repeats,
            "rows": IMPORTANCE_ROWS, "seed": 0}


def _dataset_with_table(ws: Workspace, name: str, inner: str) -> DatasetVersion:
    """The dataset version ``name`` names, refused early if it holds no table at all
    (read_table would only ask which of its zero tables to use)."""
    from keel.data.version import get_version, load_manifest
    from keel.models.table import TABLE_SUFFIXES

    version = get_version(ws, name)
    if not inner:
        paths = [e.path for e in load_manifest(ws, version).entries]
        if not any(p.lower().endswith(TABLE_SUFFIXES) for p in paths):
            raise InvalidInput(f"{version.ref} holds no CSV or Parquet file",
                               hint="files: " + (", ".join(paths[:10]) or "none")
                                    + "; explain a model on a table")
    return version


def _cache_tag(key: dict[str, Any]) -> str:
    from keel.blobs.digest import hash_bytes

    return CACHE_TAG + hash_bytes(json.dumps(key, sort_keys=True).encode())[:16]


def _read_cache(ws: Workspace, tags: dict[str, str], key: dict[str, Any] | None,
                package: str) -> ImportanceReport | None:
    if key is None or _cache_tag(key) not in tags:
        return None
    try:
        stored = json.loads(ws.blobs.get_bytes(tags[_cache_tag(key)]))
    except (NotFound, CorruptData, ValueError):  # swept by gc, or damaged: compute again
        return None
    if not isinstance(stored, dict) or stored.get("key") != key \
            or stored.get("package") != package:
        return None
    return ImportanceReport.from_dict(stored["report"])


def _write_cache(ws: Workspace, name: str, version: int, key: dict[str, Any], package: str,
                 report: ImportanceReport) -> None:
    from keel.tracking.provenance import current_user

    body = {"key": key, "package": package, "report": report.to_dict() | {"cached": False}}
    # The lease keeps gc from sweeping the blob before the tag names it.
    with ws.writing():
        digest = ws.blobs.put_bytes(json.dumps(body).encode())
        ws.store.set_model_tag(name, version, _cache_tag(key), digest, current_user())
