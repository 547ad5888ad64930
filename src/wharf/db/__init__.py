import importlib
import pkgutil

from .engine import is_sqlite, make_engine, make_sessionmaker, upgrade

__all__ = ["is_sqlite", "make_engine", "make_sessionmaker", "upgrade"]

# Feature areas keep their tables in db/models_<area>.py: importing them here puts every table in Base.metadata
# wherever the schema is compared or created.
for _mod in pkgutil.iter_modules(__path__):
    if _mod.name.startswith("models_"):
        importlib.import_module(f"{__name__}.{_mod.name}")
