"""``keel.drift``: per-feature and dataset drift between a reference and a
current sample.

Each feature gets one test chosen by its type and size (overridable per
feature): numeric columns the two-sample Kolmogorov-Smirnov test (exact
p-values up to 1,000 rows a side, asymptotic beyond), categorical columns the
chi-square test of homogeneity where Cochran's rule holds and the
Jensen-Shannon distance where counts are too small for it. Wasserstein
(normalised by the reference's standard deviation) and PSI are there for
whoever prefers a distance to a test. The dataset drifts when the share of
drifted features reaches ``drift_share`` (half, by default).

Columns are independent, and numpy's sorts release the GIL, so features are
computed on a thread per core.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import InvalidInput
from keel.monitoring import statistics as st

if TYPE_CHECKING:
    import pandas as pd

    from keel.monitoring.sources import Columns
    from keel.workspace import Workspace

DRIFT_SHARE = 0.5
DISTRIBUTION_BINS = 20
TOP_CATEGORIES = 20


@dataclass(frozen=True)
class Distribution:
    """What a report draws: shares of each sample per bin or category."""

    labels: list[str]
    reference: list[float]
    current: list[float]


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict and the figures behind it."""

    feature: str
    kind: str  # numeric | categorical
    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    null_share_reference: float = 0.0
    null_share_current: float = 0.0
    note: str = ""
    distribution: Distribution | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DriftResult:
    """The verdict for every feature and for the dataset as a whole."""

    features: list[FeatureDrift]
    drift_share: float = DRIFT_SHARE
    rows_reference: int = 0
    rows_current: int = 0

    @property
    def share_drifted(self) -> float:
        """Drifted features over all features compared."""
        return (sum(f.drifted for f in self.features) / len(self.features)
                if self.features else 0.0)

    @property
    def drifted(self) -> bool:
        """The dataset drifts when the share of drifted features reaches ``drift_share``."""
        return bool(self.features) and self.share_drifted >= self.drift_share

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def feature(self, name: str) -> FeatureDrift:
        """One feature's result; :class:`InvalidInput` naming the features if absent."""
        for found in self.features:
            if found.feature == name:
                return found
        raise InvalidInput(f"no feature {name!r} in this drift result",
                           hint=f"features: {', '.join(f.feature for f in self.features)}")

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: feature, kind, method, statistic, p_value,
        threshold, drifted, n_reference, n_current, null shares, note."""
        import pandas as pd

        columns = ["feature", "kind", "method", "statistic", "p_value", "threshold", "drifted",
                   "n_reference", "n_current", "null_share_reference", "null_share_current",
                   "note"]
        rows = [{c: getattr(f, c) for c in columns} for f in self.features]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the dataset verdict and every feature (with its distribution)."""
        return {"share_drifted": self.share_drifted, "drifted": self.drifted,
                "drift_share": self.drift_share, "rows_reference": self.rows_reference,
                "rows_current": self.rows_current,
                "features": [_plain(asdict(f)) for f in self.features]}

    def __repr__(self) -> str:
        return (f"DriftResult(share_drifted={self.share_drifted:.2f}, drifted={self.drifted}, "
                f"features={len(self.features)}, drifted_features={self.drifted_features})")


def drift(reference: Any, current: Any, categorical: Sequence[str] | None = None,
          methods: str | Mapping[str, str] | None = None,
          thresholds: float | Mapping[str, float] | None = None,
          columns: Sequence[str] | None = None, drift_share: float = DRIFT_SHARE,
          max_memory: int | str | None = None, ws: Workspace | None = None) -> DriftResult:
    """Compare ``current`` with ``reference``, feature by feature.

    Each side is a DataFrame, a CSV or Parquet path, or a dataset version
    (``"transactions@2"``); the reference may also be a dataset version's
    stored profile (``"profile:transactions@2"`` or a ``TableProfile``),
    compared through its histograms without reading its rows.

    ``categorical`` names columns to treat as categories even if numeric;
    ``methods`` picks a method for every feature (``"psi"``) or per feature
    (``{"amount": "wasserstein"}``); ``thresholds`` overrides the level or
    distance that means drift; ``columns`` restricts the comparison. Parquet
    files larger than ``max_memory`` (bytes or ``"2GB"``; default a quarter
    of this machine's memory) are streamed in batches and compared through
    fine histograms, in bounded memory.

    >>> keel.drift(train_frame, last_hour_frame).to_frame()
    """
    from keel.monitoring import sources

    budget = sources.memory_budget(max_memory)
    ref_source = sources.resolve(reference, "reference", ws)
    cur_source = sources.resolve(current, "current", ws)
    if cur_source.profile is not None:
        raise InvalidInput("the current data must be rows, not a profile",
                           hint="a profile can stand only for the reference")
    if ref_source.profile is not None:
        from keel.monitoring.profile_reference import drift_against_profile

        return drift_against_profile(ref_source.profile, cur_source.frame(columns),
                                     categorical, methods, thresholds, columns, drift_share)
    if ref_source.streams(budget) or cur_source.streams(budget):
        from keel.monitoring.streaming import streamed_drift

        return streamed_drift(ref_source, cur_source, categorical=categorical, methods=methods,
                              thresholds=thresholds, columns=columns, drift_share=drift_share)
    return compare_columns(ref_source.columns(columns), cur_source.columns(columns),
                           categorical=categorical, methods=methods, thresholds=thresholds,
                           columns=columns, drift_share=drift_share)


