"""npm packages: the registry protocol npm, pnpm and yarn speak (packuments, tarballs, publish, dist-tags,
deprecate, unpublish, whoami, login, audit), for hosted, proxy and group repositories."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection, Mapping

from ...core.errors import InvalidInput
from ...core.interfaces import FormatBase, RepoInfo

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["NpmFormat", "PLUGIN", "UNPUBLISH_RULES"]

UNPUBLISH_RULES = ("admin", "write", "never")


class NpmFormat(FormatBase):
    name = "npm"
    kinds = frozenset({"hosted", "proxy", "group"})
    osv_ecosystem = "npm"  # advisories: the OSV ecosystem of this format's packages
    popular_names = "npm"  # the popular-packages list typosquatting checks compare new names with
    index_path = ""  # npm is pointed at <wharf url>/<repo>/

    def make_routes(self, core: "Core") -> Any:
        from .routes import NpmRoutes

        return NpmRoutes(core)

    def normalize_name(self, name: str) -> str:
        """npm names are compared exactly (old packages with capitals, e.g. JSONStream, are distinct packages)."""
        return name.strip()

    def upstream_preset(self, name: str) -> str | None:
        """``npm``: the registry npm itself uses by default (asked from npm with empty user and global configs;
        ``WHARF_PRESET_NPM`` overrides it, for tests and machines without npm)."""
        if name != "npm":
            return None
        import os
        import shutil
        import subprocess
        import tempfile

        if os.environ.get("WHARF_PRESET_NPM"):
            return os.environ["WHARF_PRESET_NPM"]
        npm = shutil.which("npm")
        if npm is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            user, glob = os.path.join(tmp, "user-npmrc"), os.path.join(tmp, "global-npmrc")
            for path in (user, glob):  # two files: npm refuses to load one file as both
                open(path, "w").close()
            env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
            env["HOME"] = tmp
            try:
                out = subprocess.run([npm, "config", "get", "registry", "--userconfig", user, "--globalconfig", glob],
                                     capture_output=True, text=True, env=env, cwd=tmp, timeout=60).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                return None
        return out if out.startswith(("http://", "https://")) else None

    def validate_config(self, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        config = dict(config)
        rule = config.pop("unpublish", None)
        if rule is not None:
            if kind != "hosted":
                raise InvalidInput("'unpublish' is a setting of hosted npm repositories")
            if rule not in UNPUBLISH_RULES:
                raise InvalidInput(f"'unpublish' must be one of {', '.join(UNPUBLISH_RULES)} (who may unpublish: "
                                   "tokens with admin, with write, or nobody)")
            out["unpublish"] = rule
        if config:
            raise InvalidInput(f"unknown setting(s) for npm repositories: {', '.join(sorted(config))}")
        return out


    def declared_licence(self, file: Any, read: Any) -> dict[str, Any] | None:
        """What the file's metadata declares as its licence (vetting normalises it to SPDX)."""
        from .licence import declared_licence

        return declared_licence(file, read)

    def publish(self, core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
        from .index import publish

        publish(core, repo, names)

    def promote_state(self, core: "Core", source: RepoInfo, destination: RepoInfo, name: str,
                      versions: Collection[str], *, actor: str, remote_addr: str | None = None) -> dict[str, Any]:
        """Promotion: the dist-tags and deprecations of the promoted versions go with them (see publish.py)."""
        from .publish import promote_state

        return promote_state(core, source, destination, name, versions, actor=actor, remote_addr=remote_addr)


PLUGIN = NpmFormat
