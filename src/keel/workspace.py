"""A workspace: the ``.keel/`` folder, its metadata store and its blob store.

Found like git finds a repository: the nearest ``.keel/`` at or above the
current folder. ``KEEL_STORE`` / ``KEEL_BLOBS`` (or ``keel.toml``) move the
store and blobs elsewhere (PostgreSQL, S3); the folder still holds the
per-process spool files that make logging crash-safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from keel import context
from keel.blobs import BlobStore
from keel.config import (
    WORKSPACE_DIR,
    default_paths,
    find_workspace,
    read_toml,
    require_workspace,
    resolve,
)
from keel.durability import MODES, PROCESS
from keel.errors import InvalidInput

if TYPE_CHECKING:  # the protocol imports every entity: loaded only where a store is opened
    from keel.store.protocol import DatasetWriter, Store, StoreReader


@dataclass(eq=False)
class Workspace:
    """An opened workspace; ``Workspace.open()`` finds, migrates and returns one.

    Use it as a context manager to make it the workspace of a block (runs
    started and reads made there go to it) and close it afterwards::

        with keel.Workspace.open("/srv/team-a") as ws:
            with keel.start_run(experiment="churn") as run:   # recorded in team-a
                ...
    """

    root: Path
    store_url: str  # where the metadata lives: KEEL_STORE, keel.toml, or .keel/keel.db
    blobs: BlobStore
    # Experiments by name, filled by the tracking API (see tracking/api.py).
    experiment_cache: dict[str, Any] = field(default_factory=dict)
    # The tracking layer's background writer for this workspace's spools,
    # started by its first run and stopped by close().
    writer: Any = None
    # Set once the tracking layer has replayed this store's orphaned spools,
    # with what that first pass recovered (``keel recover`` reports it).
    recovered: bool = False
    recovered_runs: list[Any] = field(default_factory=list)
    # KEEL_DURABILITY: "process" (survives a crash) or "fsync" (a power loss too).
    durability: str = PROCESS
    # KEEL_TOKEN: what a store or blobs on a keel server are reached with.
    token: str | None = field(default=None, repr=False)
    # Guards the lazy set-up of the two fields above across threads.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _scope: list[Any] = field(default_factory=list, repr=False)
    _store: Store | None = field(default=None, repr=False)
    # The stdlib reader of an embedded store (see ``reader``); False once it
    # turned out the store cannot be read that way.
    _reader: Any = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        """The metadata store, opened (and migrated) on first use.

        Lazily, because opening it means importing SQLAlchemy (0.15-0.27 s here)
        and a command answered from local caches (a no-change ``keel data
        status``) needs none of it.
        """
        if self._store is None:
            with self.lock:
                if self._store is None:
                    if is_server_url(self.store_url):
                        from keel.store.http_store import HttpStore

                        self._store = cast("Store", HttpStore(self.store_url, self.token))
                    else:
                        from keel.store.sql_store import open_store

                        self._store = open_store(self.store_url, lock_dir=self.folder,
                                                 durability=self.durability)
        return self._store

    @property
    def reader(self) -> StoreReader:
        """What a read-only command queries: the store once it is open; before
        that, on the embedded store, a reader over the standard library's
        ``sqlite3`` that spares a short command SQLAlchemy's import (0.2-0.3 s,
        more than the work of ``keel runs list``). Anything else it is asked
        opens the store as usual."""
        if self._store is not None:
            return self._store
        if self._reader is None:
            with self.lock:
                if self._reader is None:
                    from keel.store.sqlite_reader import open_reader

                    self._reader = open_reader(self.store_url, lambda: self.store) or False
        return self._reader or self.store

    @property
    def dataset_writer(self) -> DatasetWriter:
        """Where ``keel data add`` records a new version: the store once it is open;
        before that, on the embedded store, a writer over ``sqlite3`` that spares
        the command SQLAlchemy's import (see ``store/sqlite_writer.py``)."""
        from keel.store.sqlite_reader import SqliteReader, sqlite_path

        reader = self.reader
        path = sqlite_path(self.store_url)
        if self._store is not None or not isinstance(reader, SqliteReader) or path is None:
            return self.store
        from keel.store.sqlite_writer import SqliteWriter

        return SqliteWriter(path, reader, self.durability)

    @property
    def folder(self) -> Path:
        return self.root / WORKSPACE_DIR

    @property
    def spool_dir(self) -> Path:
        return self.folder / "spool"

    @classmethod
    def open(cls, start: Path | None = None, create: bool = False,
             store: str | None = None, blobs: str | None = None) -> Workspace:
        """Open the workspace above ``start`` (cwd); with ``create``, make one there
        if none exists. Raises NotFound with a hint otherwise."""
        root = find_workspace(start)
        if root is None:
            root = init_workspace(start or Path.cwd()) if create else require_workspace(start)
        folder = root / WORKSPACE_DIR
        defaults = default_paths(root)
        store_url = resolve("store", root, store).value or defaults["store"]
        token = resolve("token", root).value
        # A workspace on a keel server keeps its blobs there too, unless told otherwise.
        blobs_url = resolve("blobs", root, blobs).value or \
            (store_url if is_server_url(store_url) else defaults["blobs"])
        durability = resolve("durability", root).value or PROCESS
        if durability not in MODES:
            raise InvalidInput(f"KEEL_DURABILITY is {durability!r}",
                               hint="use 'process' (survives a crash) or 'fsync' (survives a "
                                    "power loss too, slower)")
        (folder / "spool").mkdir(exist_ok=True)
        # Options for an object store (endpoint_url for an S3-compatible server)
        # live in keel.toml's [blobs] table, beside its url, as for [remote].
        table = read_toml(root).get("blobs")
        options = {k: v for k, v in table.items() if k != "url"} \
            if isinstance(table, dict) and blobs is None else {}
        try:
            if is_server_url(blobs_url):
                from keel.blobs.http_blobs import HttpBlobStore

                blob_store: BlobStore = HttpBlobStore(blobs_url, token)
            else:
                blob_store = BlobStore(blobs_url, **options)
        except (ValueError, ImportError) as exc:  # fsspec: unknown protocol, missing driver
            raise InvalidInput(f"cannot use {blobs_url!r} as the blob store: {exc}",
                               hint="set KEEL_BLOBS to a folder or an fsspec URL such as "
                                    "s3://bucket/prefix (pip install 'keel[s3]')") from exc
        return cls(root=root, store_url=store_url, blobs=blob_store, durability=durability,
                   token=token)

    @property
    def lease_path(self) -> Path:
        """The file whose lock orders blob writers against garbage collection."""
        return self.folder / "gc.lock"

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the write lease while blobs are written and until the metadata that
        refers to them is stored.

        A shared ``flock``: any number of writers, in any processes of this
        machine, hold it at once; ``keel gc`` takes it exclusively, so it never
        removes a blob that an ``add`` or ``log_artifact`` in progress has
        written (or found already stored) but not yet recorded.
        """
        with open(self.lease_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        """Stop the background writer (storing what it holds) and release the store."""
        if self.writer is not None:
            self.writer.stop()
            self.writer = None
        if self._store is not None:
            self._store.close()
            self._store = None
        self.blobs.close()
        if self._reader:
            self._reader.close()
        self._reader = None

    def __enter__(self) -> Workspace:
        scope = context.using_workspace(self)
        scope.__enter__()
        self._scope.append(scope)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._scope.pop().__exit__(exc_type, exc, tb)
        self.close()


def is_server_url(url: str) -> bool:
    """Whether a store or blobs setting names a keel server (``http(s)://``)."""
    return url.startswith(("http://", "https://"))


def init_workspace(path: Path) -> Path:
    """Create ``.keel/`` (store folder, blobs, spool) in ``path``; return ``path``.

    Idempotent: an existing workspace is left as it is.
    """
    path = path.resolve()
    folder = path / WORKSPACE_DIR
    for sub in ("blobs", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        # The workspace holds data and a database; never commit it by accident.
        ignore.write_text("*\n")
    return path


# Workspaces of the current folder, opened once per process and settings: a
# cache of open connections keyed by what identifies them, not ambient state
# (which workspace a block works in is decided by resolve_workspace()).
_lock = threading.RLock()
_opened: dict[tuple[str, str, str], Workspace] = {}


def current_workspace(create: bool = False) -> Workspace:
    """The workspace of the current folder, opened once per process and settings."""
    root = find_workspace()
    key = (str(root or Path.cwd().resolve()), os.environ.get("KEEL_STORE", ""),
           os.environ.get("KEEL_BLOBS", ""))
    with _lock:
        if key not in _opened:
            _opened[key] = Workspace.open(create=create)
        return _opened[key]


def forget_workspaces() -> None:
    """Close every workspace this process opened (tests; servers switching folders)."""
    with _lock:
        for ws in _opened.values():
            ws.close()
        _opened.clear()


def resolve_workspace(ws: Workspace | None = None, create: bool = False) -> Workspace:
    """The workspace to work in: ``ws`` if given, else the one this thread or
    task is using (``keel.use_workspace``, or the active run's), else the
    current folder's."""
    if ws is not None:
        return ws
    chosen = context.current_workspace()
    if chosen is not None:
        return chosen
    return current_workspace(create=create)


def use_workspace(ws: Workspace) -> Any:
    """A ``with`` block in which ``ws`` is the workspace (without closing it after).

    >>> with keel.use_workspace(team_ws):
    ...     keel.search_runs("churn")
    """
    return context.using_workspace(ws)
