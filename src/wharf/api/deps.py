"""Request dependencies: the core services and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..core.auth import Principal, credentials_from_header
from ..core.errors import Forbidden, Unauthorized
from ..core.services import Core

__all__ = ["CoreDep", "Caller", "CallerDep", "remote_addr"]


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
    return Caller(principal, request.client.host if request.client else None)


CallerDep = Annotated[Caller, Depends(get_caller)]


def remote_addr(request: Request) -> str | None:
    return request.client.host if request.client else None
