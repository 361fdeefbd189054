"""The reads a short command needs, over the standard library's ``sqlite3``.

Importing SQLAlchemy costs 0.2-0.3 s on a small machine: more than the whole
work of ``keel runs list``, a cached ``keel pipeline run`` or a ``keel data
checkout``. On the embedded store these commands read through this module
instead, and the SQLAlchemy store is opened only when something has to be
written (or for a read this module does not do, such as a filtered search:
those go to the full store, which it opens on demand).

It reads only a database already at this keel's schema revision: an older
one needs a migration, which only the full store performs, and a newer one
must be refused with the full store's message. Entities and errors come from
``records.py``, shared with the SQLAlchemy store, so callers see the same
answers from both.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.entities import ACTIVE, DatasetVersion, Experiment, Run, StepRecord
from keel.errors import InvalidInput, NotFound
from keel.store import records
from keel.store.revision import SCHEMA_REVISION

if TYPE_CHECKING:
    from keel.store.protocol import Store

_CHUNK = 500  # run ids per IN (...) list: far below SQLite's 32,766 variables
_BUSY_TIMEOUT_S = 30.0  # as the SQLAlchemy store: wait out a writer's checkpoint


def sqlite_path(store_url: str) -> Path | None:
    """The database file of an embedded store URL (a path or ``sqlite:///PATH``),
    None for anything else (PostgreSQL, an in-memory database)."""
    if store_url.startswith("sqlite:///"):
        path = store_url[len("sqlite:///"):]
        return Path(path) if path and path != ":memory:" else None
    if "://" in store_url:
        return None
    return Path(store_url).expanduser()


def open_reader(store_url: str, full_store: Callable[[], Store]) -> SqliteReader | None:
    """A reader of the embedded store at ``store_url``, or None when the full store
    must answer: not SQLite, no database yet, another schema revision, unreadable.
    ``full_store`` opens the SQLAlchemy store, for the reads this one leaves to it."""
    path = sqlite_path(store_url)
    if path is None or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, check_same_thread=False,
                               isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        conn.execute("PRAGMA query_only=ON")  # a reader: a bug here cannot write
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        row = None
    if row is None or row[0] != SCHEMA_REVISION:
        conn.close()
        return None
    conn.row_factory = sqlite3.Row
    return SqliteReader(conn, full_store)


class SqliteReader:
    """Read-only queries of the embedded store; see the module docstring.

    Implements the reading methods of :class:`keel.store.protocol.Store` that
    short commands use, with the same signatures and answers.
    """

    def __init__(self, conn: sqlite3.Connection, full_store: Callable[[], Store]) -> None:
        self._conn = conn
        self._full_store = full_store
        # One connection, shared by the threads of a command (a pipeline's steps).
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(args)).fetchall()

    # -- experiments and runs -------------------------------------------------

    def get_experiment(self, name_or_id: str | int) -> Experiment:
        """An experiment by name or id (NotFound with a hint otherwise)."""
        column = "id" if isinstance(name_or_id, int) else "name"
        found = self._rows(f"SELECT * FROM experiments WHERE {column} = ?", (name_or_id,))
        if not found:
            raise NotFound(f"no experiment {name_or_id!r}",
                           hint="list them with `keel experiments list`")
        row = found[0]
        tags = {r["key"]: r["value"] for r in self._rows(
            "SELECT key, value FROM experiment_tags WHERE experiment_id = ?", (row["id"],))}
        return Experiment(id=row["id"], name=row["name"], description=row["description"],
                          lifecycle=row["lifecycle"], created_at=row["created_at"], tags=tags,
                          project=row["project"])

    def search_runs(self, experiment_ids: Sequence[int] | None, filter_text: str = "",
                    order_by: Sequence[str] = (), max_results: int = 1000, offset: int = 0,
                    include_deleted: bool = False) -> list[Run]:
        """Runs newest first, as :meth:`Store.search_runs`. A filter or an order is
        the filter language's work: the full store answers those."""
        if filter_text.strip() or order_by:
            return self._full_store().search_runs(experiment_ids, filter_text, order_by,
                                                  max_results, offset, include_deleted)
        if max_results < 1 or offset < 0:
            raise InvalidInput("max_results must be >= 1 and the page offset >= 0")
        where: list[str] = []
        args: list[Any] = []
        if experiment_ids is not None:
            ids = list(experiment_ids)
            where.append(f"runs.experiment_id IN ({', '.join('?' * len(ids)) or 'NULL'})")
            args.extend(ids)
        if not include_deleted:
            where.append("runs.lifecycle = ?")
            args.append(ACTIVE)
        sql = ("SELECT runs.*, experiments.name AS experiment FROM runs "
               "JOIN experiments ON experiments.id = runs.experiment_id"
               + (" WHERE " + " AND ".join(where) if where else "")
               # The full store's tiebreak, so that pages never repeat or skip a run.
               + " ORDER BY runs.start_time DESC, runs.id LIMIT ? OFFSET ?")
        return self._hydrate(self._rows(sql, [*args, max_results, offset]))

    def _hydrate(self, rows: list[sqlite3.Row]) -> list[Run]:
        """Attach params, latest metrics and tags to run rows, a chunk of ids at a time."""
        ids = [row["id"] for row in rows]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for table, into in (("params", params), ("tags", tags)):
                for run_id, key, value in self._rows(
                        f"SELECT run_id, key, value FROM {table} WHERE run_id IN ({marks})",
                        chunk):
                    into[run_id][key] = value
            for run_id, key, value in self._rows(
                    f"SELECT run_id, key, value FROM latest_metrics WHERE run_id IN ({marks})",
                    chunk):
                metrics[run_id][key] = records.null_to_nan(value)
        return [records.run(r, params[r["id"]], metrics[r["id"]], tags[r["id"]]) for r in rows]

    # -- datasets ------------------------------------------------------------

    def _versions(self, name: str) -> list[DatasetVersion]:
        return [records.dataset_version(r) for r in self._rows(
            "SELECT dataset_versions.*, datasets.name AS dataset_name FROM dataset_versions "
            "JOIN datasets ON datasets.id = dataset_versions.dataset_id "
            "WHERE datasets.name = ? ORDER BY dataset_versions.version", (name,))]

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """``name@version``, or the latest (not deleted) version when ``version`` is None."""
        return records.pick_dataset_version(self._versions(name), name, version)

    def list_dataset_versions(self, name: str, include_deleted: bool = False
                              ) -> list[DatasetVersion]:
        """Every version of a dataset, oldest first (deleted ones only if asked)."""
        return records.dataset_versions(self._versions(name), name, include_deleted)

    # -- pipeline steps ------------------------------------------------------

    def cached_step(self, key: str) -> StepRecord | None:
        """The record of a step computed with ``key``, if its run is still live."""
        found = self._rows("SELECT step_cache.* FROM step_cache "
                           "JOIN runs ON runs.id = step_cache.run_id "
                           "WHERE step_cache.key = ? AND runs.lifecycle = ? LIMIT 1",
                           (key, ACTIVE))
        return records.step_record(found[0]) if found else None

    def last_step(self, pipeline: str, step: str) -> StepRecord | None:
        """The most recent record of a pipeline's step."""
        found = self._rows("SELECT step_cache.* FROM step_cache "
                           "JOIN runs ON runs.id = step_cache.run_id "
                           "WHERE step_cache.pipeline = ? AND step_cache.step = ? "
                           "AND runs.lifecycle = ? ORDER BY step_cache.created_at DESC LIMIT 1",
                           (pipeline, step, ACTIVE))
        return records.step_record(found[0]) if found else None
