"""The background writer: moves spooled lines into the store in batches.

One daemon thread per process serves every active run. It wakes every
``INTERVAL`` seconds; ``flush`` drains on the caller's thread instead of
waiting for it. Both take the spool's lock, so a batch is stored once.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from keel.tracking.spool import Spool, parse_lines

# 50 ms batches: at 200,000 points/s that is 10,000 rows per transaction, and a
# reader sees a value at most this long after it was logged.
INTERVAL = 0.05


class BatchSink(Protocol):
    def write_batch(self, run_id: str, params: list[tuple[str, str]],
                    tags: list[tuple[str, str]], metrics: list, spool: str | None = None,
                    offset: int | None = None, end: Any = None) -> None: ...


def drain(spool: Spool, store: BatchSink, end: Any = None) -> int:
    """Store every complete line the spool holds past its offset; return the count.

    With ``end`` (a RunEnd) the run is closed in the same transaction, even
    when nothing is left to store: one commit at the end of every run.
    """
    with spool.lock:
        if spool.closed:
            return 0
        data, new_offset = spool.read_new()
        if not data and end is None:
            return 0
        batch = parse_lines(data)
        store.write_batch(spool.run_id, batch.params, batch.tags, batch.metrics,
                          spool=spool.name, offset=new_offset, end=end)
        spool.offset = new_offset
        return len(batch.metrics) + len(batch.params) + len(batch.tags)


class BackgroundWriter:
    """Drains registered spools every ``INTERVAL`` seconds on a daemon thread."""

    def __init__(self) -> None:
        self._spools: dict[str, tuple[Spool, BatchSink]] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: BaseException | None = None

    def register(self, spool: Spool, store: BatchSink) -> None:
        with self._guard:
            self._spools[spool.name] = (spool, store)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="keel-writer",
                                                daemon=True)
                self._thread.start()

    def unregister(self, spool: Spool) -> None:
        with self._guard:
            self._spools.pop(spool.name, None)

    def _loop(self) -> None:
        while True:
            self._wake.wait(INTERVAL)
            self._wake.clear()
            with self._guard:
                items = list(self._spools.values())
            for spool, store in items:
                try:
                    drain(spool, store)
                    self.last_error = None
                except Exception as exc:  # the store is down: keep the spool, retry later
                    self.last_error = exc