def compare_frames(reference: pd.DataFrame, current: pd.DataFrame,
                   categorical: Sequence[str] | None = None,
                   methods: str | Mapping[str, str] | None = None,
                   thresholds: float | Mapping[str, float] | None = None,
                   columns: Sequence[str] | None = None,
                   drift_share: float = DRIFT_SHARE) -> DriftResult:
    """:func:`drift` on two in-memory DataFrames."""
    from keel.monitoring.sources import FrameColumns

    return compare_columns(FrameColumns(reference), FrameColumns(current), categorical,
                           methods, thresholds, columns, drift_share)


def compare_columns(reference: Columns, current: Columns,
                    categorical: Sequence[str] | None = None,
                    methods: str | Mapping[str, str] | None = None,
                    thresholds: float | Mapping[str, float] | None = None,
                    columns: Sequence[str] | None = None,
                    drift_share: float = DRIFT_SHARE) -> DriftResult:
    """:func:`drift` on two tables taken a column at a time, a thread per core."""
    names = check_schemas(reference.names, current.names, columns)
    check_rows(reference.rows, current.rows)
    declared = set(categorical or ())
    unknown = declared - set(names)
    if unknown:
        raise InvalidInput(f"categorical names columns that are not compared: "
                           f"{', '.join(sorted(unknown))}", hint=f"columns: {', '.join(names)}")

    def one(name: str) -> FeatureDrift:
        ref, cur = reference.column(name), current.column(name)
        kind = kind_of(ref, cur, name in declared)
        method = method_for(name, kind, methods)
        if kind == "numeric":
            return _numeric(name, ref, cur, method, threshold_for(name, method, thresholds))
        return _categorical(name, ref, cur, method, threshold_for(name, method, thresholds))

    workers = min(len(names), os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="keel-drift") as pool:
            features = list(pool.map(one, names))
    else:
        features = [one(n) for n in names]
    return DriftResult(features, drift_share, reference.rows, current.rows)


def check_schemas(reference: list[str], current: list[str],
                  columns: Sequence[str] | None) -> list[str]:
    """The columns to compare; a clear error naming what is missing where."""
    wanted = list(columns) if columns else reference
    if not wanted:
        raise InvalidInput("the reference has no columns to compare")
    missing_ref = [c for c in wanted if c not in reference]
    missing_cur = [c for c in wanted if c not in current]
    if missing_ref or missing_cur:
        parts = []
        if missing_cur:
            parts.append(f"missing from the current data: {', '.join(map(str, missing_cur))}")
        if missing_ref:
            parts.append(f"missing from the reference: {', '.join(map(str, missing_ref))}")
        extra = [c for c in current if c not in reference]
        if extra:
            parts.append(f"only in the current data: {', '.join(map(str, extra))}")
        raise InvalidInput("the reference and the current data have different columns ("
                           + "; ".join(parts) + ")",
                           hint="compare the columns both have with columns=[...] "
                                "(--column on the command line), or fix the data's schema")
    return [str(c) for c in wanted]


def check_rows(reference: int, current: int) -> None:
    for label, rows in (("reference", reference), ("current", current)):
        if rows == 0:
            raise InvalidInput(f"the {label} data is empty (0 rows): there is nothing to compare",
                               hint="widen the window (--window), or check the file/version")


