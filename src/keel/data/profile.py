"""Statistical profiles of tabular files (CSV, Parquet), read in bounded memory.

A profile is what ``keel data profile`` prints, what ``keel data diff``
compares between versions, and what drift monitoring will later compare live
traffic against — so histograms keep their bin edges and quantiles are stored.

One streaming pass over record batches: exact counts, nulls, min, max, mean
and standard deviation (Chan's parallel combination); quantiles and histogram
from a uniform random sample of at most ``SAMPLE`` values per column (exact
for smaller files; histogram counts are scaled to the column's full count).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keel.errors import InvalidInput

SAMPLE = 100_000
BINS = 20
TOP_K = 10
MAX_DISTINCT = 100_000  # stop counting new categories past this (distinct becomes ">=")
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass(frozen=True)
class Histogram:
    """Counts of values between consecutive ``edges`` (len(edges) == len(counts) + 1)."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class ColumnProfile:
    """Statistics of one column; numeric fields are None for other kinds."""

    name: str
    type: str
    kind: str  # numeric | categorical | other
    count: int
    nulls: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    histogram: Histogram | None = None
    top: tuple[tuple[str, int], ...] = ()
    distinct: int | None = None
    distinct_capped: bool = False

    @property
    def null_fraction(self) -> float:
        return self.nulls / self.count if self.count else 0.0


@dataclass(frozen=True)
class TableProfile:
    """A table's row count and per-column profiles."""

    rows: int
    columns: tuple[ColumnProfile, ...]

    def column(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: NaN and infinities become None."""
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableProfile:
        columns = []
        for c in data["columns"]:
            hist = c.get("histogram")
            columns.append(ColumnProfile(**{
                **c, "histogram": Histogram(tuple(hist["edges"]), tuple(hist["counts"]))
                if hist else None, "top": tuple((str(v), int(n)) for v, n in c.get("top", ())),
                "quantiles": dict(c.get("quantiles") or {})}))
        return cls(int(data["rows"]), tuple(columns))

    def summary_rows(self) -> list[dict[str, Any]]:
        """One flat row per column, ready for a table."""
        return [{"column": c.name, "type": c.type, "nulls %": round(100 * c.null_fraction, 2),
                 "min": c.min, "max": c.max, "mean": c.mean, "std": c.std,
                 "p50": c.quantiles.get("p50"),
                 "top": ", ".join(f"{v} ({n})" for v, n in c.top[:3])} for c in self.columns]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


class _Numeric:
    """Streaming statistics of a numeric column."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.lo, self.hi = math.inf, -math.inf  # over all values
        self.flo, self.fhi = math.inf, -math.inf  # over finite values (histogram range)
        self.rng = rng
        self.sample = np.empty(0)
        self.keys = np.empty(0)

    def add(self, values: np.ndarray) -> None:
        values = values[~np.isnan(values)]
        if len(values):
            # min/max keep +-inf; moments, quantiles and the histogram use finite values.
            self.lo = min(self.lo, float(values.min()))
            self.hi = max(self.hi, float(values.max()))
        values = values[np.isfinite(values)]
        if not len(values):
            return
        n, mean = len(values), float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total
        self.flo = min(self.flo, float(values.min()))
        self.fhi = max(self.fhi, float(values.max()))
        # Uniform sample: keep the values with the SAMPLE smallest random keys.
        keys = np.concatenate([self.keys, self.rng.random(n)])
        sample = np.concatenate([self.sample, values])
        if len(keys) > SAMPLE:
            keep = np.argpartition(keys, SAMPLE)[:SAMPLE]
            keys, sample = keys[keep], sample[keep]
        self.keys, self.sample = keys, sample

    def finish(self) -> dict[str, Any]:
        if not self.n:
            return {}
        std = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0
        quantiles = dict(zip((f"p{round(q * 100):02d}" for q in QUANTILES),
                             (float(x) for x in np.quantile(self.sample, QUANTILES)),
                             strict=True))
        edges = np.linspace(self.flo, self.fhi, BINS + 1) if self.fhi > self.flo else \
            np.array([self.flo - 0.5, self.fhi + 0.5])
        counts, _ = np.histogram(self.sample, bins=edges)
        scaled = np.round(counts * (self.n / len(self.sample))).astype(int)
        return {"min": self.lo, "max": self.hi, "mean": self.mean, "std": std,
                "quantiles": quantiles,
                "histogram": Histogram(tuple(float(e) for e in edges),
                                       tuple(int(c) for c in scaled))}


class _Categorical:
    """Streaming value counts of a string/bool column, capped at MAX_DISTINCT."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.capped = False

    def add(self, array: pa.Array) -> None:
        for item in pc.value_counts(array.drop_null()).to_pylist():
            key, n = str(item["values"]), int(item["counts"])
            if key in self.counts:
                self.counts[key] += n
            elif len(self.counts) < MAX_DISTINCT:
                self.counts[key] = n
            else:
                self.capped = True

    def finish(self) -> dict[str, Any]:
        top = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_K]
        return {"top": tuple(top), "distinct": len(self.counts),
                "distinct_capped": self.capped}


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or \
            pa.types.is_boolean(dtype) or pa.types.is_dictionary(dtype):
        return "categorical"
    return "other"


def profile_batches(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> TableProfile:
    """Profile a stream of record batches sharing ``schema``."""
    rng = np.random.default_rng(0)  # fixed seed: the same data gives the same profile
    kinds = [_kind(f.type) for f in schema]
    stats: list[Any] = [_Numeric(rng) if k == "numeric" else _Categorical()
                        if k == "categorical" else None for k in kinds]
    nulls = [0] * len(schema)
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        for i, column in enumerate(batch.columns):
            nulls[i] += column.null_count
            if kinds[i] == "numeric":
                values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
                stats[i].add(np.asarray(values, dtype=float))
            elif kinds[i] == "categorical":
                stats[i].add(column)
    columns = tuple(ColumnProfile(name=f.name, type=str(f.type), kind=kinds[i], count=rows,
                                  nulls=nulls[i], **(stats[i].finish() if stats[i] else {}))
                    for i, f in enumerate(schema))
    return TableProfile(rows, columns)


def profile_table(table: pa.Table | Any) -> TableProfile:
    """Profile an in-memory table (pyarrow Table or pandas DataFrame)."""
    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    return profile_batches(table.schema, iter(table.to_batches(max_chunksize=65_536)))


def profile_file(path: Path) -> TableProfile | None:
    """Profile a CSV or Parquet file; None for any other kind of file."""
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(path)
            return profile_batches(parquet.schema_arrow, parquet.iter_batches(65_536))
        if name.endswith((".csv", ".csv.gz")):
            import pyarrow.csv as pcsv

            reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=16 << 20))
            return profile_batches(reader.schema, iter(reader))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InvalidInput(f"cannot read {path.name} as a table: {exc}",
                           hint="fix the file, or give it an extension other than "
                                ".csv/.parquet so it is versioned without a profile") from exc
    return None
