"""Cargo sparse registries: index files rendered on change, cargo publish/yank/owner/search, proxy and group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection, Mapping

from ...core.errors import InvalidInput
from ...core.interfaces import FormatBase, RepoInfo
from .parse import normalize_name

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["CargoFormat", "PLUGIN"]


class CargoFormat(FormatBase):
    name = "cargo"
    kinds = frozenset({"hosted", "proxy", "group"})
    osv_ecosystem = "crates.io"  # advisories: the OSV ecosystem of this format's packages

    def make_routes(self, core: "Core") -> Any:
        from .routes import CargoRoutes

        return CargoRoutes(core)

    def normalize_name(self, name: str) -> str:
        """Crate names compare case-insensitively with '-' and '_' alike."""
        return normalize_name(name)

    def validate_config(self, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        if config:
            raise InvalidInput(f"unknown setting(s) for cargo repositories: {', '.join(sorted(config))}")
        return {}


    def declared_licence(self, file: Any, read: Any) -> dict[str, Any] | None:
        """What the file's metadata declares as its licence (vetting normalises it to SPDX)."""
        from .licence import declared_licence

        return declared_licence(file, read)

    def publish(self, core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
        from .index import publish

        publish(core, repo, names)

    def promote_state(self, core: "Core", source: RepoInfo, destination: RepoInfo, name: str,
                      versions: Collection[str], *, actor: str, remote_addr: str | None = None) -> dict[str, Any]:
        """Promotion: a crate arriving where it has no owners takes the source's (as its first publisher would own
        it); owners the destination has are its own and stay. Returns the attributes changed."""
        owners = core.content.attributes(source, name).get("owners")
        if not owners or core.content.attributes(destination, name).get("owners"):
            return {}
        core.set_attributes(destination, name, {"owners": list(owners)}, actor=actor, remote_addr=remote_addr)
        return {"owners": list(owners)}


PLUGIN = CargoFormat
