"""Format plugins: every subpackage of ``wharf.formats`` that defines ``PLUGIN`` (adding a format adds a folder),
plus third-party plugins registered under the ``wharf.formats`` entry-point group."""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points

__all__ = ["load_plugins"]


def load_plugins() -> dict[str, object]:
    plugins: dict[str, object] = {}
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not mod.ispkg or mod.name.startswith("_"):
            continue
        cls = getattr(importlib.import_module(f"{__name__}.{mod.name}"), "PLUGIN", None)
        if cls is not None:
            plugin = cls()
            plugins[plugin.name] = plugin
    for ep in entry_points(group="wharf.formats"):
        plugin = ep.load()()
        plugins.setdefault(plugin.name, plugin)
    return plugins
