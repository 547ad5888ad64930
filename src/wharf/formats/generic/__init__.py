"""Generic files: ``PUT|GET|HEAD|DELETE /<repo>/<path>`` with checksum headers, JSON directory listings, and
proxy repositories that cache any HTTP base URL. The package of a file is its directory (see ``parse``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection, Mapping

from ...core.errors import InvalidInput
from ...core.interfaces import FormatBase, RepoInfo
from . import parse

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["GenericFormat", "PLUGIN"]


class GenericFormat(FormatBase):
    name = "generic"
    kinds = frozenset({"hosted", "proxy"})

    def make_routes(self, core: "Core") -> Any:
        from .routes import GenericRoutes

        return GenericRoutes(core)

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

    def publish(self, core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
        from .listing import publish

        publish(core, repo, names)


PLUGIN = GenericFormat
