"""Format plugins are found through the ``wharf.formats`` entry-point group (see pyproject.toml)."""

from __future__ import annotations

from importlib.metadata import entry_points

__all__ = ["load_plugins"]


def load_plugins() -> dict[str, object]:
    plugins: dict[str, object] = {}
    for ep in entry_points(group="wharf.formats"):
        cls = ep.load()
        plugin = cls()
        plugins[plugin.name] = plugin
    if not plugins:  # running from a source tree without installed metadata
        from .python import PythonFormat

        plugins["python"] = PythonFormat()
    return plugins
