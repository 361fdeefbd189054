"""The schema module and the migrations agree; newer databases are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import keel
from keel.errors import IncompatibleVersion
from keel.store import migrate, schema
from keel.store.engine import create_engines, normalise_url
from keel.tracking import session

MIGRATIONS = Path(migrate.__file__).parent / "migrations"


def test_schema_revision_is_the_migrations_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == schema.SCHEMA_REVISION
    assert migrate.KNOWN_REVISIONS[-1] == schema.SCHEMA_REVISION


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migrated_database_matches_schema_module(kind: str, tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if kind == "postgres" else str(tmp_path / "k.db")
    _, writer = create_engines(normalise_url(url))
    migrate.upgrade(writer)
    with writer.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    writer.dispose()
    assert diff == []


def test_sqlite_store_runs_in_wal_mode(tmp_path: Path) -> None:
    keel.create_experiment("x")
    with session.workspace().store.writer.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def test_database_from_a_newer_keel_is_refused_untouched(tmp_path: Path) -> None:
    with keel.start_run(experiment="kept") as run:
        run.log_metric("acc", 0.9)
    session.reset()
    db = tmp_path / ".keel" / "keel.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    before = db.read_bytes()
    with pytest.raises(IncompatibleVersion, match="newer keel") as info:
        keel.get_run(run.id)
    assert "pip install -U keel" in (info.value.hint or "")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 1
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "9999"
    engine.dispose()
    assert len(db.read_bytes()) == len(before)
