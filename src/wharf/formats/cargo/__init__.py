"""Cargo sparse registries: index files rendered on change, cargo publish/yank/owner/search, proxy and group."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Collection, Mapping

from ...core.errors import InvalidInput
from ...core.interfaces import RepoHandler, RepoInfo
from .parse import normalize_name

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["CargoFormat", "PLUGIN"]


class CargoFormat:
    name = "cargo"
    kinds = frozenset({"hosted", "proxy", "group"})

    def __init__(self) -> None:
        self._routes: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def _routes_for(self, core: "Core") -> Any:
        routes = self._routes.get(core)
        if routes is None:
            from .routes import CargoRoutes

            routes = self._routes[core] = CargoRoutes(core)
        return routes

    def normalize_name(self, name: str) -> str:
        """Crate names compare case-insensitively with '-' and '_' alike."""
        return normalize_name(name)

    def validate_config(self, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        if config:
            raise InvalidInput(f"unknown setting(s) for cargo repositories: {', '.join(sorted(config))}")
        return {}

    def handler(self, core: "Core") -> RepoHandler:
        return self._routes_for(core)  # type: ignore[no-any-return]

    async def explain(self, core: "Core", group: RepoInfo, name: str) -> dict[str, Any]:
        return await self._routes_for(core).group.explain(group, name)  # type: ignore[no-any-return]

    def publish(self, core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
        from .index import publish

        publish(core, repo, names)


PLUGIN = CargoFormat
