"""The one write ``keel data add`` makes, over the standard library's ``sqlite3``.

A new dataset version is a single row (and, the first time, the dataset's).
On the embedded store, writing it through SQLAlchemy would cost the command
the library's import (0.25-0.33 s here): a quarter of a 20,000-file add.
:class:`SqliteWriter` writes that row with the same statements and the same
connection settings as the SQLAlchemy store (WAL, ``synchronous`` from the
durability mode, ``BEGIN IMMEDIATE`` so that concurrent adds queue instead of
deadlocking, foreign keys on), and reads the version back through the
:class:`~keel.store.sqlite_reader.SqliteReader` it was made from.

Like the reader, it exists only for a database at this keel's schema
revision (``open_reader`` checked it); everything else goes to the full store.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from keel.clock import now_ms
from keel.entities import DatasetVersion
from keel.store.sqlite_reader import SqliteReader

_BUSY_TIMEOUT_S = 30.0  # as the SQLAlchemy store: wait out another writer
# The columns a version row may be given; anything else is a programming error.
VERSION_FIELDS = frozenset({
    "manifest_digest", "files", "bytes", "message", "created_at", "user", "source",
    "checks_digest", "checks_passed", "profiles_digest"})


class SqliteWriter:
    """Adds dataset versions to an embedded store without SQLAlchemy."""

    def __init__(self, path: Path, reader: SqliteReader, durability: str) -> None:
        self._path = path
        self._reader = reader
        # NORMAL in WAL mode survives a process crash; FULL fsyncs every commit
        # (KEEL_DURABILITY=fsync), exactly as the SQLAlchemy store's engine.
        self._synchronous = "FULL" if durability == "fsync" else "NORMAL"

    def add_dataset_version(self, name: str, fields: dict[str, Any]) -> DatasetVersion:
        """Store the next version of ``name`` (created on first use) and return it,
        as :meth:`keel.store.protocol.Store.add_dataset_version` without ``version``."""
        unknown = set(fields) - VERSION_FIELDS
        if unknown:
            raise ValueError(f"not dataset version columns: {sorted(unknown)}")
        conn = sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            # IMMEDIATE takes the write lock first: the number read below stays
            # the highest until this transaction commits, in every process.
            conn.execute("BEGIN IMMEDIATE")
            try:
                number = self._insert(conn, name, fields)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
        return self._reader.get_dataset_version(name, number)

    @staticmethod
    def _insert(conn: sqlite3.Connection, name: str, fields: dict[str, Any]) -> int:
        row = conn.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()
        if row is None:
            dataset_id = conn.execute("INSERT INTO datasets (name, created_at) VALUES (?, ?)",
                                      (name, now_ms())).lastrowid
        else:
            dataset_id = row[0]
        last = conn.execute("SELECT max(version) FROM dataset_versions WHERE dataset_id = ?",
                            (dataset_id,)).fetchone()[0]
        number = int(last or 0) + 1
        columns = ", ".join(f'"{c}"' for c in ["dataset_id", "version", *fields])
        marks = ", ".join("?" * (len(fields) + 2))
        conn.execute(f"INSERT INTO dataset_versions ({columns}) VALUES ({marks})",
                     (dataset_id, number, *fields.values()))
        return number
