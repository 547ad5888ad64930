from importlib import import_module
from pkgutil import iter_modules

from .engine import is_sqlite, make_engine, make_sessionmaker, upgrade

__all__ = ["is_sqlite", "make_engine", "make_sessionmaker", "upgrade"]

# feature areas keep their tables in db/models_<area>.py: load them all, so Base.metadata is the whole schema
for _m in iter_modules(__path__):
    if _m.name.startswith("models_"):
        import_module(f"{__name__}.{_m.name}")
