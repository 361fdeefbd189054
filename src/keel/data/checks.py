"""Declared data-quality expectations, validated with vectorised pandas checks.

Declared in keel.toml::

    [datasets.transactions.checks]
    columns = { id = "int", amount = "float", country = "string" }
    not_null = ["id", "amount"]
    unique = ["id"]
    ranges = { amount = [0, 10000] }        # "-inf" / "inf" leave a side open
    allowed = { country = ["DE", "FR", "US"] }
    rows = [100, 1000000]

or in Python as :class:`Expectations`. Every result keeps up to five failing
rows as examples, so a refusal shows what to fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from keel.errors import InvalidInput

TYPES: dict[str, Callable[[pd.Series], bool]] = {
    "int": pd.api.types.is_integer_dtype,
    "float": pd.api.types.is_float_dtype,
    "number": lambda s: pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s),
    "string": lambda s: pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s),
    "bool": pd.api.types.is_bool_dtype,
    "datetime": pd.api.types.is_datetime64_any_dtype,
}
EXAMPLES = 5
_KEYS = ("columns", "not_null", "unique", "ranges", "allowed", "rows")


@dataclass(frozen=True)
class Expectations:
    """What a dataset's tables must satisfy. All parts are optional."""

    columns: dict[str, str] = field(default_factory=dict)
    not_null: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    allowed: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    rows: tuple[int | None, int | None] = (None, None)

    @property
    def is_empty(self) -> bool:
        return self == Expectations()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ranges"] = {k: [_bound_out(lo), _bound_out(hi)] for k, (lo, hi) in
                          self.ranges.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Expectations:
        """Parse the ``[datasets.NAME.checks]`` table; a clear error for anything malformed."""
        unknown = set(data) - set(_KEYS)
        if unknown:
            raise InvalidInput(f"unknown check {sorted(unknown)[0]!r}",
                               hint="known checks: " + ", ".join(_KEYS))
        columns = _mapping(data, "columns")
        for col, kind in columns.items():
            if kind not in TYPES:
                raise InvalidInput(f"checks.columns: type {kind!r} of {col!r} is unknown",
                                   hint="use one of " + ", ".join(TYPES))
        ranges = {}
        for col, bounds in _mapping(data, "ranges").items():
            if not isinstance(bounds, list | tuple) or len(bounds) != 2:
                raise InvalidInput(f"checks.ranges.{col} must be [min, max]",
                                   hint='e.g. amount = [0, 10000]; "-inf"/"inf" for open ends')
            lo, hi = _bound_in(col, bounds[0]), _bound_in(col, bounds[1])
            if lo is not None and hi is not None and lo > hi:
                raise InvalidInput(f"checks.ranges.{col}: min {lo} is above max {hi}")
            ranges[col] = (lo, hi)
        allowed = {}
        for col, values in _mapping(data, "allowed").items():
            if not isinstance(values, list | tuple) or not values:
                raise InvalidInput(f"checks.allowed.{col} must be a non-empty list of values")
            allowed[col] = tuple(values)
        rows = data.get("rows", [None, None])
        if not isinstance(rows, list | tuple) or len(rows) != 2 or not all(
                r is None or (isinstance(r, int) and r >= 0) for r in rows):
            raise InvalidInput("checks.rows must be [min, max] row counts",
                               hint="e.g. rows = [100, 1000000]")
        return cls(dict(columns), _names(data, "not_null"), _names(data, "unique"), ranges,
                   allowed, (rows[0], rows[1]))


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InvalidInput(f"checks.{key} must be a table of column = value")
    return value


def _names(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"checks.{key} must be a list of column names",
                           hint=f'e.g. {key} = ["id"]')
    return tuple(value)


def _bound_in(col: str, value: Any) -> float | None:
    if value in (None, "-inf", "inf"):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"checks.ranges.{col}: bound {value!r} is not a number")
    return float(value)


def _bound_out(value: float | None) -> float | str:
    return "inf" if value is None else value


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome with up to five failing rows."""

    check: str
    passed: bool
    failing: int
    message: str
    examples: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class CheckReport:
    """Every check's result for one table."""

    source: str
    rows: int
    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "rows": self.rows, "passed": self.passed,
                "results": [asdict(r) for r in self.results]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckReport:
        return cls(data["source"], data["rows"], tuple(
            CheckResult(r["check"], r["passed"], r["failing"], r["message"],
                        tuple(r["examples"])) for r in data["results"]))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _result(name: str, frame: pd.DataFrame, bad: pd.Series, columns: list[str],
            what: str) -> CheckResult:
    failing = int(bad.sum())
    rows = frame.loc[bad, columns].head(EXAMPLES)
    examples = tuple({"row": int(str(i)), **{str(c): _plain(v) for c, v in row.items()}}
                     for i, row in rows.iterrows())
    message = "ok" if not failing else f"{failing} row(s) {what}"
    return CheckResult(name, failing == 0, failing, message, examples)


def validate(frame: pd.DataFrame, expectations: Expectations, source: str = "") -> CheckReport:
    """Run every expectation against ``frame``; missing columns are failed checks."""
    results: list[CheckResult] = []

    def missing(name: str, col: str) -> bool:
        if col in frame.columns:
            return False
        results.append(CheckResult(name, False, len(frame), f"column {col!r} is missing"))
        return True

    for col, kind in expectations.columns.items():
        name = f"type({col}) = {kind}"
        if not missing(name, col):
            ok = TYPES[kind](frame[col])
            results.append(CheckResult(name, ok, 0 if ok else len(frame),
                                       "ok" if ok else f"column is {frame[col].dtype}"))
    for col in expectations.not_null:
        if not missing(f"not_null({col})", col):
            results.append(_result(f"not_null({col})", frame, frame[col].isna(), [col],
                                   "are null"))
    for col in expectations.unique:
        if not missing(f"unique({col})", col):
            dup = frame[col].duplicated(keep=False) & frame[col].notna()
            results.append(_result(f"unique({col})", frame, dup, [col], "share a value"))
    for col, (lo, hi) in expectations.ranges.items():
        name = f"range({col}) in [{_bound_out(lo) if lo is not None else '-inf'}, " \
               f"{_bound_out(hi)}]"
        if not missing(name, col):
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = pd.Series(False, index=frame.index)
            if lo is not None:
                bad |= values < lo
            if hi is not None:
                bad |= values > hi
            bad |= values.isna() & frame[col].notna()  # text where a number belongs
            results.append(_result(name, frame, bad, [col], "are out of range"))
    for col, allowed in expectations.allowed.items():
        name = f"allowed({col})"
        if not missing(name, col):
            bad = ~frame[col].isin(allowed) & frame[col].notna()
            results.append(_result(name, frame, bad, [col], "hold values not allowed"))
    lo_rows, hi_rows = expectations.rows
    if lo_rows is not None or hi_rows is not None:
        ok = (lo_rows is None or len(frame) >= lo_rows) and (hi_rows is None or
                                                             len(frame) <= hi_rows)
        results.append(CheckResult(f"rows in [{lo_rows}, {hi_rows}]", ok, 0 if ok else len(frame),
                                   f"{len(frame)} rows"))
    return CheckReport(source, len(frame), tuple(results))


def validate_file(path: Path, expectations: Expectations) -> CheckReport:
    """Read a CSV or Parquet file and validate it."""
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"cannot read {path.name} to check it: {exc}") from exc
    return validate(frame, expectations, path.name)
