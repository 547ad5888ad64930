"""Generic files: ``PUT|GET|HEAD|DELETE /<repo>/<path>`` with checksum headers, JSON directory listings, and
proxy repositories that cache any HTTP base URL. The package of a file is its directory (see ``parse``)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Collection, Mapping

from ...core.errors import InvalidInput
from ...core.interfaces import RepoHandler, RepoInfo
from . import parse

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["GenericFormat", "PLUGIN"]


class GenericFormat:
    name = "generic"
    kinds = frozenset({"hosted", "proxy"})

    def __init__(self) -> None:
        # the routes hold per-process state (proxy upstream clients); one set per Core
        self._routes: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def _routes_for(self, core: "Core") -> Any:
        routes = self._routes.get(core)
        if routes is None:
            from .routes import GenericRoutes

            routes = self._routes[core] = GenericRoutes(core)
        return routes

    def normalize_name(self, name: str) -> str:
        """A package is a directory: ``"/tools/cli/1.4/"`` -> ``"tools/cli/1.4"``; the root is ``"/"``."""
        try:
            return parse.normalize_name(name)
        except parse.InvalidPath as exc:
            raise InvalidInput(exc.message, reason="invalid-name")

    def validate_config(self, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        if config:
            raise InvalidInput(f"unknown setting(s) for generic repositories: {', '.join(sorted(config))}")
        return {}

    def handler(self, core: "Core") -> RepoHandler:
        return self._routes_for(core)  # type: ignore[no-any-return]

    def publish(self, core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
        from .listing import publish

        publish(core, repo, names)


PLUGIN = GenericFormat
