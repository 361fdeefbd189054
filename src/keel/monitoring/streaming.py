"""Drift on tables larger than memory: record batches in, histograms out.

Exact two-sample tests need both samples sorted in memory, which data larger
than RAM cannot give. Instead: one pass over the reference draws a uniform
sample (bottom-k of random keys: exactly uniform, one batch at a time) and
counts categories; the sample's quantiles fix ~2,000 fine bins per numeric
column; a second reference pass and one current pass count values per bin.
KS is then the largest gap between the binned CDFs (off by at most one fine
bin's mass, ~0.05%), Wasserstein integrates the CDF gap over the bin widths,
PSI merges fine bins into deciles. Memory is one batch plus the samples and
counts, whatever the files' sizes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import InvalidInput
from keel.monitoring import statistics as st
from keel.monitoring.drift import (
    DISTRIBUTION_BINS,
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
    import pyarrow as pa

    from keel.monitoring.sources import Source

SAMPLE = 200_000
FINE_BINS = 2_000
BATCH_ROWS = 131_072


@dataclass
class _Numeric:
    """One numeric column's running figures on one side."""

    keys: np.ndarray = field(default_factory=lambda: np.empty(0))
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))
    fine: np.ndarray | None = None
    coarse: np.ndarray | None = None
    rows: int = 0
    values: int = 0


