"""API tokens: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ..core import audit
from ..core.errors import Forbidden, InvalidInput
from .deps import CallerDep, CoreDep

router = APIRouter(tags=["tokens"])


class ScopeIn(BaseModel):
    repository: str = Field(description="repository name, or '*' for all")
    actions: list[str] = Field(description="read, write and/or admin (each implies the ones before it)")


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[ScopeIn]
    expires_in_days: float | None = Field(default=None, gt=0)
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[dict[str, Any]]
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; shown only in this response")


def _out(tok: Any) -> dict[str, Any]:
    return dict(id=tok.id, name=tok.name, prefix=tok.prefix, scopes=tok.scopes, created_at=tok.created_at,
                created_by=tok.created_by, expires_at=tok.expires_at, revoked_at=tok.revoked_at)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenIn, core: CoreDep, caller: CallerDep) -> TokenCreated:
    """Create a token. A caller can grant only what it administers (admin on '*' can grant anything)."""
    if caller.principal is None:
        caller.require("admin", None)
    expires = body.expires_at
    if body.expires_in_days is not None:
        expires = datetime.now(timezone.utc) + timedelta(days=body.expires_in_days)
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    if expires is not None and expires <= datetime.now(timezone.utc):
        raise InvalidInput("expiry must be in the future")
    tok, secret = core.tokens.create(name=body.name, scopes=[s.model_dump() for s in body.scopes], expires_at=expires,
                                     creator=caller.principal)
    with core.sessions.begin() as s:
        audit.record(s, audit.AuditTag.TOKEN_CREATE, actor=caller.actor, subject=f"{tok.name}#{tok.id}",
                     remote_addr=caller.remote, scopes=tok.scopes)
    return TokenCreated(**_out(tok), token=secret)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(core: CoreDep, caller: CallerDep) -> list[TokenOut]:
    caller.require("admin", None)
    return [TokenOut(**_out(t)) for t in core.tokens.list()]


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: int, core: CoreDep, caller: CallerDep) -> TokenOut:
    if caller.principal is None or (not caller.principal.is_admin and caller.principal.token_id != token_id):
        if caller.principal is None:
            caller.require("admin", None)
        raise Forbidden("only a server admin may revoke other tokens (any token may revoke itself)")
    tok = core.tokens.revoke(token_id)
    with core.sessions.begin() as s:
        audit.record(s, audit.AuditTag.TOKEN_REVOKE, actor=caller.actor, subject=f"{tok.name}#{tok.id}",
                     remote_addr=caller.remote)
    core.signal.bump()
    return TokenOut(**_out(tok))


@router.get("/whoami")
def whoami(caller: CallerDep) -> dict[str, Any]:
    p = caller.principal
    if p is None:
        return {"authenticated": False}
    return {"authenticated": True, "name": p.name, "token_id": p.token_id,
            "scopes": [{"repository": r, "action": a} for r, a in p.scopes]}
