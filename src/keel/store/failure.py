"""Database failures as keel errors: one clear line with a hint, never a driver traceback.

An unreachable PostgreSQL, a SQLite path in a folder that does not exist, a
file that is not a database or a damaged one: each reaches the user as a
:class:`~keel.errors.KeelError` naming the store and what to do. Installed on
every engine (SQLAlchemy's ``handle_error`` event), so it covers opening,
migrating, reading and writing alike. Lock contention ("database is locked")
is left alone: ``engine.retry_locked`` retries it. Constraint violations are
left alone too: the store turns those into ``AlreadyExists``/``NotFound``
where it knows what they mean.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from keel.config import hide_password
from keel.errors import CorruptData, InvalidInput, KeelError, StoreUnavailable

_NOT_A_DATABASE = ("file is not a database", "database disk image is malformed",
                   "malformed database schema")
_CANNOT_OPEN = ("unable to open database file", "disk i/o error",
                "attempt to write a readonly database")


def translate(exc: BaseException, url: str) -> KeelError | None:
    """The keel error a driver or SQLAlchemy error means, or None to let it through."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    lowered = text.lower()
    shown = display_url(url)
    first_line = text.splitlines()[0] if text else type(original).__name__
    if any(s in lowered for s in _NOT_A_DATABASE):
        return CorruptData(f"the metadata store {shown} is not a keel database or is damaged "
                           f"({first_line})",
                           hint="point KEEL_STORE at a keel database; if this is your "
                                "workspace's keel.db, move it away and restore it from a backup "
                                "(blobs in .keel/blobs are not affected)")
    if any(s in lowered for s in _CANNOT_OPEN):
        return StoreUnavailable(f"cannot open the metadata store {shown} ({first_line})",
                                hint="check that the folder exists and is writable, or set "
                                     "KEEL_STORE to another path")
    if _is_connection_failure(exc, original, lowered):
        return StoreUnavailable(f"cannot reach the metadata store {shown} ({first_line})",
                                hint="check that the database server is running and that "
                                     "KEEL_STORE's host, port, user, password and database "
                                     "are right")
    return None


def display_url(url: str) -> str:
    """A store URL as users wrote it: a path for SQLite, no password otherwise."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    return hide_password(url)


def _is_connection_failure(exc: BaseException, original: BaseException, lowered: str) -> bool:
    if "locked" in lowered or "busy" in lowered:
        return False
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    module = type(original).__module__
    if module.startswith("psycopg") and type(original).__name__ == "OperationalError":
        return True  # psycopg raises OperationalError for refused, unknown host, bad auth
    return any(s in lowered for s in ("connection refused", "could not connect",
                                      "server closed the connection", "connection timed out",
                                      "name or service not known"))


def install(engine: sa.Engine, url: str) -> None:
    """Make every error of ``engine`` that :func:`translate` knows a keel error."""
    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> KeelError | None:
        return translate(context.original_exception, url)


def check_sqlite_path(url: str) -> None:
    """Refuse a SQLite path whose folder is missing or which is itself a folder,
    before SQLite reports only "unable to open database file"."""
    from pathlib import Path

    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return
    path = Path(url.removeprefix("sqlite:///"))
    if path.is_dir():
        raise InvalidInput(f"the metadata store path {path} is a folder",
                           hint="point KEEL_STORE at a file, e.g. "
                                f"{path / 'keel.db'}")
    if not path.parent.is_dir():
        raise StoreUnavailable(f"cannot open the metadata store {path}: the folder "
                               f"{path.parent} does not exist",
                               hint="create the folder, or set KEEL_STORE to a path in an "
                                    "existing folder")
