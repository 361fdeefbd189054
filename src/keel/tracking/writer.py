"""Moving spooled lines into the store: the drain, and the background writer.

One daemon thread per workspace serves every active run of that workspace
(its spools all go to one store). It wakes every ``INTERVAL`` seconds;
``flush`` drains on the caller's thread instead of waiting for it. Both take
the spool's lock, so a batch is stored once.

When the store cannot take a batch, the writer says so once on the ``keel``
logger (with the cause), keeps the spool and retries; ``run.flush()`` and the
end of a run raise the error, since they drain on the caller's thread.
"""

from __future__ import annotations

import logging
import threading

from keel.entities import RunEnd
from keel.errors import InvalidInput
from keel.store.protocol import RunStore
from keel.tracking.quarantine import set_aside
from keel.tracking.spool import BadLine, Batch, Line, Spool, batch_of, parse_lines, split_lines

log = logging.getLogger("keel.tracking")

# 50 ms batches: at 200,000 points/s that is 10,000 rows per transaction, and a
# reader sees a value at most this long after it was logged.
INTERVAL = 0.05


def drain(spool: Spool, store: RunStore, end: RunEnd | None = None) -> int:
    """Store every complete line the spool holds past its offset; return the count.

    With ``end`` the run is closed in the same transaction, even when nothing
    is left to store: one commit at the end of every run. Lines the store
    refuses are set aside (``tracking.quarantine``) and the rest are stored.
    """
    with spool.lock:
        if spool.closed:
            return 0
        data, new_offset = spool.read_new()
        if not data and end is None:
            return 0
        try:
            batch = parse_lines(data)
        except BadLine:
            return _drain_lines(spool, store, split_lines(data, spool.offset), new_offset, end)
        try:
            _write(store, spool, batch, new_offset, end)
        except InvalidInput:
            # One record the database cannot hold: find it, set it aside, store the rest.
            return _drain_lines(spool, store, split_lines(data, spool.offset), new_offset, end)
        return len(batch)


def _write(store: RunStore, spool: Spool, batch: Batch, offset: int,
           end: RunEnd | None) -> None:
    store.write_batch(spool.run_id, batch.params, batch.tags, batch.metrics,
                      spool=spool.name, offset=offset, end=end)
    spool.offset = offset


def _drain_lines(spool: Spool, store: RunStore, lines: list[Line], final_offset: int,
                 end: RunEnd | None) -> int:
    """The careful path: store contiguous runs of good lines, bisecting a run the
    store refuses down to the line at fault. Each stored range moves the
    spool's offset in its own transaction, in order, so nothing is stored twice
    and a set-aside line is never replayed."""
    stored = 0
    pending: list[Line] = []
    for line in lines:
        if line.kind:
            pending.append(line)
            continue
        stored += _store_range(spool, store, pending)
        pending = []
        set_aside(spool.path, spool.run_id, line.raw, str(line.item))
    stored += _store_range(spool, store, pending)
    # Whatever came last (a set-aside line, or nothing): move past it, and end the run.
    if spool.offset != final_offset or end is not None:
        _write(store, spool, Batch(), final_offset, end)
    return stored


def _store_range(spool: Spool, store: RunStore, lines: list[Line]) -> int:
    if not lines:
        return 0
    batch = batch_of(lines)
    try:
        _write(store, spool, batch, lines[-1].end, None)
        return len(batch)
    except InvalidInput as exc:
        if len(lines) == 1:
            set_aside(spool.path, spool.run_id, lines[0].raw, exc.message)
            return 0
    middle = len(lines) // 2
    return _store_range(spool, store, lines[:middle]) + _store_range(spool, store, lines[middle:])


class BackgroundWriter:
    """Drains registered spools into one store every ``INTERVAL`` seconds."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._spools: dict[str, Spool] = {}
        self._failing: dict[str, str] = {}  # spool name -> the error last reported
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, spool: Spool) -> None:
        with self._guard:
            self._spools[spool.name] = spool
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._loop, name="keel-writer",
                                                daemon=True)
                self._thread.start()

    def unregister(self, spool: Spool) -> None:
        with self._guard:
            self._spools.pop(spool.name, None)
            self._failing.pop(spool.name, None)

    def stop(self) -> None:
        """Stop the thread after one last pass (spools still registered keep
        their data on disk either way)."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self._thread = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(INTERVAL)
            self._wake.clear()
            self._pass()

    def _pass(self) -> None:
        with self._guard:
            items = list(self._spools.values())
        for spool in items:
            try:
                drain(spool, self.store)
            except Exception as exc:  # the store is down: keep the spool, retry later
                self._report(spool, exc)
            else:
                if self._failing.pop(spool.name, None) is not None:
                    log.warning("keel: storing run %s works again; nothing was lost",
                                spool.run_id)

    def _report(self, spool: Spool, exc: Exception) -> None:
        cause = f"{type(exc).__name__}: {exc}"
        if self._failing.get(spool.name) == cause:
            return  # said once; say it again only if the cause changes
        self._failing[spool.name] = cause
        log.warning("keel: cannot store what run %s logged (%s); the data stays in %s "
                    "and will be stored when the store is back (run.flush() raises "
                    "this error)", spool.run_id, cause, spool.path)
