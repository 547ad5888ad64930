"""The Alembic migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from wharf.db import make_engine, upgrade
from wharf.db.models import Base
from wharf.db import models_policy

FEATURE_MODELS = (models_policy,)  # feature modules register their tables on Base when imported


def _diff(url: str) -> list:
    engine = make_engine(url)
    try:
        upgrade(engine)
        upgrade(engine)  # idempotent
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()


def test_sqlite_schema_matches_models(tmp_path):
    assert _diff(f"sqlite:///{tmp_path / 'w.db'}") == []


@pytest.mark.postgres
def test_postgres_schema_matches_models(postgres):
    assert _diff(postgres.create_database()) == []


def _upgrade_keeps_rows(url: str) -> None:
    """Rows written under revision 0001 survive 0002 (which rebuilds the artifacts table's unique constraint)."""
    from sqlalchemy import text

    engine = make_engine(url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO blobs (sha256, size, created_at) VALUES (:s, 3, CURRENT_TIMESTAMP)"), {"s": "a" * 64})
            conn.execute(text("INSERT INTO artifacts (format, name, version, filename, sha256, size, meta, origin, created_at) "
                              "VALUES ('python', 'p', '1', 'p-1.tar.gz', :s, 3, '{}', 'upload', CURRENT_TIMESTAMP)"), {"s": "a" * 64})
        upgrade(engine)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT name, filename FROM artifacts")).all() == [("p", "p-1.tar.gz")]
            # the new identity: the same file and bytes under another name is another artifact
            conn.execute(text("INSERT INTO artifacts (format, name, version, filename, sha256, size, meta, origin, created_at) "
                              "VALUES ('python', 'q', '1', 'p-1.tar.gz', :s, 3, '{}', 'upload', CURRENT_TIMESTAMP)"), {"s": "a" * 64})
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_sqlite_upgrade_keeps_rows(tmp_path):
    _upgrade_keeps_rows(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.postgres
def test_postgres_upgrade_keeps_rows(postgres):
    _upgrade_keeps_rows(postgres.create_database())
