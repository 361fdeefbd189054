"""Shadow traffic: a copy of each live request, answered by other versions in a
background thread. Their answers are logged (role ``shadow``) and counted,
never returned; a shadow that is slow or fails changes nothing on the live
path, because the live path only hands the request over (``handoff.py``; a
full handoff drops the copy and counts it).

Queued requests are predicted in batches (one model call for everything
waiting), so mirroring costs the server far less than a second model call per
request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from keel.serving.fastpath import Predictor
from keel.serving.handoff import Handoff
from keel.serving.inference_log import Entries, Entry
from keel.serving.payload import Batch
from keel.serving.split import Route
from keel.serving.stats import LiveStats

log = logging.getLogger("keel.serving")
MAX_BATCH_ROWS = 5_000
# How long the thread lets copies gather before answering them: shadow answers
# are never waited for, and one model call per 50 ms instead of one per request
# is what keeps mirroring cheap (bench/serving.py, canary + shadow overhead:
# gathering 10 ms cost ~30 us of CPU per request, 50 ms ~20 us).
GATHER_SECONDS = 0.05


@dataclass
class Mirrored:
    request_id: str
    time_ms: int
    rows: Batch
    log: bool


class ShadowMirror:
    """The queue and the thread that answer shadow copies."""

    def __init__(self, stats: LiveStats, record: Callable[[Entry | Entries], None],
                 on_drop: Callable[[], None], max_queue: int = 20_000) -> None:
        self._stats = stats
        self._record = record
        self._on_drop = on_drop
        self._handoff: Handoff[tuple[Mirrored, tuple[tuple[Route, Predictor], ...]]] = \
            Handoff(max_queue, interval=GATHER_SECONDS)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="keel-shadow", daemon=True)
        self._thread.start()

    def submit(self, item: Mirrored, shadows: tuple[tuple[Route, Predictor], ...]) -> None:
        """Queue a copy for ``shadows``; never blocks."""
        if not self._handoff.put((item, shadows)):
            self.dropped += 1
            self._on_drop()

    def close(self, timeout: float = 10.0) -> None:
        self._handoff.close()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._handoff.closed:
            # The copies of GATHER_SECONDS, answered in calls of MAX_BATCH_ROWS rows at most.
            batch: list[tuple[Mirrored, tuple[tuple[Route, Predictor], ...]]] = []
            rows = 0
            for item in self._handoff.take():
                batch.append(item)
                rows += len(item[0].rows)
                if rows >= MAX_BATCH_ROWS:
                    self._answer(batch)
                    batch, rows = [], 0
            if batch:
                self._answer(batch)

    def _answer(self, batch: list[tuple[Mirrored, tuple[tuple[Route, Predictor], ...]]]
                ) -> None:
        by_shadow: dict[str, tuple[Route, Predictor, list[Mirrored]]] = {}
        for item, shadows in batch:
            for route, model in shadows:
                by_shadow.setdefault(route.version, (route, model, []))[2].append(item)
        for route, model, items in by_shadow.values():
            try:
                self._predict(route, model, items)
            except Exception:  # a shadow's failure is only ever counted
                log.debug("shadow %s failed", route.version, exc_info=True)

    def _predict(self, route: Route, model: Predictor, items: list[Mirrored]) -> None:
        batch = stack([i.rows for i in items])
        started = time.perf_counter()
        try:
            predictions = model(batch)
        except Exception:  # judge each request on its own then
            if len(items) > 1:
                for item in items:
                    self._predict(route, model, [item])
                return
            self._stats.observe(route.version, "shadow", _ms(started), error=True)
            return
        elapsed = _ms(started)
        counts = [len(item.rows) for item in items]
        total = max(1, len(batch))
        shares = [elapsed * n / total for n in counts]  # the batch's time, shared by rows
        self._stats.observe_many(route.version, "shadow", shares)
        if all(item.log for item in items):  # the usual case (sampling 1): one log entry
            self._record(Entries([i.request_id for i in items], [i.time_ms for i in items],
                                 route.version, "shadow", shares, counts, batch, predictions))
            return
        offset = 0
        for item, n, share in zip(items, counts, shares, strict=True):
            if item.log:
                self._record(Entry(item.request_id, item.time_ms, route.version, "shadow",
                                   share, item.rows, predictions[offset:offset + n]))
            offset += n


def stack(batches: list[Batch]) -> Batch:
    """One batch of all rows: arrays of one layout stacked as arrays (no DataFrame
    per request), anything else concatenated as DataFrames."""
    first = batches[0]
    if len(batches) == 1:
        return first
    if first.array is not None and all(b.array is not None and b.columns == first.columns
                                       for b in batches):
        return Batch(array=np.concatenate([b.array for b in batches]), columns=first.columns)
    return Batch(pd.concat([b.frame for b in batches], ignore_index=True))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
