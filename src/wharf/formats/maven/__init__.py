"""Maven repositories: the standard layout over plain HTTP (GET/HEAD/PUT), hosted, proxy and group.

Package names are ``groupId:artifactId`` and keep their case: Maven coordinates are case-sensitive (a POM that
asks for ``org.Foo:bar`` gets exactly that path), so ``normalize_name`` is the identity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection, Mapping

from ...core.errors import InvalidInput
from ...core.interfaces import FormatBase, RepoInfo

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["MavenFormat", "PLUGIN"]


class MavenFormat(FormatBase):
    name = "maven"
    kinds = frozenset({"hosted", "proxy", "group"})
    osv_ecosystem = "Maven"  # advisories: the OSV ecosystem of this format's packages
    index_path = ""  # clients are pointed at /<repo>/ itself

    def make_routes(self, core: "Core") -> Any:
        from .routes import MavenRoutes

        return MavenRoutes(core)

    def normalize_name(self, name: str) -> str:
        """Identity: ``groupId:artifactId`` keeps its case (a name that is not valid Maven coordinates simply
        matches nothing; uploads validate coordinates from the path)."""
        return name

    def upstream_preset(self, name: str) -> str | None:
        """``central``: the repository Maven itself uses by default, read from the super POM inside the installed
        Maven (``maven-model-builder``), never written here."""
        if name != "central":
            return None
        from .preset import central_url

        return central_url()

    def validate_config(self, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        if config:
            raise InvalidInput(f"unknown setting(s) for maven repositories: {', '.join(sorted(config))}")
        return {}


    def declared_licence(self, file: Any, read: Any) -> dict[str, Any] | None:
        """What the file's metadata declares as its licence (vetting normalises it to SPDX)."""
        from .licence import declared_licence

        return declared_licence(file, read)

    def publish(self, core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
        from .store import publish

        publish(core, repo, names)


PLUGIN = MavenFormat
