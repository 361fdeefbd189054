"""Drift against a stored profile instead of the reference's rows.

``keel data add`` profiles every CSV/Parquet file (``keel.data.profiles``):
per numeric column a 20-bin histogram over its range and its moments, per
categorical column the ten most frequent values and their counts. That is
enough to compare a current sample without the reference's bytes (a
dataset whose files live only on a remote, or are too large to read for
every pass): the current values are counted into the profile's bins.

The figures are coarser than from rows, and say so in each feature's note:
KS is the largest CDF gap at the 20 bin edges (never larger than the exact
statistic: the test is conservative), Wasserstein integrates the gap over
the bins, PSI uses the bins as they are; categories beyond the top ten are
pooled as "other" on both sides (a new category is then counted there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import InvalidInput
from keel.monitoring import statistics as st
from keel.monitoring.drift import (
    Distribution,
    DriftResult,
    FeatureDrift,
    categorical_verdict,
    check_rows,
    check_schemas,
    method_for,
    threshold_for,
)

if TYPE_CHECKING:
    import pandas as pd

OTHER = "(other)"


def drift_against_profile(profile: Any, current: pd.DataFrame,
                          categorical: Sequence[str] | None,
                          methods: str | Mapping[str, str] | None,
                          thresholds: float | Mapping[str, float] | None,
                          columns: Sequence[str] | None, drift_share: float) -> DriftResult:
    """:func:`keel.drift` with a :class:`~keel.data.profile.TableProfile` as reference."""
    usable = [c.name for c in profile.columns if c.kind in ("numeric", "categorical")]
    names = check_schemas(usable, [str(c) for c in current.columns], columns)
    check_rows(profile.rows, len(current))
    declared = set(categorical or ())
    features = []
    for name in names:
        column = profile.column(name)
        kind = "categorical" if name in declared or column.kind == "categorical" else "numeric"
        method = method_for(name, kind, methods)
        threshold = threshold_for(name, method, thresholds)
        if kind == "numeric":
            features.append(_numeric(column, current[name], method, threshold))
        else:
            features.append(_categorical(column, current[name], method, threshold))
    return DriftResult(features, drift_share, profile.rows, len(current))


def _numeric(column: Any, current: pd.Series, method: str,
             threshold: float | None) -> FeatureDrift:
    if column.histogram is None:
        raise InvalidInput(f"the profile of {column.name!r} has no histogram to compare with",
                           hint="compare against the dataset's rows instead (drop 'profile:')")
    method = "ks" if method == "default" else method
    level = st.THRESHOLDS[method] if threshold is None else threshold
    edges = np.asarray(column.histogram.edges, dtype=np.float64)
    ref_counts = np.asarray(column.histogram.counts, dtype=np.float64)
    values = current.to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.sort(values[~np.isnan(values)])
    n_ref, n_cur = int(column.count - column.nulls), len(values)
    nulls = (column.null_fraction, 1 - n_cur / len(current) if len(current) else 0.0)
    note = "from the reference's profile (20 bins)"
    if not n_cur or not n_ref:
        side = "current" if not n_cur else "reference"
        return FeatureDrift(column.name, "numeric", method, float("nan"), None, level,
                            bool(n_cur or n_ref), n_ref, n_cur, *nulls,
                            note=f"all values are null in the {side}")
    cur_counts = st.binned(values, edges[1:-1]).astype(np.float64)
    cdf_ref = np.cumsum(ref_counts) / ref_counts.sum()
    cdf_cur = np.cumsum(cur_counts) / cur_counts.sum()
    p_value: float | None = None
    if method == "ks":
        statistic = float(np.max(np.abs(cdf_ref - cdf_cur)))
        p_value = st.ks_p_value(statistic, n_ref, n_cur)
    elif method == "wasserstein":
        widths = np.diff(edges)[:-1]
        gap = float(np.sum(np.abs(cdf_ref - cdf_cur)[:-1] * widths))
        scale = column.std or 0.0
        statistic = gap / scale if scale > 0 else (0.0 if gap == 0 else float("inf"))
    else:
        statistic = st.psi_from_counts(ref_counts, cur_counts)
    labels = [f"{a:.3g} to {b:.3g}" for a, b in pairwise(edges)]
    distribution = Distribution(labels, list(ref_counts / ref_counts.sum()),
                                list(cur_counts / cur_counts.sum()))
    return FeatureDrift(column.name, "numeric", method, statistic, p_value, level,
                        st.is_drift(method, statistic, p_value, level), n_ref, n_cur, *nulls,
                        note=note, distribution=distribution)


def _categorical(column: Any, current: pd.Series, method: str,
                 threshold: float | None) -> FeatureDrift:
    top = dict(column.top)
    if not top:
        raise InvalidInput(f"the profile of {column.name!r} holds no categories to compare with",
                           hint="compare against the dataset's rows instead (drop 'profile:')")
    labels = [*top, OTHER]
    ref_other = max(0, column.count - column.nulls - sum(top.values()))
    ref = np.array([*top.values(), ref_other], dtype=np.float64)
    found = current.dropna().astype(str).value_counts()
    cur_known = [int(found.get(label, 0)) for label in top]
    cur = np.array([*cur_known, int(found.sum()) - sum(cur_known)], dtype=np.float64)
    nulls = (column.null_fraction, 1 - found.sum() / len(current) if len(current) else 0.0)
    verdict = categorical_verdict(column.name, labels, ref, cur, method, threshold, nulls)
    note = "from the reference's profile (top categories, the rest pooled)"
    return FeatureDrift(**{**verdict.__dict__, "note": note})
