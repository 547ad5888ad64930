"""Python packages: PEP 503/691 simple index, PEP 658 metadata, PEP 592 yanking, legacy upload, JSON API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection, Iterable, Mapping

from packaging.utils import canonicalize_name

from ...core.errors import InvalidInput
from ...core.interfaces import FormatBase, RepoInfo

if TYPE_CHECKING:  # pragma: no cover
    from ...core.content import LiveFile
    from ...core.services import Core

__all__ = ["PythonFormat"]


class PythonFormat(FormatBase):
    name = "python"
    kinds = frozenset({"hosted", "proxy", "group"})
    osv_ecosystem = "PyPI"  # advisories: the OSV ecosystem of this format's packages
    popular_names = "pypi"  # the popular-packages list typosquatting checks compare new names with
    index_path = "simple/"  # where a client is pointed, under /<repo>/

    def make_routes(self, core: "Core") -> Any:
        from .routes import PythonRoutes

        return PythonRoutes(core)

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


    def declared_licence(self, file: Any, read: Any) -> dict[str, Any] | None:
        """What the file's metadata declares as its licence (vetting normalises it to SPDX)."""
        from .licence import declared_licence

        return declared_licence(file, read)

    def publish(self, core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
        from .index import publish

        publish(core, repo, names)

    def link_files(self, core: "Core", repo: RepoInfo, files: Iterable["LiveFile"]) -> None:
        """Make stored files (and their PEP 658 metadata) downloadable here: publishing some names re-renders
        pages only (an upload links its own file), so files added by reference (promotion) are linked here."""
        from .index import link_files

        link_files(core, repo, files)


PLUGIN = PythonFormat
