"""SQLAlchemy engines: SQLite tuned for many writers, PostgreSQL via psycopg 3."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from keel.errors import InvalidInput

T = TypeVar("T")

# A writer waits this long for another process's transaction before retrying;
# with WAL and short batch transactions a wait is a few milliseconds.
BUSY_TIMEOUT_MS = 30_000


def normalise_url(store: str) -> str:
    """Turn a path, ``sqlite:///...`` or ``postgresql://...`` into an engine URL."""
    if store.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + store.split("://", 1)[1]
    if store.startswith(("postgresql+psycopg://", "sqlite://")):
        return store
    if "://" in store:
        raise InvalidInput(f"unsupported metadata store URL {store!r}",
                           hint="use a file path, sqlite:///path or postgresql+psycopg://...")
    return f"sqlite:///{Path(store).expanduser().resolve()}"


def create_engines(url: str, durability: str = "process") -> tuple[sa.Engine, sa.Engine]:
    """A (reader, writer) pair of engines for one database.

    On SQLite the writer opens every transaction with ``BEGIN IMMEDIATE`` so two
    processes never both hold a read lock and then deadlock upgrading it (the
    cause of most "database is locked" errors); readers use plain ``BEGIN``.
    """
    if not url.startswith("sqlite"):
        try:
            engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5)
        except ModuleNotFoundError as exc:
            raise InvalidInput("PostgreSQL support is not installed",
                               hint="pip install 'keel[postgres]'") from exc
        return engine, engine
    # NORMAL in WAL mode: durable against a process crash, fsync only at
    # checkpoints, about 10x faster commits than FULL; FULL fsyncs every commit.
    synchronous = "FULL" if durability == "fsync" else "NORMAL"
    return (_sqlite_engine(url, "BEGIN", synchronous),
            _sqlite_engine(url, "BEGIN IMMEDIATE", synchronous))


def _sqlite_engine(url: str, begin: str, synchronous: str = "NORMAL") -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000,
                                                 "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module; we issue BEGIN.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        # LIKE is case-sensitive in the filter language, as on PostgreSQL.
        cur.execute("PRAGMA case_sensitive_like=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


def retry_locked(action: Callable[[], T], attempts: int = 20) -> T:
    """Run ``action``, retrying while SQLite reports the database locked or busy.

    The busy timeout handles most contention; a few paths (a checkpoint racing a
    commit) return SQLITE_BUSY at once, so users never see that error.
    """
    delay = 0.005
    for attempt in range(attempts):
        try:
            return action()
        except OperationalError as exc:
            text = str(exc.orig).lower()
            if ("locked" not in text and "busy" not in text) or attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    raise AssertionError("unreachable")
