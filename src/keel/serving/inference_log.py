"""The inference log: every prediction, written off the request path.

A server hands each answered request to :class:`InferenceLogWriter`, which
puts it on a bounded queue and returns at once. A background thread turns
what accumulated into an append-only Parquet segment (one row per predicted
row), stores it in the blob store, and indexes it in the metadata store
(``inference_segments``). When the queue is full or a segment cannot be
stored (full disk, store outage) the rows are counted as dropped; a
prediction never waits for, or fails because of, the log.

:class:`InferenceLog` reads it back: ``keel.inference_log("prod").read()``
gives one row per prediction with the columns ``request_id``, ``row``,
``time``, ``deployment``, ``model_version``, ``role``, ``latency_ms``, one
column per input feature, ``prediction`` and ``label`` (joined from
``POST /feedback``; missing until a label arrives).
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from keel.clock import now_ms
from keel.serving.handoff import Handoff
from keel.serving.payload import Batch
from keel.workspace import Workspace, resolve_workspace

log = logging.getLogger("keel.serving")

META_COLUMNS = ("request_id", "row", "time", "deployment", "model_version", "role",
                "latency_ms")
DICTIONARY = ["deployment", "model_version", "role"]  # few distinct values per segment


@dataclass
class Entry:
    """One answered request, as the hot path hands it over (no copying)."""

    request_id: str
    time_ms: int
    version: str
    role: str
    latency_ms: float
    rows: Batch
    predictions: Any


@dataclass
class Entries:
    """Several requests answered by one version in one model call (the shadow
    mirror's batches): logged without an :class:`Entry` per request."""

    request_ids: list[str]
    times_ms: list[int]
    version: str
    role: str
    latencies_ms: list[float]
    counts: list[int]  # rows of each request, in order
    rows: Batch  # all their rows, stacked in the same order
    predictions: Any


@dataclass
class LogCounters:
    """What the writer did: rows written, dropped, segments, the last failure."""

    written: int = 0
    dropped: int = 0
    segments: int = 0
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"written": self.written, "dropped": self.dropped, "segments": self.segments,
                "last_error": self.last_error}


