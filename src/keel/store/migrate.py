"""Bring a database to the schema this keel expects, or refuse a newer one."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from keel.errors import IncompatibleVersion
from keel.store.revision import KNOWN_REVISIONS, SCHEMA_REVISION


def current_revision(engine: sa.Engine) -> str | None:
    """The Alembic revision a database is at, None if it has no keel tables yet."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: sa.Engine, lock_path: Path | None = None) -> str:
    """Apply pending migrations; refuse a database from a newer keel.

    Returns the revision the database is at afterwards.
    """
    revision = current_revision(engine)
    if revision == SCHEMA_REVISION:
        return revision
    check_known(revision)
    with _migration_lock(engine, lock_path):
        # Another process may have migrated while we waited for the lock.
        revision = current_revision(engine)
        if revision != SCHEMA_REVISION:
            check_known(revision)
            _run_alembic(engine)
    return SCHEMA_REVISION


def check_known(revision: str | None) -> None:
    """Raise :class:`IncompatibleVersion` for a revision this keel never shipped."""
    if revision is not None and revision not in KNOWN_REVISIONS:
        raise IncompatibleVersion(
            f"this workspace's database is at schema revision {revision!r}, written by a "
            f"newer keel (this keel knows up to {SCHEMA_REVISION!r}); refusing to open it",
            hint="upgrade keel (pip install -U keel); the database was left untouched")


def _run_alembic(engine: sa.Engine) -> None:
    # Imported here: Alembic costs ~80 ms to import and is only needed once.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@contextmanager
def _migration_lock(engine: sa.Engine, lock_path: Path | None) -> Iterator[None]:
    """Serialise migrations across processes: a file lock on SQLite, an advisory
    lock on PostgreSQL."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(7262011)"))
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(7262011)"))
                conn.commit()
        return
    if lock_path is None:
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
