from .engine import is_sqlite, make_engine, make_sessionmaker, upgrade

__all__ = ["is_sqlite", "make_engine", "make_sessionmaker", "upgrade"]
