"""Items handed from the request path to one background thread.

The inference log and the shadow mirror take something from every request.
``queue.Queue`` costs each request a lock and a condition notification on
the way in, and the consumer as much again per item on the way out: at
~8,000 requests/s on one core, ~5% of the server's time for the two queues.
A :class:`Handoff` is a bounded ``collections.deque``: ``put`` is an append
(atomic under the GIL, no lock), and the consumer takes everything waiting
at once, every ``interval`` seconds (the log and the mirror both batch their
work anyway), or at once when the handoff is closed.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """A bounded, lock-free (for producers) handoff to one consumer thread."""

    def __init__(self, limit: int, interval: float) -> None:
        self._items: deque[T] = deque()
        self._limit = limit
        self._interval = interval
        self._closed = threading.Event()

    def put(self, item: T) -> bool:
        """Hand ``item`` over; False (not taken) when ``limit`` items are waiting
        or the handoff is closed. Never blocks."""
        # len() then append() is not atomic: a few items over the limit under
        # contention, never unbounded growth.
        if len(self._items) >= self._limit or self._closed.is_set():
            return False
        self._items.append(item)
        return True

    def take(self) -> list[T]:
        """Wait ``interval`` (not at all once closed), then take everything
        waiting, oldest first. Waiting first is what batches the consumer's
        work: taking items as they come would wake it for each."""
        self._closed.wait(self._interval)
        taken: list[T] = []
        items = self._items
        while items:
            taken.append(items.popleft())
        return taken

    def close(self) -> None:
        """Take nothing more; the consumer's next :meth:`take` returns at once."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        """True once closed and everything handed over has been taken."""
        return self._closed.is_set() and not self._items