def kind_of(reference: pd.Series, current: pd.Series, declared_categorical: bool) -> str:
    """numeric or categorical, from the dtypes (a numeric column holding text
    on one side is an error that names it)."""
    from pandas.api import types

    if declared_categorical:
        return "categorical"
    ref_numeric = types.is_numeric_dtype(reference) and not types.is_bool_dtype(reference)
    cur_numeric = types.is_numeric_dtype(current) and not types.is_bool_dtype(current)
    if ref_numeric and (cur_numeric or current.isna().all()):
        return "numeric"
    if ref_numeric and not cur_numeric:
        raise InvalidInput(
            f"column {reference.name!r} is numeric ({reference.dtype}) in the reference but "
            f"{current.dtype} in the current data", hint="fix the current data's types, or "
            f"declare it categorical=[{str(reference.name)!r}] to compare it as categories")
    if cur_numeric and reference.isna().all():
        return "numeric"
    return "categorical"


def method_for(name: str, kind: str, methods: str | Mapping[str, str] | None) -> str:
    """The method asked for (checked against the kind), else the default."""
    chosen = methods.get(name) if isinstance(methods, Mapping) else methods
    allowed = st.NUMERIC_METHODS if kind == "numeric" else st.CATEGORICAL_METHODS
    if chosen is None:
        return "default"
    if chosen not in allowed:
        raise InvalidInput(f"method {chosen!r} does not apply to {kind} column {name!r}",
                           hint=f"{kind} columns take: {', '.join(allowed)}")
    return chosen


def threshold_for(name: str, method: str, thresholds: float | Mapping[str, float] | None
                  ) -> float | None:
    value = thresholds.get(name) if isinstance(thresholds, Mapping) else thresholds
    if value is not None and not (isinstance(value, int | float) and value >= 0):
        raise InvalidInput(f"threshold for {name!r} must be a number >= 0, not {value!r}")
    return None if value is None else float(value)


def _numeric(name: str, reference: pd.Series, current: pd.Series, method: str,
             threshold: float | None) -> FeatureDrift:
    ref, ref_rows = _sorted_values(reference)
    cur, cur_rows = _sorted_values(current)
    nulls = (1 - len(ref) / ref_rows, 1 - len(cur) / cur_rows)
    method = "ks" if method == "default" else method
    level = st.THRESHOLDS[method] if threshold is None else threshold
    if not len(ref) or not len(cur):
        return _empty_side(name, "numeric", method, level, len(ref), len(cur), nulls)
    p_value: float | None = None
    if method == "ks":
        statistic, p_value = st.ks(ref, cur)
    elif method == "wasserstein":
        statistic = st.wasserstein(ref, cur, st.scale_of(ref))
    else:
        statistic = st.psi_numeric(ref, cur)
    return FeatureDrift(name, "numeric", method, statistic, p_value, level,
                        st.is_drift(method, statistic, p_value, level), len(ref), len(cur),
                        *nulls, distribution=numeric_distribution(ref, cur))


def _sorted_values(column: pd.Series) -> tuple[np.ndarray, int]:
    """The column's non-null values sorted (one copy when nothing is null), and
    its length."""
    # A float64 column without missing values converts without a copy; asking
    # for na_value always copies.
    values = column.to_numpy() if column.dtype == np.float64 else \
        column.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    kept = values[~missing] if missing.any() else values
    return np.sort(kept), len(values)


def _categorical(name: str, reference: pd.Series, current: pd.Series, method: str,
                 threshold: float | None) -> FeatureDrift:
    ref_counts = _value_counts(reference)
    cur_counts = _value_counts(current)
    n_ref, n_cur = int(sum(ref_counts.values())), int(sum(cur_counts.values()))
    nulls = (1 - n_ref / len(reference), 1 - n_cur / len(current))
    labels = sorted(set(ref_counts) | set(cur_counts))
    ref = np.array([ref_counts.get(k, 0) for k in labels], dtype=np.float64)
    cur = np.array([cur_counts.get(k, 0) for k in labels], dtype=np.float64)
    return categorical_verdict(name, labels, ref, cur, method, threshold, nulls)


