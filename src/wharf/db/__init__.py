from . import models_hooks  # the hooks area's tables are part of Base.metadata wherever the models are loaded
from .engine import is_sqlite, make_engine, make_sessionmaker, upgrade

__all__ = ["is_sqlite", "make_engine", "make_sessionmaker", "upgrade", "models_hooks"]