def batches(source: Source, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The source's rows, a bounded batch at a time."""
    import pyarrow as pa

    if source.data is not None:
        yield from pa.Table.from_pandas(source.data[columns], preserve_index=False).to_batches(
            BATCH_ROWS)
        return
    assert source.path is not None
    if source.path.suffix.lower() == ".csv":
        from pyarrow import csv

        with csv.open_csv(source.path) as reader:
            for batch in reader:
                yield batch.select(columns)
        return
    import pyarrow.parquet as pq

    yield from pq.ParquetFile(source.path).iter_batches(batch_size=BATCH_ROWS, columns=columns)


def schema_names(source: Source) -> list[str]:
    if source.data is not None:
        return [str(c) for c in source.data.columns]
    assert source.path is not None
    if source.path.suffix.lower() == ".csv":
        from pyarrow import csv

        with csv.open_csv(source.path) as reader:
            return list(reader.schema.names)
    import pyarrow.parquet as pq

    return list(pq.read_schema(source.path).names)


def streamed_drift(reference: Source, current: Source, categorical: Sequence[str] | None,
                   methods: str | Mapping[str, str] | None,
                   thresholds: float | Mapping[str, float] | None,
                   columns: Sequence[str] | None, drift_share: float) -> DriftResult:
    """:func:`keel.drift` for sources read in batches (see the module's notes)."""
    names = check_schemas(schema_names(reference), schema_names(current), columns)
    declared = set(categorical or ())
    rng = np.random.default_rng(0)
    kinds: dict[str, str] = {}
    ref_num: dict[str, _Numeric] = {}
    ref_cat: dict[str, dict[str, int]] = {}
    ref_rows = 0
    for batch in batches(reference, names):  # pass 1: samples, categories, kinds
        ref_rows += batch.num_rows
        for name in names:
            column = batch.column(name)
            if name not in kinds:
                kinds[name] = _kind(column.type, name in declared)
            if kinds[name] == "numeric":
                _sample(ref_num.setdefault(name, _Numeric()), _floats(column), rng)
            else:
                _count(ref_cat.setdefault(name, {}), column)
    check_rows(ref_rows, 1)
    edges = {n: _edges(ref_num[n].sample) for n in ref_num}
    for batch in batches(reference, names):  # pass 2: the reference's fine counts
        for name in ref_num:
            _bin(ref_num[name], _floats(batch.column(name)), *edges[name])
    cur_num = {n: _Numeric() for n in ref_num}
    cur_cat: dict[str, dict[str, int]] = {n: {} for n in ref_cat}
    cur_rows = 0
    for batch in batches(current, names):  # pass 3: the current's counts
        cur_rows += batch.num_rows
        for name in ref_num:
            _bin(cur_num[name], _floats(batch.column(name)), *edges[name])
        for name in ref_cat:
            _count(cur_cat[name], batch.column(name))
    check_rows(ref_rows, cur_rows)
    features = []
    for name in names:
        method = method_for(name, kinds[name], methods)
        threshold = threshold_for(name, method, thresholds)
        if kinds[name] == "numeric":
            features.append(_numeric_verdict(name, ref_num[name], cur_num[name], edges[name],
                                             method, threshold))
        else:
            labels = sorted(set(ref_cat[name]) | set(cur_cat[name]))
            ref = np.array([ref_cat[name].get(k, 0) for k in labels], dtype=np.float64)
            cur = np.array([cur_cat[name].get(k, 0) for k in labels], dtype=np.float64)
            nulls = (1 - ref.sum() / ref_rows, 1 - cur.sum() / cur_rows)
            features.append(categorical_verdict(name, labels, ref, cur, method, threshold,
                                                nulls))
    return DriftResult(features, drift_share, ref_rows, cur_rows)


def _kind(arrow_type: Any, declared: bool) -> str:
    import pyarrow.types as types

    numeric = (types.is_integer(arrow_type) or types.is_floating(arrow_type)
               or types.is_decimal(arrow_type) or types.is_null(arrow_type))
    return "numeric" if numeric and not declared else "categorical"


def _floats(column: Any) -> np.ndarray:
    values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return values[~np.isnan(values)]


def _sample(acc: _Numeric, values: np.ndarray, rng: np.random.Generator) -> None:
    # Bottom-k sampling: every value gets a uniform key; the SAMPLE smallest
    # keys seen so far are a uniform sample of everything seen so far.
    keys = np.concatenate([acc.keys, rng.random(len(values))])
    sample = np.concatenate([acc.sample, values])
    if len(keys) > SAMPLE:
        keep = np.argpartition(keys, SAMPLE)[:SAMPLE]
        keys, sample = keys[keep], sample[keep]
    acc.keys, acc.sample = keys, sample


def _count(counts: dict[str, int], column: Any) -> None:
    import pyarrow.compute as pc

    found = pc.value_counts(pc.cast(column, "string") if not _is_string(column.type)
                            else column)
    for item in found.to_pylist():
        if item["values"] is not None:
            key = str(item["values"])
            counts[key] = counts.get(key, 0) + int(item["counts"])


def _is_string(arrow_type: Any) -> bool:
    import pyarrow.types as types

    return bool(types.is_string(arrow_type) or types.is_large_string(arrow_type))


def _edges(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fine inner edges at the sample's quantiles, and the report's 20 bins."""
    if not len(sample):
        return np.empty(0), np.empty(0)
    fine = np.unique(np.quantile(sample, np.linspace(0, 1, FINE_BINS + 1)))
    low, high = np.quantile(sample, [0.01, 0.99])
    if high <= low:
        high = low + 1.0
    return fine, np.linspace(low, high, DISTRIBUTION_BINS + 1)[1:-1]


def _bin(acc: _Numeric, values: np.ndarray, fine: np.ndarray, coarse: np.ndarray) -> None:
    values.sort()
    acc.values += len(values)
    fine_counts, coarse_counts = st.binned(values, fine), st.binned(values, coarse)
    acc.fine = fine_counts if acc.fine is None else acc.fine + fine_counts
    acc.coarse = coarse_counts if acc.coarse is None else acc.coarse + coarse_counts
    if not len(acc.sample):  # the current side keeps a small sample for its scale
        acc.sample = values[:: max(1, len(values) // 1000)]


def _numeric_verdict(name: str, ref: _Numeric, cur: _Numeric, edges: tuple[np.ndarray, np.ndarray],
                     method: str, threshold: float | None) -> FeatureDrift:
    method = "ks" if method == "default" else method
    level = st.THRESHOLDS[method] if threshold is None else threshold
    if not ref.values or not cur.values or ref.fine is None or cur.fine is None:
        side = "reference" if not ref.values else "current"
        return FeatureDrift(name, "numeric", method, float("nan"), None, level,
                            bool(ref.values or cur.values), ref.values, cur.values,
                            note=f"all values are null in the {side}")
    fine, coarse = edges
    cdf_ref = np.cumsum(ref.fine) / ref.values
    cdf_cur = np.cumsum(cur.fine) / cur.values
    p_value: float | None = None
    if method == "ks":
        statistic = float(np.max(np.abs(cdf_ref - cdf_cur)))
        p_value = st.ks_p_value(statistic, ref.values, cur.values)
    elif method == "wasserstein":
        # The CDF gap at each inner edge, held over the width to the next edge.
        gaps = np.abs(cdf_ref - cdf_cur)[:-1][: len(fine) - 1]
        statistic = float(np.sum(gaps * np.diff(fine)[: len(gaps)]))
        scale = st.scale_of(ref.sample)
        statistic = statistic / scale if scale > 0 else (0.0 if statistic == 0 else float("inf"))
    else:
        deciles = np.searchsorted(fine, np.quantile(ref.sample, np.linspace(0, 1, 11)[1:-1]))
        bounds = np.unique(np.concatenate([[0], deciles + 1, [len(ref.fine)]]))
        statistic = st.psi_from_counts(np.add.reduceat(ref.fine, bounds[:-1]),
                                       np.add.reduceat(cur.fine, bounds[:-1]))
    if ref.coarse is None or cur.coarse is None:
        raise InvalidInput(f"column {name!r} has no values to bin")
    ends = [coarse[0] - (coarse[1] - coarse[0]) if len(coarse) > 1 else coarse[0],
            *coarse, coarse[-1] + (coarse[-1] - coarse[-2]) if len(coarse) > 1 else coarse[0]]
    labels = [f"{a:.3g} to {b:.3g}" for a, b in pairwise(ends)]
    distribution = Distribution(labels, list(ref.coarse / ref.values),
                                list(cur.coarse / cur.values))
    return FeatureDrift(name, "numeric", method, statistic, p_value, level,
                        st.is_drift(method, statistic, p_value, level), ref.values, cur.values,
                        distribution=distribution)
