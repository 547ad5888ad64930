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
    kinds = frozenset({"hosted"})

    def normalize_name(self, name: str) -> str:
        return canonicalize_name(name)

    def validate_config(self, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        if config:
            raise InvalidInput(f"unknown setting(s) for python repositories: {', '.join(sorted(config))}")
        return {}

    def handler(self, core: "Core") -> RepoHandler:
        from .routes import PythonRoutes

        return PythonRoutes(core)

    def publish(self, core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
        from .index import publish

        publish(core, repo, names)
