"""A model's input signature: inferred from an example, enforced on every predict.

Tables (pandas DataFrames) are described column by column; arrays by dtype and
shape. A mismatch raises :class:`InvalidInput` naming the column at fault,
instead of letting the model fail deep inside with an index error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from keel.errors import InvalidInput

# dtype kinds a column of each declared kind accepts without losing meaning.
_ACCEPTS = {
    "float": {"f", "i", "u", "b"},
    "integer": {"i", "u", "b"},
    "boolean": {"b"},
    "string": {"O", "U", "S", "T"},
    "datetime": {"M"},
    "category": {"O", "U", "S", "T", "i", "u", "f", "b"},
}


def _kind(dtype: Any) -> str:
    """The signature's name for a pandas/numpy dtype."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


@dataclass(frozen=True)
class Column:
    """One named input column and the kind of values it holds."""

    name: str
    kind: str
    dtype: str


@dataclass(frozen=True)
class Signature:
    """What a model accepts: a table of named columns, or an array of a shape."""

    kind: str                                   # "table" or "array"
    columns: tuple[Column, ...] = ()
    dtype: str | None = None                    # arrays: element dtype
    shape: tuple[int, ...] = field(default=())  # arrays: -1 for "any length"

    @classmethod
    def infer(cls, example: Any) -> Signature:
        """Describe an input example (DataFrame, ndarray, list of rows or dict of columns)."""
        if isinstance(example, pd.Series):
            example = example.to_frame()
        if isinstance(example, dict) or (isinstance(example, list) and example
                                         and isinstance(example[0], dict)):
            example = pd.DataFrame(example)
        if isinstance(example, pd.DataFrame):
            return cls("table", tuple(Column(str(n), _kind(d), str(d))
                                      for n, d in example.dtypes.items()))
        array = np.asarray(example)
        if array.ndim == 0:
            raise InvalidInput("an input example must hold rows, got a single value",
                               hint="pass a few rows, e.g. X[:5]")
        return cls("array", dtype=str(array.dtype), shape=(-1, *array.shape[1:]))

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(kind=data["kind"], columns=tuple(Column(**c) for c in data.get("columns", [])),
                   dtype=data.get("dtype"), shape=tuple(data.get("shape") or ()))

    def describe(self) -> str:
        """One line for people: ``table(age: integer, region: string)``."""
        if self.kind == "table":
            return "table(" + ", ".join(f"{c.name}: {c.kind}" for c in self.columns) + ")"
        return f"array({self.dtype}, shape {list(self.shape)})"

    # -- enforcement -------------------------------------------------------

    def enforce(self, data: Any) -> Any:
        """Check ``data`` against the signature; return it in the model's layout
        (a DataFrame with the columns in signature order, or an ndarray)."""
        if self.kind == "table":
            return self._enforce_table(data)
        return self._enforce_array(data)

    def _enforce_table(self, data: Any) -> pd.DataFrame:
        if isinstance(data, pd.Series):
            data = data.to_frame().T if data.name is None else data.to_frame()
        if isinstance(data, dict | list) and not isinstance(data, pd.DataFrame):
            data = pd.DataFrame(data)
        if not isinstance(data, pd.DataFrame):
            array = np.asarray(data)
            if array.ndim != 2 or array.shape[1] != len(self.columns):
                raise InvalidInput(
                    f"input has shape {list(array.shape)}; the model takes a table of "
                    f"{len(self.columns)} columns: {', '.join(self.names)}",
                    hint="pass a pandas DataFrame with those columns")
            data = pd.DataFrame(array, columns=self.names)
        names = [str(c) for c in data.columns]
        missing = [n for n in self.names if n not in names]
        extra = [n for n in names if n not in self.names]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(map(repr, missing))}")
            if extra:
                parts.append(f"unexpected column(s) {', '.join(map(repr, extra))}")
            raise InvalidInput("input does not match the model's signature: " + "; ".join(parts),
                               hint="the model takes " + self.describe())
        if names != self.names:
            data = data.rename(columns=str)[self.names]
        # Touch only columns that need converting: writing every column back
        # splits the frame's single block into one per column and cost ~100 us
        # per column on every predict (bench/models.py --profile).
        converted = {}
        for column, dtype in zip(self.columns, data.dtypes, strict=True):
            if _kind(dtype) != column.kind:
                converted[column.name] = _coerce(data[column.name], column)
        return data.assign(**converted) if converted else data

    def _enforce_array(self, data: Any) -> np.ndarray:
        array = data.to_numpy() if isinstance(data, pd.DataFrame) else np.asarray(data)
        expected = self.shape[1:]
        if array.ndim != len(self.shape) or tuple(array.shape[1:]) != tuple(expected):
            raise InvalidInput(f"input has shape {list(array.shape)}; the model takes "
                               f"{[-1, *expected]}",
                               hint="-1 means any number of rows")
        want = np.dtype(self.dtype)
        if array.dtype != want:
            if not np.can_cast(array.dtype, want, casting="same_kind"):
                raise InvalidInput(f"input dtype {array.dtype} cannot be used as {want}",
                                   hint=f"convert the input with .astype('{want}')")
            array = array.astype(want)
        return array


def _coerce(values: pd.Series, column: Column) -> pd.Series:
    """A column in the type the model was trained on, or an error naming it."""
    kind = values.dtype.kind if isinstance(values.dtype, np.dtype) else _kind(values.dtype)[0]
    if _kind(values.dtype) == column.kind:
        return values
    accepted = _ACCEPTS.get(column.kind, set())
    if isinstance(values.dtype, np.dtype) and kind in accepted:
        if column.kind == "float":
            return values.astype("float64")
        return values
    if column.kind in ("integer", "float") and (values.dtype == object
                                                or _kind(values.dtype) == "string"):
        # JSON and CSV often deliver numbers as objects, or as pandas' string
        # dtype (pandas 3's default for text); accept them only if every value
        # really is a number.
        converted = pd.to_numeric(values, errors="coerce")
        if converted.notna().sum() == values.notna().sum():
            if column.kind == "float":
                return converted.astype("float64")
            # pandas' string dtype converts to nullable Int64: give the model numpy ints.
            return converted.astype(np.dtype(column.dtype)) if converted.notna().all() \
                else converted
    if column.kind == "integer" and _kind(values.dtype) == "float":
        whole = values.dropna()
        if values.notna().all() and (whole == whole.round()).all():
            return values.astype(np.dtype(column.dtype))
    raise InvalidInput(f"column {column.name!r} holds {_kind(values.dtype)} values "
                       f"({values.dtype}); the model takes {column.kind} ({column.dtype})",
                       hint=f"convert column {column.name!r} before predicting")
