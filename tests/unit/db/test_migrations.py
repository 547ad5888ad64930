"""The Alembic migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from wharf.db import make_engine, upgrade
from wharf.db.models import Base


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