class InferenceLogWriter:
    """A bounded queue and a thread that writes Parquet segments from it."""

    def __init__(self, ws: Workspace, deployment: str, worker: str, sample: float = 1.0,
                 max_queue: int = 20_000, segment_rows: int = 20_000,
                 flush_seconds: float = 5.0) -> None:
        self._ws = ws
        self.deployment = deployment
        self.worker = worker
        self.sample = sample
        self.counters = LogCounters()
        # Taken every 50 ms: ~400 entries a batch at 8,000 requests/s.
        self._handoff: Handoff[Entry | Entries] = Handoff(max_queue, interval=0.05)
        self._segment_rows = segment_rows
        self._flush_seconds = flush_seconds
        self._thread = threading.Thread(target=self._run, name=f"keel-log-{deployment}",
                                        daemon=True)
        self._thread.start()

    def submit(self, entry: Entry | Entries) -> None:
        """Queue one request's rows; never blocks (a full queue counts a drop)."""
        if not self._handoff.put(entry):
            with self.counters.lock:
                self.counters.dropped += len(entry.rows)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread (graceful shutdown)."""
        self._handoff.close()
        self._thread.join(timeout)

    def _run(self) -> None:
        pending: list[Entry | Entries] = []
        rows = 0
        started = time.monotonic()
        while True:
            for entry in self._handoff.take():
                pending.append(entry)
                rows += len(entry.rows)
                # Segments of segment_rows at most, however much waited: a
                # writer that fell behind must not build one table of millions
                # of rows, whose conversions hold the interpreter for seconds.
                if rows >= self._segment_rows:
                    self._write(pending)
                    pending, rows = [], 0
                    started = time.monotonic()
            if self._handoff.closed:
                self._write(pending)
                return
            if pending and time.monotonic() - started >= self._flush_seconds:
                self._write(pending)
                pending, rows = [], 0
            if not pending:
                started = time.monotonic()

    def _write(self, entries: list[Entry | Entries]) -> None:
        if not entries:
            return
        count = sum(len(e.rows) for e in entries)
        try:
            table = to_arrow(entries, self.deployment)
            buffer = io.BytesIO()
            # Dictionary-encode only the columns that repeat: trying it on every
            # feature column (the default) took 2.4x as long on float inputs,
            # for a larger file (37 vs 15 ms for 20,000 rows of 20 floats).
            # Snappy (Parquet's default): half zstd's time on the serving machine
            # for files ~8% larger (bench/serving.py's inputs).
            pq.write_table(table, buffer, compression="snappy", use_dictionary=DICTIONARY)
            # The segment's time range (rows are not in time order: shadow
            # answers come after the live ones they mirror).
            bounds = pc.min_max(table.column("time"))
            start, end = int(bounds["min"].as_py()), int(bounds["max"].as_py())
            with self._ws.writing():  # gc must not take the blob before it is indexed
                digest = self._ws.blobs.put_bytes(buffer.getvalue())
                self._ws.store.add_inference_segment(self.deployment, digest, count,
                                                     start, end, self.worker)
        except Exception as exc:  # a log that cannot be written must not stop serving
            with self.counters.lock:
                self.counters.dropped += count
                self.counters.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("inference log: %d row(s) dropped: %s", count, exc)
            return
        with self.counters.lock:
            self.counters.written += count
            self.counters.segments += 1


def to_arrow(entries: list[Entry | Entries], deployment: str) -> pa.Table:
    """One row per predicted row: the meta columns, the features, the prediction.

    Built as an Arrow table straight from numpy, not through a pandas
    DataFrame: the log thread shares the interpreter with the request path,
    and pandas' conversions were half of its ~6 us a row.
    """
    # One request per Entry (the live path), many per Entries (shadow batches):
    # the table holds the former, then the latter, and every column below
    # follows the same order. Comprehensions, not one loop of appends: this
    # runs under the GIL the requests need (~1.7 -> ~1 us a request).
    singles = [e for e in entries if type(e) is Entry]
    batches = [e for e in entries if type(e) is Entries]
    ordered: list[Entry | Entries] = [*singles, *batches]
    ids = [e.request_id for e in singles]
    times = [e.time_ms for e in singles]
    versions = [e.version for e in singles]
    roles = [e.role for e in singles]
    latencies = [e.latency_ms for e in singles]
    sizes = [len(e.rows) for e in singles]
    for batch in batches:
        many = len(batch.request_ids)
        ids.extend(batch.request_ids)
        times.extend(batch.times_ms)
        versions.extend([batch.version] * many)
        roles.extend([batch.role] * many)
        latencies.extend(batch.latencies_ms)
        sizes.extend(batch.counts)
    counts = np.array(sizes, dtype=np.int64)
    total = int(counts.sum())
    # Row i of the table belongs to request which[i] (each request's rows in turn).
    which = None if total == len(counts) else np.repeat(np.arange(len(counts)), counts)

    def each(values: list[Any], kind: pa.DataType) -> pa.Array:
        # Text is converted once per request and repeated by Arrow (a take),
        # never as one Python object per row: cheap for the GIL the requests need.
        column = pa.array(values, kind)
        return column if which is None else column.take(which)

    starts = np.cumsum(counts) - counts
    columns: dict[str, pa.Array] = {
        "request_id": each(ids, pa.string()),
        # Each request's rows numbered from 0: the running index minus its start.
        "row": pa.array(np.arange(total, dtype=np.int64) - np.repeat(starts, counts)),
        "time": each(times, pa.int64()),
        "deployment": pa.array([deployment], pa.string()).take(np.zeros(total, np.int64)),
        "model_version": each(versions, pa.string()),
        "role": each(roles, pa.string()),
        "latency_ms": each(latencies, pa.float64()),
    }
    taken = set(META_COLUMNS) | {"prediction", "label"}
    for name, values in _feature_columns(ordered):
        columns[f"feature.{name}" if name in taken else name] = values
    columns["prediction"] = _predictions(ordered)
    return pa.table(columns)


def _predictions(entries: list[Entry | Entries]) -> pa.Array:
    """Every entry's predictions as one column: numeric arrays concatenated in
    numpy, anything else (labels as strings, lists) through Python objects."""
    arrays = [e.predictions for e in entries]
    if all(isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind in "biuf"
           for a in arrays):
        return pa.array(np.concatenate(arrays) if len(arrays) > 1 else arrays[0])
    predictions: list[Any] = []
    for values in arrays:
        predictions.extend(values.tolist() if hasattr(values, "tolist") else list(values))
    return pa.array(predictions)


def _feature_columns(entries: list[Entry | Entries]) -> list[tuple[str, pa.Array]]:
    """The inputs of every entry, stacked, as named Arrow columns; float arrays
    of one layout (the serving fast path) without a DataFrame per request."""
    first = entries[0].rows
    if first.array is not None and all(
            e.rows.array is not None and e.rows.columns == first.columns for e in entries):
        stacked = np.concatenate([e.rows.array for e in entries]) if len(entries) > 1 \
            else first.array
        return [(str(name), pa.array(stacked[:, i]))
                for i, name in enumerate(first.columns or [])]
    frame = _features(entries)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return [(str(name), table.column(i).combine_chunks())
            for i, name in enumerate(frame.columns)]


def _features(entries: list[Entry | Entries]) -> pd.DataFrame:
    """The inputs of every entry, stacked; float arrays of one layout (the serving
    fast path) are stacked as arrays, without a DataFrame per request."""
    first = entries[0].rows
    if first.array is not None and all(
            e.rows.array is not None and e.rows.columns == first.columns for e in entries):
        stacked = np.concatenate([e.rows.array for e in entries]) if len(entries) > 1 \
            else first.array
        return pd.DataFrame(stacked, columns=first.columns)
    frames = [e.rows.frame for e in entries]
    return pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 \
        else frames[0].reset_index(drop=True)


class InferenceLog:
    """Reads a deployment's inference log: ``keel.inference_log("prod").read()``."""

    def __init__(self, deployment: str, ws: Workspace | None = None) -> None:
        self.deployment = deployment
        self._ws = resolve_workspace(ws)

    def read(self, start: Any = None, end: Any = None, role: str | None = None,
             labels: bool = True) -> pd.DataFrame:
        """Predictions with ``start <= time <= end`` as a DataFrame, oldest first.

        ``start``/``end``: a datetime, an ISO date-time, epoch milliseconds, or
        a duration back from now (``"1h"``, ``"30m"``, ``"7d"``). ``role``:
        ``"live"`` or ``"shadow"`` only. ``time`` is a UTC timestamp.
        """
        start_ms, end_ms = to_ms(start), to_ms(end)
        segments = self._ws.store.inference_segments(self.deployment, start_ms, end_ms)
        bounds: list[tuple[str, str, Any]] = \
            [("time", ">=", start_ms)] if start_ms is not None else []
        bounds += [("time", "<=", end_ms)] if end_ms is not None else []
        if role is not None:
            bounds.append(("role", "==", role))
        # Pushed down to the Parquet reader: row groups outside the window are skipped.
        frames = [pd.read_parquet(io.BytesIO(self._ws.blobs.get_bytes(digest)),
                                  filters=bounds or None)
                  for _, digest, _ in segments]
        if not frames:
            return empty_log()
        table = pd.concat(frames, ignore_index=True, sort=False)
        if start_ms is not None:
            table = table[table["time"] >= start_ms]
        if end_ms is not None:
            table = table[table["time"] <= end_ms]
        if role is not None:
            table = table[table["role"] == role]
        table = table.sort_values(["time", "request_id", "row"], kind="stable")
        table = table.reset_index(drop=True)
        if labels:
            table["label"] = self._labels(table)
        table["time"] = pd.to_datetime(table["time"], unit="ms", utc=True)
        return table

    def _labels(self, table: pd.DataFrame) -> pd.Series:
        ids = table["request_id"].unique().tolist()
        found = self._ws.store.feedback_for(ids) if ids else {}
        if not found:
            return pd.Series([None] * len(table), index=table.index, dtype=object)
        values = []
        for request_id, row in zip(table["request_id"], table["row"], strict=True):
            label = found.get(request_id)
            # A list labels a multi-row request row by row; anything else labels every row.
            if isinstance(label, list):
                label = label[row] if row < len(label) else None
            values.append(label)
        return pd.Series(values, index=table.index, dtype=object)


def empty_log() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype=object) for name in
                          (*META_COLUMNS, "prediction", "label")})
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def to_ms(value: Any) -> int | None:
    """Epoch milliseconds for a time bound (see :meth:`InferenceLog.read`)."""
    from keel.durations import parse_duration

    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a time bound cannot be a bool")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, pd.Timestamp):
        return to_ms(value.to_pydatetime())
    text = str(value).strip()
    if re.fullmatch(r"(\d+(\.\d+)?[smhdw])+", text.lower()):
        return now_ms() - int(parse_duration(text) * 1000)
    try:
        return to_ms(datetime.fromisoformat(text))
    except ValueError:
        from keel.errors import InvalidInput

        raise InvalidInput(f"{value!r} is not a time", hint="give an ISO date-time "
                           "(2026-11-29T10:00), epoch milliseconds, or a duration back "
                           "from now (1h, 30m, 7d)") from None


def inference_log(deployment: str, ws: Workspace | None = None) -> InferenceLog:
    """The inference log of ``deployment`` (or of a model served directly, by its name).

    >>> keel.inference_log("prod").read(start="1h")
    """
    return InferenceLog(deployment, ws)
