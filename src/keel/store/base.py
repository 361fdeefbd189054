"""What every part of the SQL store shares: its engines, the insert dialect and
the transaction helper. The dataset and registry mixins are typed against it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

from keel.store.engine import retry_locked

T = TypeVar("T")


class SqlBase:
    """Engines of one database: ``reader`` for queries, ``writer`` for transactions
    (on SQLite a separate engine whose transactions begin IMMEDIATE)."""

    url: str
    reader: sa.Engine
    writer: sa.Engine
    # SQLite: this process's writers take turns here, before SQLite's own lock.
    # Threads that meet on SQLite's lock wait in its busy handler, which sleeps
    # 1, 2, 5 ... 100 ms between tries: with 8 server threads writing, requests
    # waited up to half a second for a lock held ~1 ms at a time.
    _write_turn: threading.Lock | None = None

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that knows ``ON CONFLICT`` in this database's dialect."""
        # Imported here: the PostgreSQL dialect costs ~30 ms to import, and an
        # embedded SQLite store never needs it.
        if self.writer.dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(table)
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)

    def _write(self, action: Callable[[sa.Connection], T]) -> T:
        """Run ``action`` in one write transaction, retrying SQLite lock contention
        (other processes'; this process's threads take turns first)."""
        def attempt() -> T:
            with self.writer.begin() as conn:
                return action(conn)
        turn = self._write_turn if self._write_turn is not None else contextlib.nullcontext()
        with turn:
            return retry_locked(attempt)
