from .engine import is_sqlite, make_engine, make_sessionmaker, upgrade

__all__ = ["is_sqlite", "make_engine", "make_sessionmaker", "upgrade"]
from . import models_hooks  # noqa: E402,F401  (the hooks area's tables belong to Base.metadata wherever models are used)
