"""Request bodies to rows, answers to JSON: the body shapes clients already send.

Accepted (``Content-Type: application/json``):

- records: ``[{"age": 31, "plan": "pro"}, ...]`` or one record ``{"age": 31, ...}``;
- columnar: ``{"columns": ["age", "plan"], "data": [[31, "pro"], ...]}``;
- MLflow's bodies: ``{"dataframe_split": {"columns": [...], "data": [...]}}``,
  ``{"dataframe_records": [...]}``, ``{"instances": [...]}`` and ``{"inputs": ...}``
  (a list of records, a list of rows, or a dict of columns);

and ``text/csv`` with a header line. Anything else is a :class:`BadRequest`
with the HTTP status to answer (400, 413, 415, 422) and a message that says
what was wrong and what to send instead.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pandas as pd

from keel.packaging.signature import Signature

ENVELOPES = ("dataframe_split", "dataframe_records", "instances", "inputs")
SHAPES_HINT = ('send JSON records [{"col": value, ...}], {"columns": [...], "data": [[...]]}, '
               'or an MLflow body (dataframe_split, dataframe_records, instances, inputs)')


class BadRequest(Exception):
    """A request the server refuses, with the status and a JSON-ready message."""

    def __init__(self, status: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.hint:
            body["hint"] = self.hint
        return body


class Batch:
    """The rows of one request: a DataFrame, or (fast path) a float64 array whose
    columns are known to be the signature's, in order. The DataFrame of an
    array is built only when asked for (by the log's thread, off the hot path)."""

    __slots__ = ("_frame", "array", "columns")

    def __init__(self, frame: pd.DataFrame | None = None, array: np.ndarray | None = None,
                 columns: list[str] | None = None) -> None:
        self._frame = frame
        self.array = array
        self.columns = columns

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = pd.DataFrame(self.array, columns=self.columns, copy=False)
        return self._frame

    def __len__(self) -> int:
        return len(self.array) if self.array is not None else len(self.frame)


def parse_body(body: bytes, content_type: str | None, limit_bytes: int,
               signature: Signature | None = None) -> Batch:
    """The rows in ``body``; :class:`BadRequest` for anything the server cannot use.

    Given the model's ``signature``, rows of an all-float table are laid out
    straight into one float64 array (no per-column conversion later); any
    surprise falls back to the general path, which names what is wrong.
    """
    if len(body) > limit_bytes:
        raise BadRequest(413, f"request body is {len(body):,} bytes; the limit is "
                              f"{limit_bytes:,}",
                         hint="send fewer rows per request, or start the server with a "
                              "larger --max-body-mb")
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        return Batch(_csv(body))
    if kind not in ("application/json", "") and not kind.endswith("+json"):
        raise BadRequest(415, f"content type {content_type!r} is not supported",
                         hint="send Content-Type: application/json (or text/csv)")
    if not body.strip():
        raise BadRequest(400, "the request body is empty", hint=SHAPES_HINT)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, f"the request body is not valid JSON: {exc}",
                         hint=SHAPES_HINT) from None
    if signature is not None:
        names = float_columns(signature)
        if names is not None:
            array = float_rows(payload, names)
            if array is not None:
                return Batch(array=array, columns=names)
    return Batch(to_frame(payload))


def float_columns(signature: Signature) -> list[str] | None:
    """The column names of a table signature whose columns are all floats."""
    if signature.kind != "table" or not signature.columns:
        return None
    if any(c.kind != "float" or c.dtype != "float64" for c in signature.columns):
        return None
    return signature.names


def float_rows(payload: Any, names: list[str]) -> np.ndarray | None:
    """The fast path for all-float tables (records or columnar), or None."""
    try:
        if isinstance(payload, dict):
            if "dataframe_split" in payload and len(payload) == 1:
                payload = payload["dataframe_split"]
            elif "dataframe_records" in payload and len(payload) == 1:
                payload = payload["dataframe_records"]
            elif "instances" in payload and len(payload) == 1:
                payload = payload["instances"]
        if isinstance(payload, dict):
            if payload.get("columns") != names or not isinstance(payload.get("data"), list):
                return None
            rows = payload["data"]
        elif isinstance(payload, list) and payload and isinstance(payload[0], dict):
            width = len(names)
            if any(not isinstance(r, dict) or len(r) != width for r in payload):
                return None
            rows = [[r[c] for c in names] for r in payload]
        else:
            return None
        array = np.array(rows, dtype=np.float64)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if array.ndim != 2 or array.shape[1] != len(names) or not len(array):
        return None
    return array


