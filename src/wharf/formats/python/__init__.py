"""Python packages: PEP 503/691 simple index, PEP 658 metadata, PEP 592 yanking, legacy upload, JSON API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection, Mapping

from packaging.utils import canonicalize_name

from ...core.errors import InvalidInput
from ...core.interfaces import RepoHandler, RepoInfo

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["PythonFormat"]


class PythonFormat:
    name = "python"
    kinds = frozenset({"hosted", "proxy", "group"})

    def normalize_name(self, name: str) -> str:
        return canonicalize_name(name)

    def upstream_preset(self, name: str) -> str | None:
        """``pypi``: the index pip itself uses by default (read from pip's own help, never written here)."""
        if name != "pypi":
            return None
        import os
        import re
        import subprocess
        import sys

        if os.environ.get("WHARF_PRESET_PYPI"):
            return os.environ["WHARF_PRESET_PYPI"]
        out = subprocess.run([sys.executable, "-m", "pip", "install", "--help"], capture_output=True, text=True,
                             env={**os.environ, "PIP_CONFIG_FILE": os.devnull}, timeout=60).stdout
        m = re.search(r"--index-url <url>\s+Base URL of the Python Package Index \(default\s+(\S+?)\)", out.replace("\n", " "))
        return m.group(1) if m else None

    def validate_config(self, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        if config:
            raise InvalidInput(f"unknown setting(s) for python repositories: {', '.join(sorted(config))}")
        return {}

    def handler(self, core: "Core") -> RepoHandler:
        return core_routes(core)

    async def explain(self, core: "Core", group: RepoInfo, name: str) -> dict[str, Any]:
        """Which member each version of ``name`` would come from through a group, and what was hidden and why."""
        routes = core_routes(core)
        return await routes.group.explain(group, name)

    def publish(self, core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
        from .index import publish

        publish(core, repo, names)


def core_routes(core: "Core") -> Any:
    """One PythonRoutes per Core (it holds the proxy's and group's per-process state)."""
    routes = getattr(core, "_python_routes", None)
    if routes is None:
        from .routes import PythonRoutes

        routes = PythonRoutes(core)
        core._python_routes = routes  # type: ignore[attr-defined]
    return routes
