"""Remember file digests by (device, inode, size, mtime): unchanged files are never re-hashed.

A local cache, not metadata: it lives in ``.keel/cache/stat.db`` even when the
metadata store is PostgreSQL, and losing it only costs a re-hash. Uses the
standard library's sqlite3 with parameterised statements.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

Key = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


def stat_key(st: os.stat_result) -> Key:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class StatCache:
    """``path -> digest``, trusted only while the file's stat key is unchanged."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")  # a lost cache entry costs one re-hash
        self.db.execute("CREATE TABLE IF NOT EXISTS stat (path TEXT PRIMARY KEY, dev INTEGER, "
                        "ino INTEGER, size INTEGER, mtime_ns INTEGER, digest TEXT)")

    def lookup(self, items: Iterable[tuple[str, Key]]) -> dict[str, str]:
        """Digests of the paths whose stat key still matches what was cached."""
        wanted = dict(items)
        if not wanted:
            return {}
        found = {}
        # One scan of the table beats 20,000 point queries (about 10x here).
        for path, dev, ino, size, mtime, digest in self.db.execute("SELECT * FROM stat"):
            key = wanted.get(path)
            if key is not None and key == (dev, ino, size, mtime):
                found[path] = digest
        return found

    def remember(self, rows: Iterable[tuple[str, Key, str]]) -> None:
        """Cache digests for paths with their current stat keys."""
        data = [(path, *key, digest) for path, key, digest in rows]
        if data:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany("INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?, ?, ?)", data)

    def close(self) -> None:
        self.db.close()