def to_frame(payload: Any) -> pd.DataFrame:
    """A DataFrame from any accepted JSON shape (see the module docstring)."""
    if isinstance(payload, dict):
        envelope = [k for k in ENVELOPES if k in payload]
        if len(envelope) > 1:
            raise BadRequest(422, f"the body has both {envelope[0]!r} and {envelope[1]!r}",
                             hint="send one of them")
        if envelope:
            key = envelope[0]
            inner = payload[key]
            if key == "dataframe_split":
                if not isinstance(inner, dict):
                    raise BadRequest(422, "dataframe_split must be an object with 'columns' "
                                          "and 'data'", hint=SHAPES_HINT)
                return _columnar(inner)
            if key == "dataframe_records":
                return _records(inner, key)
            return _tensor_like(inner, key)
        if "data" in payload and "columns" in payload:
            return _columnar(payload)
        if "data" in payload and isinstance(payload["data"], list):
            return _tensor_like(payload["data"], "data")
        return _records([payload], "record")
    if isinstance(payload, list):
        return _records(payload, "records")
    raise BadRequest(422, f"the body is a JSON {type(payload).__name__}; expected rows",
                     hint=SHAPES_HINT)


def _columnar(part: dict[str, Any]) -> pd.DataFrame:
    columns, data = part.get("columns"), part.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadRequest(422, "'columns' must be a list of column names", hint=SHAPES_HINT)
    if not isinstance(data, list) or not data:
        raise BadRequest(422, "'data' must be a non-empty list of rows", hint=SHAPES_HINT)
    for number, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise BadRequest(422, f"row {number} of 'data' has "
                                  f"{len(row) if isinstance(row, list) else 'no'} values; "
                                  f"there are {len(columns)} columns",
                             hint="give every row one value per column, in column order")
    return pd.DataFrame(data, columns=columns)


def _records(items: Any, where: str) -> pd.DataFrame:
    if not isinstance(items, list) or not items:
        raise BadRequest(422, f"{where} must be a non-empty list of rows", hint=SHAPES_HINT)
    if not all(isinstance(item, dict) for item in items):
        raise BadRequest(422, f"every item of {where} must be an object of column: value",
                         hint=SHAPES_HINT)
    return pd.DataFrame.from_records(items)


def _tensor_like(inner: Any, key: str) -> pd.DataFrame:
    """``instances``/``inputs``: records, rows of values, or a dict of columns."""
    if isinstance(inner, dict):
        values = list(inner.values())
        if values and all(isinstance(v, list) for v in values):
            lengths = {len(v) for v in values}
            if len(lengths) != 1 or 0 in lengths:
                raise BadRequest(422, f"the columns of {key!r} have different lengths",
                                 hint="give every column the same number of values")
            return pd.DataFrame(inner)
        return _records([inner], key)
    if isinstance(inner, list) and inner:
        if all(isinstance(item, dict) for item in inner):
            return _records(inner, key)
        if all(isinstance(item, list) for item in inner):
            widths = {len(item) for item in inner}
            if len(widths) != 1:
                raise BadRequest(422, f"the rows of {key!r} have different lengths",
                                 hint="give every row the same number of values")
            return pd.DataFrame(inner)
        if not any(isinstance(item, list | dict) for item in inner):
            return pd.DataFrame([inner])
    raise BadRequest(422, f"{key!r} must be a non-empty list of rows or a dict of columns",
                     hint=SHAPES_HINT)


def _csv(body: bytes) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError) as exc:
        raise BadRequest(400, f"the CSV body cannot be read: {exc}",
                         hint="send a header line, then one line per row") from None
    if frame.empty:
        raise BadRequest(422, "the CSV body holds no rows", hint="send at least one row")
    return frame


def answer(predictions: Any, version: str, request_id: str) -> bytes:
    """The response body: predictions, the version that answered, the request id."""
    return orjson.dumps({"predictions": predictions, "model_version": version,
                         "request_id": request_id}, option=orjson.OPT_SERIALIZE_NUMPY)
