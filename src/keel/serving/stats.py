"""Live figures of a serving worker: requests, errors, latency and predictions per
model version, kept in memory and flushed to the store every few seconds.

Latency is a histogram on fixed, log-spaced bucket edges (the same on every
worker, so histograms add up across workers and windows); percentiles are
read off the summed histogram. Predictions are counted by value (class
labels, or numbers rounded to 3 significant figures), at most
``MAX_VALUES`` distinct values per window, the rest under "other": enough to
compare a canary's prediction distribution with the stable version's.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from typing import Any

from keel.entities import VersionStats

# Bucket upper edges in milliseconds: 0.05 ms to ~42 s, 25% apart (62 buckets);
# a percentile read off them is within 25% of the true value.
EDGES_MS = tuple(0.05 * 1.25 ** i for i in range(62))
MAX_VALUES = 50


def bucket_of(latency_ms: float) -> int:
    return min(bisect_left(EDGES_MS, latency_ms), len(EDGES_MS))


def percentile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram, in ms; None if empty."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    running = 0
    for index, count in enumerate(counts):
        running += count
        if running >= rank and count:
            return EDGES_MS[min(index, len(EDGES_MS) - 1)]
    return EDGES_MS[-1]


def prediction_key(value: Any) -> str:
    """How a prediction is counted: labels as they are, numbers to 3 significant figures."""
    if isinstance(value, bool | str) or value is None:
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)[:40]
    if number == int(number) and abs(number) < 1e9:
        return str(int(number))
    if not math.isfinite(number):
        return str(number)
    return f"{number:.3g}"


class _Counter:
    __slots__ = ("errors", "latency", "predictions", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latency = [0] * (len(EDGES_MS) + 1)
        self.predictions: dict[str, int] = {}


class LiveStats:
    """Per (version, role) counters of one worker, since its last flush."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # shadow predictions are counted from other threads
        self._counters: dict[tuple[str, str], _Counter] = {}

    def observe(self, version: str, role: str, latency_ms: float,
                predictions: Iterable[Any] = (), error: bool = False) -> None:
        with self._lock:
            counter = self._counters.get((version, role))
            if counter is None:
                counter = self._counters[(version, role)] = _Counter()
            counter.requests += 1
            counter.errors += int(error)
            counter.latency[bucket_of(latency_ms)] += 1
            for value in predictions:
                key = prediction_key(value)
                if key not in counter.predictions and len(counter.predictions) >= MAX_VALUES:
                    key = "other"
                counter.predictions[key] = counter.predictions.get(key, 0) + 1

    def observe_many(self, version: str, role: str, latencies_ms: list[float]) -> None:
        """Several successful requests at once (a shadow batch), without predictions."""
        with self._lock:
            counter = self._counters.get((version, role))
            if counter is None:
                counter = self._counters[(version, role)] = _Counter()
            counter.requests += len(latencies_ms)
            # A batch's shares are mostly one value: one bucket lookup per value.
            for latency, times in Counter(latencies_ms).items():
                counter.latency[bucket_of(latency)] += times

    def drain(self) -> list[VersionStats]:
        """What was counted since the last drain (and reset the counters)."""
        with self._lock:
            taken, self._counters = self._counters, {}
        return [VersionStats(v, r, c.requests, c.errors, c.latency, c.predictions)
                for (v, r), c in taken.items()]


def summarise(stats: VersionStats) -> dict[str, Any]:
    """Requests, error rate and latency percentiles, for people and audit records."""
    return {"version": stats.version, "role": stats.role, "requests": stats.requests,
            "errors": stats.errors,
            "error_rate": stats.errors / stats.requests if stats.requests else 0.0,
            "p50_ms": percentile(stats.latency, 0.5), "p99_ms": percentile(stats.latency, 0.99)}
