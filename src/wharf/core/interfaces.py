"""The contract between core and format plugins."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Collection, Mapping, Protocol

from .auth import Principal
from .errors import Forbidden, InvalidInput, Unauthorized

if TYPE_CHECKING:  # pragma: no cover
    from ..asgi import Receive, Scope, Send
    from .services import Core

__all__ = ["RepoInfo", "RequestContext", "FormatPlugin", "FormatBase", "RepoHandler", "KINDS"]

KINDS = ("hosted", "proxy", "group")


@dataclass(frozen=True, slots=True)
class RepoInfo:
    """A repository's settings as request handlers see them (a cached, immutable copy of the row)."""

    id: int
    name: str
    format: str
    kind: str
    private: bool
    config: Mapping[str, Any]
    version: int
    # a read-only view of the repository at an older version (``/<repo>/~<snapshot or number>/``): content reads
    # take this version, ``name`` is ``<repo>/~<label>`` (the view's own URL prefix and published tree) and
    # ``base`` the repository's name (permissions)
    pinned: int | None = field(default=None, kw_only=True)
    # compiled allow_read/allow_write lists (core.access), None when the repository restricts no address
    access: Any = field(default=None, compare=False, repr=False)

    def setting(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    @property
    def base(self) -> str:
        """The repository's own name (a view's ``name`` is ``<repo>/~<label>``)."""
        return self.name.partition("/")[0]


@dataclass(slots=True)
class RequestContext:
    repo: RepoInfo
    principal: Principal | None
    base_url: str  # e.g. "http://127.0.0.1:8080" (no trailing slash)
    remote_addr: str | None
    realm: str = "wharf"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def repo_url(self) -> str:
        return f"{self.base_url}/{self.repo.name}"

    @property
    def actor(self) -> str:
        return self.principal.label if self.principal else "anonymous"

    def require(self, action: str) -> None:
        """Allow the request or raise 401 (no credentials) / 403 (credentials without the scope, or an address
        outside the repository's allowlist)."""
        if self.repo.access is not None:
            self.repo.access.check(action, self.remote_addr, self.repo.name)
        if action == "read" and not self.repo.private:
            return
        if self.principal is None:
            raise Unauthorized(f"authentication required for {action} access to repository '{self.repo.base}'")
        if not self.principal.can(action, self.repo.base):
            raise Forbidden(f"this token has no {action} access to repository '{self.repo.base}'")


RepoHandler = Callable[[RequestContext, "Scope", "Receive", "Send", str], Awaitable[None]]


class FormatPlugin(Protocol):
    """What an ecosystem folder under ``wharf.formats`` provides. Core calls nothing else."""

    name: str
    kinds: frozenset[str]
    # optional: ``index_path`` (where a client is pointed under /<repo>/, e.g. "simple/"), ``explain(core, group,
    # name)``, ``upstream_preset(name)``, ``link_files(core, repo, files)`` (make stored files downloadable when
    # ``publish`` of some names does not link them; promotion calls it for files it added by reference),
    # ``osv_ecosystem`` (the OSV ecosystem of its packages, e.g. "PyPI": vulnerability advisories apply to the format)
    # and ``promote_state(core, source, destination, name, versions, *, actor, remote_addr)``: after a copy, move or
    # promotion left ``versions`` of ``name`` in ``destination``, carry the package's own state that belongs with
    # them (e.g. tags naming those versions) from ``source``, with ``core.set_attributes``; it returns the
    # attributes it changed in the destination ({} when none). Core knows no such state itself.

    def normalize_name(self, name: str) -> str:
        """The ecosystem's canonical form of a package name (how names are stored and compared)."""

    def validate_config(self, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Check and normalise format-specific repository settings; raise InvalidInput."""

    def handler(self, core: "Core") -> RepoHandler:
        """The client-protocol routes under ``/<repo>/``; ``subpath`` is the rest of the path after the repo name."""

    def publish(self, core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
        """Re-render the index pages of these package names (None: all) and the root, after a change."""


class FormatBase:
    """Plumbing shared by format plugins: one routes object per Core (it holds per-process state such as upstream
    clients and memos), built on first use by ``make_routes``; the protocol handler and a group's ``explain``
    delegate to it (``routes.group.explain``)."""

    def __init__(self) -> None:
        self._routes: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def make_routes(self, core: "Core") -> Any:  # pragma: no cover - every plugin defines it
        raise NotImplementedError

    def routes(self, core: "Core") -> Any:
        routes = self._routes.get(core)
        if routes is None:
            routes = self._routes[core] = self.make_routes(core)
        return routes

    def handler(self, core: "Core") -> RepoHandler:
        return self.routes(core)  # type: ignore[no-any-return]

    async def explain(self, core: "Core", group: RepoInfo, name: str) -> dict[str, Any]:
        """Which member each version of ``name`` would come from through a group, and what was hidden and why."""
        if "group" not in getattr(self, "kinds", ()):
            raise InvalidInput(f"format {getattr(self, 'name', '?')!r} has no group repositories")
        return await self.routes(core).group.explain(group, name)  # type: ignore[no-any-return]
