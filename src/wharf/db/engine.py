"""Engine construction: SQLite (WAL + BEGIN IMMEDIATE for writes) or PostgreSQL, and Alembic upgrades.

Sessions follow one rule: a write is ``sessions.begin()`` (SQLite: ``BEGIN IMMEDIATE``, the write lock taken at the
start, so writers queue instead of failing when a read turns into a write); a session used without ``begin()`` only
reads (SQLite: a deferred ``BEGIN``, which in WAL mode neither waits for writers nor holds them up; whatever it might
change is rolled back when it closes)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["make_engine", "make_sessionmaker", "upgrade", "is_sqlite"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8, max_overflow=16)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # type: ignore[no-untyped-def]
            # Deferred BEGIN fails under concurrent read-then-write ("database is locked"); IMMEDIATE serialises
            # writers. A read-only session's connection says so (make_sessionmaker) and needs no lock.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ) else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True)


_READ = "wharf_read_only"


class _Session(Session):
    """Bound for reading until ``begin()`` is called on it (as ``sessionmaker.begin()`` does): then for writing."""

    def begin(self, nested: bool = False):  # type: ignore[no-untyped-def]
        if not nested and self._transaction is None:
            self.bind = self.info["writer"]
        return super().begin(nested=nested)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions as the module docstring describes: ``begin()`` writes, a plain session reads."""
    reader = engine.execution_options(**{_READ: True}) if is_sqlite(engine) else engine
    return sessionmaker(reader, class_=_Session, expire_on_commit=False, info={"writer": engine})


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema to the newest (or the given) Alembic revision."""
    from alembic import command  # imported here: serving processes never need it
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
