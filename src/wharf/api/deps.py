"""Request dependencies: the core services and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..core.auth import Principal, credentials_from_header
from ..core.errors import Forbidden, Unauthorized
from ..core.services import Core

__all__ = ["CoreDep", "Caller", "CallerDep", "remote_addr", "repository_access"]


def get_core(request: Request) -> Core:
    return request.app.state.core  # type: ignore[no-any-return]


CoreDep = Annotated[Core, Depends(get_core)]


class Caller:
    def __init__(self, principal: Principal | None, remote: str | None):
        self.principal = principal
        self.remote = remote

    @property
    def actor(self) -> str:
        return self.principal.label if self.principal else "anonymous"

    def require(self, action: str, repository: str | None, *, public: bool = False) -> None:
        """``repository`` None means a server-wide permission (scope '*')."""
        if action == "read" and public:
            return
        if self.principal is None:
            raise Unauthorized("authentication required: send a token (Bearer, or Basic with any user name)")
        if not self.principal.can(action, repository):
            where = f"repository '{repository}'" if repository else "the whole server (scope '*')"
            raise Forbidden(f"this token has no {action} access to {where}")


def get_caller(request: Request, core: CoreDep) -> Caller:
    secret = credentials_from_header(request.headers.get("authorization", "").encode("latin-1") or None)
    principal = core.tokens.authenticate(secret) if secret is not None else None
    if principal is not None and principal.entitlement and request.url.path != "/api/v1/whoami":
        raise Forbidden("an entitlement token can only download packages: the management API is closed to it "
                        "(except /api/v1/whoami)")
    return Caller(principal, request.client.host if request.client else None)


CallerDep = Annotated[Caller, Depends(get_caller)]


def remote_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


_REPO_PARAMS = ("repo", "repository", "repo_name")


def repository_access(request: Request, core: CoreDep) -> None:
    """The repository's address allowlists for every API route acting on one (``/repositories/{name}/...`` or a
    ``{repo}`` path parameter): GET/HEAD need ``allow_read``, other methods ``allow_write``. The repository's own
    settings (``/repositories/{name}`` itself) are exempt, so an admin can always fix a list that locks people out."""
    path = getattr(request.scope.get("route"), "path", "")
    params = request.path_params
    name = params.get("name") if path.removeprefix("/api/v1").startswith("/repositories/{name}/") else None
    if name is None:
        name = next((params[k] for k in _REPO_PARAMS if k in params), None)
    if not isinstance(name, str):
        return
    repo = core.repos.get(name)
    if repo is None or repo.access is None:
        return
    action = "read" if request.method in ("GET", "HEAD") else "write"
    repo.access.check(action, request.client.host if request.client else None, repo.name)
