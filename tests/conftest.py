"""Fixtures shared by the whole suite: an isolated folder per test, real stores.

PostgreSQL comes from ``KEEL_TEST_POSTGRES_URL`` (an admin URL; each test gets a
fresh database). Without it those tests skip, unless ``KEEL_REQUIRE_SERVICES=1``
(set by .ci/run), which turns a missing service into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from keel.tracking import session
from keel.workspace import init_workspace

# The `trained` fixture (a holdout dataset and two logged models) is shared by
# the models and CLI tests.
pytest_plugins = ["tests.models.fixtures"]

REQUIRE_SERVICES = os.environ.get("KEEL_REQUIRE_SERVICES") == "1"
POSTGRES_ADMIN_URL = os.environ.get("KEEL_TEST_POSTGRES_URL", "")


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_SERVICES and not POSTGRES_ADMIN_URL:
        raise pytest.UsageError("KEEL_REQUIRE_SERVICES=1 but KEEL_TEST_POSTGRES_URL is not set; "
                                "run .ci/run, which starts PostgreSQL and sets it")


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
    for run in reversed(list(session.run_stack)):
        run.end("KILLED")
    session.reset()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    if not POSTGRES_ADMIN_URL:
        service_missing("KEEL_TEST_POSTGRES_URL is not set")
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"keel_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        service_missing(f"cannot reach PostgreSQL at KEEL_TEST_POSTGRES_URL: {exc}")
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    session.reset()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> str:
    """A workspace in the test's folder whose metadata lives in SQLite or PostgreSQL."""
    if request.param == "postgres":
        monkeypatch.setenv("KEEL_STORE", request.getfixturevalue("postgres_url"))
    init_workspace(tmp_path)
    return str(request.param)


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a new process, in the current folder and environment."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def run_keel(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the ``keel`` command line in a new process, as a user would."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "keel.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, env=env)