def categorical_verdict(name: str, labels: list[str], ref: np.ndarray, cur: np.ndarray,
                        method: str, threshold: float | None,
                        nulls: tuple[float, float]) -> FeatureDrift:
    """The verdict from aligned category counts (shared with the streaming path)."""
    if method == "default":
        method = "chi2" if st.chi2_applies(ref, cur) else "jensenshannon"
    level = st.THRESHOLDS[method] if threshold is None else threshold
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    if not n_ref or not n_cur:
        return _empty_side(name, "categorical", method, level, n_ref, n_cur, nulls)
    p_value: float | None = None
    if method == "chi2":
        statistic, p_value = st.chi2(ref, cur)
    elif method == "jensenshannon":
        statistic = st.jensenshannon(ref, cur)
    else:
        statistic = st.psi_from_counts(ref, cur)
    unseen = [label for label, r, c in zip(labels, ref, cur, strict=True) if r == 0 and c > 0]
    note = f"categories not in the reference: {', '.join(unseen[:5])}" if unseen else ""
    return FeatureDrift(name, "categorical", method, statistic, p_value, level,
                        st.is_drift(method, statistic, p_value, level), n_ref, n_cur, *nulls,
                        note=note, distribution=categorical_distribution(labels, ref, cur))


def _empty_side(name: str, kind: str, method: str, level: float, n_ref: int, n_cur: int,
                nulls: tuple[float, float]) -> FeatureDrift:
    # A column that is all null on one side only has drifted as badly as a
    # column can; all null on both sides has nothing to compare.
    side = "reference" if not n_ref else "current"
    both = not n_ref and not n_cur
    note = "all values are null on both sides" if both else f"all values are null in the {side}"
    return FeatureDrift(name, kind, method, math.nan, None, level, not both, n_ref, n_cur,
                        *nulls, note=note)


def _value_counts(series: pd.Series) -> dict[str, int]:
    # Mixed types (3 and "3") compare as text: a category is what it prints as.
    counts = series.dropna().astype(str).value_counts(sort=False)
    return {str(k): int(v) for k, v in counts.items()}


def numeric_distribution(ref: np.ndarray, cur: np.ndarray,
                         bins: int = DISTRIBUTION_BINS) -> Distribution:
    """Shares of both sorted samples over equal-width bins spanning the
    reference's 1st-99th percentile (outliers land in the end bins)."""
    low, high = sorted_quantile(ref, 0.01), sorted_quantile(ref, 0.99)
    low, high = min(low, cur[int(len(cur) * 0.01)]), max(high, cur[int(len(cur) * 0.99) - 1])
    if high <= low:
        high = low + 1.0
    inner = np.linspace(low, high, bins + 1)[1:-1]
    ref_counts, cur_counts = st.binned(ref, inner), st.binned(cur, inner)
    edges = [low, *inner, high]
    labels = [f"{_short(a)} to {_short(b)}" for a, b in pairwise(edges)]
    return Distribution(labels, _shares(ref_counts), _shares(cur_counts))


def categorical_distribution(labels: list[str], ref: np.ndarray, cur: np.ndarray) -> Distribution:
    """Shares per category, the most frequent first; the rest summed as 'other'."""
    order = np.argsort(-(ref / max(ref.sum(), 1) + cur / max(cur.sum(), 1)), kind="stable")
    top, rest = order[:TOP_CATEGORIES], order[TOP_CATEGORIES:]
    names = [labels[i] for i in top]
    ref_counts, cur_counts = list(ref[top]), list(cur[top])
    if len(rest):
        names.append(f"other ({len(rest)})")
        ref_counts.append(ref[rest].sum())
        cur_counts.append(cur[rest].sum())
    return Distribution(names, _shares(np.array(ref_counts)), _shares(np.array(cur_counts)))


def sorted_quantile(values: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` (linear interpolation) of a sorted array, without
    the copy and partition np.quantile makes of it."""
    position = q * (len(values) - 1)
    below = int(position)
    above = min(below + 1, len(values) - 1)
    return float(values[below] + (values[above] - values[below]) * (position - below))


def _shares(counts: np.ndarray) -> list[float]:
    total = float(np.sum(counts))
    return [float(c) / total if total else 0.0 for c in counts]


def _short(value: float) -> str:
    return f"{value:.3g}"


def _plain(value: Any) -> Any:
    """NaN and numpy scalars made JSON-safe."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def as_path(value: Any) -> Path | None:
    """A path if ``value`` names an existing file."""
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and os.path.exists(value):
        return Path(value)
    return None
