"""Fixtures shared by the whole suite: an isolated folder per test, real stores.

PostgreSQL comes from ``KEEL_TEST_POSTGRES_URL`` (an admin URL; each test gets a
fresh database), else from a throwaway cluster the suite starts from the
server binaries (``tests/postgres_server.py``). Without either those tests
skip with one summary line, unless ``KEEL_REQUIRE_SERVICES=1`` (set by
.ci/run), which turns a missing service into a failure.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from keel.tracking import session
from keel.tracking.shutdown import guard
from keel.workspace import Workspace, init_workspace
from tests import postgres_server

# Rich sizes tables from COLUMNS when output is not a terminal; the CLI tests
# read whole rows, and in-process commands share the consoles made at import.
os.environ["COLUMNS"] = "200"
os.environ["NO_COLOR"] = "1"

# The `trained` fixture (a holdout dataset and two logged models) is shared by
# the models and CLI tests.
pytest_plugins = ["tests.models.fixtures"]

REQUIRE_SERVICES = os.environ.get("KEEL_REQUIRE_SERVICES") == "1"
POSTGRES_ADMIN_URL = os.environ.get("KEEL_TEST_POSTGRES_URL", "")


def service_missing(message: str) -> None:
    """Skip locally; fail when CI requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {message}")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test runs in its own empty folder with no keel settings inherited."""
    for var in ("KEEL_STORE", "KEEL_BLOBS", "KEEL_TOKEN", "KEEL_EXPERIMENT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    session.reset()
    yield tmp_path
    guard.end_all("KILLED")  # runs a failing test left open
    session.reset()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """An admin URL of a PostgreSQL server: the given one, or a throwaway cluster."""
    if POSTGRES_ADMIN_URL:
        yield POSTGRES_ADMIN_URL
        return
    try:
        server = postgres_server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        service_missing(f"PostgreSQL tests skipped: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    name = f"keel_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        service_missing(f"cannot reach PostgreSQL at KEEL_TEST_POSTGRES_URL: {exc}")
    yield postgres_admin_url.rsplit("/", 1)[0] + "/" + name
    session.reset()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


# The suites that also run against a live keel server (``backend`` = "server");
# elsewhere that parameter is deselected.
SERVER_SUITES = ("tests/tracking/", "tests/data/", "tests/models/")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        "server"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Iterator[str]:
    """A workspace in the test's folder whose metadata lives in SQLite, in
    PostgreSQL, or behind a keel server on 127.0.0.1 (``KEEL_STORE=http://...``,
    an admin token; the server's own workspace, on SQLite, is in another folder),
    whose blobs then live there too."""
    if request.param == "postgres":
        monkeypatch.setenv("KEEL_STORE", request.getfixturevalue("postgres_url"))
    if request.param == "server":
        from keel.server import tokens
        from tests.live_server import running_server

        served = Workspace.open(init_workspace(
            request.getfixturevalue("tmp_path_factory").mktemp("server")))
        request.node.served_workspace = served  # for blob_file
        with running_server(served) as url:
            monkeypatch.setenv("KEEL_STORE", url)
            monkeypatch.setenv("KEEL_TOKEN", tokens.create(served, "admin").secret)
            init_workspace(tmp_path)
            yield str(request.param)
            guard.end_all("KILLED")  # while the server can still record it
            session.reset()  # close this side's connections before the server stops
        served.close()
        return
    init_workspace(tmp_path)
    yield str(request.param)


@pytest.fixture
def blob_holder(request: pytest.FixtureRequest, backend: str) -> Callable[[], Workspace]:
    """The workspace whose blob store holds the bytes: the test's, or the server's
    when the test's workspace is on a keel server (tests that damage blobs use it)."""
    return lambda: getattr(request.node, "served_workspace", None) or session.workspace()


@pytest.fixture
def blob_file(blob_holder: Callable[[], Workspace]) -> Callable[[str], Path]:
    """Where a loose blob's bytes lie on disk (see ``blob_holder``)."""
    return lambda digest: Path(blob_holder().blobs.path_of(digest))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the ``server`` backend only in the suites it is meant for."""
    kept, dropped = [], []
    for item in items:
        spec = getattr(item, "callspec", None)
        off_suite = not any(s in str(item.path) for s in SERVER_SUITES) or \
            item.get_closest_marker("local_blobs") is not None
        if spec is not None and spec.params.get("backend") == "server" and off_suite:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def other_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A second workspace in its own folder with its own SQLite store, opened
    explicitly (``KEEL_STORE`` does not reach it), while the test's folder has
    the first."""
    root = init_workspace(tmp_path_factory.mktemp("other"))
    ws = Workspace.open(root, store=str(root / ".keel" / "keel.db"),
                        blobs=str(root / ".keel" / "blobs"))
    yield ws
    ws.close()


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a new process, in the current folder and environment."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def run_keel(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
             process: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the ``keel`` command line as a user would: in this process (the same
    ``main()``, error boundary and exit code, with every workspace forgotten
    before and after, as a new process would start), or with ``process=True``
    in a new process, for what only a real process shows (start-up, imports,
    signals)."""
    if process:
        full_env = {**os.environ, **(env or {})}
        return subprocess.run([sys.executable, "-m", "keel.cli.main", *args],
                              capture_output=True, text=True, timeout=timeout, check=False,
                              env=full_env)
    from keel.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code: int = 0
    with _environment(env or {}):
        session.reset()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else \
                    (0 if exit_.code is None else 1)
        session.reset()
    return subprocess.CompletedProcess(["keel", *args], code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _environment(changes: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
