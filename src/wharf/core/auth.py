"""API tokens: random secrets stored as sha256, scoped to repositories and actions, cached briefly per process."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import Token, utcnow
from .errors import Forbidden, InvalidInput, NotFound, Unauthorized

__all__ = ["ACTIONS", "Principal", "TokenService", "hash_token", "credentials_from_header", "validate_scopes"]

ACTIONS = ("read", "write", "admin")
_RANK = {a: i for i, a in enumerate(ACTIONS)}
TOKEN_PREFIX = "wharf_"


def hash_token(secret: str) -> str:
    # Tokens are 256-bit random: a fast hash is right; a slow password hash per request would only burn CPU.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int
    name: str
    scopes: tuple[tuple[str, str], ...]  # (repository or "*", highest action)
    expires_at: float | None = None  # epoch seconds
    entitlement: bool = False  # a download-only customer token (core.entitlements): no writes, no management API
    packages: tuple[str, ...] = ()  # an entitlement's package-name globs (empty: every package of its repositories)

    def can(self, action: str, repository: str | None) -> bool:
        need = _RANK[action]
        for repo, act in self.scopes:
            if _RANK[act] >= need and (repo == "*" or (repository is not None and repo == repository)):
                return True
        return False

    @property
    def is_admin(self) -> bool:
        return self.can("admin", None)

    @property
    def label(self) -> str:
        return f"{'entitlement' if self.entitlement else 'token'}:{self.name}#{self.token_id}"


def validate_scopes(scopes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for s in scopes:
        repo = s.get("repository")
        actions = s.get("actions") or []
        if not isinstance(repo, str) or not repo:
            raise InvalidInput("each scope needs a 'repository' (a repository name or '*')")
        if isinstance(actions, str):
            actions = [actions]
        bad = [a for a in actions if a not in ACTIONS]
        if bad or not actions:
            raise InvalidInput(f"scope actions must be among {', '.join(ACTIONS)}; got {actions!r}")
        out.append({"repository": repo, "actions": sorted(set(actions), key=_RANK.__getitem__)})
    if not out:
        raise InvalidInput("a token needs at least one scope")
    return out


def _principal(tok: Token) -> Principal:
    scopes = tuple((s["repository"], max(s["actions"], key=_RANK.__getitem__)) for s in tok.scopes)
    exp = tok.expires_at.replace(tzinfo=tok.expires_at.tzinfo or timezone.utc).timestamp() if tok.expires_at else None
    return Principal(tok.id, tok.name, scopes, exp)


def credentials_from_header(value: bytes | None) -> str | None:
    """The secret from ``Authorization: Bearer X`` or ``Basic base64(user:X)`` (any user name); None if absent."""
    if not value:
        return None
    scheme, _, rest = value.partition(b" ")
    scheme = scheme.lower()
    rest = rest.strip()
    if scheme in (b"bearer", b"token"):
        return rest.decode("latin-1")
    if scheme == b"basic":
        try:
            decoded = base64.b64decode(rest, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials")
        _user, sep, password = decoded.partition(":")
        if not sep:
            raise Unauthorized("malformed Basic credentials")
        return password
    if scheme.startswith(b"wharf_"):  # bare token (cargo style)
        return value.decode("latin-1").strip()
    raise Unauthorized("unsupported Authorization scheme (use Bearer or Basic)")


class TokenService:
    def __init__(self, sessions: sessionmaker[Session], *, cache_ttl: float = 5.0):
        self._sessions = sessions
        self._ttl = cache_ttl
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        # other kinds of secrets (entitlement tokens): fn(sha256 hex) -> Principal | None, asked when no token matches
        self.lookups: list[Callable[[str], Principal | None]] = []

    def clear_cache(self) -> None:
        self._cache.clear()

    def authenticate(self, secret: str) -> Principal:
        """The principal for a presented secret, or Unauthorized. Cached for ``cache_ttl`` seconds."""
        digest = hash_token(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is None or hit[1] < now:
            with self._sessions() as s:
                tok = s.scalar(select(Token).where(Token.token_hash == digest))
                principal = _principal(tok) if tok is not None and tok.revoked_at is None else None
            if tok is None:
                for lookup in self.lookups:
                    principal = lookup(digest)
                    if principal is not None:
                        break
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = hit = (principal, now + self._ttl)
        principal = hit[0]
        if principal is None:
            raise Unauthorized("invalid or revoked token")
        if principal.expires_at is not None and principal.expires_at < time.time():
            raise Unauthorized("token expired")
        return principal

    def create(self, *, name: str, scopes: list[dict[str, Any]], expires_at: datetime | None, creator: Principal | None,
               secret: str | None = None) -> tuple[Token, str]:
        scopes = validate_scopes(scopes)
        if creator is not None and creator.expires_at is not None:
            # a short-lived token cannot mint one that outlives it
            cap = datetime.fromtimestamp(creator.expires_at, timezone.utc)
            if expires_at is None or expires_at > cap:
                expires_at = cap
        if creator is not None:
            for scope in scopes:
                repo = scope["repository"]
                if not creator.can("admin", None if repo == "*" else repo):
                    raise Forbidden(f"cannot grant {scope['actions']} on {repo!r}: that is beyond your own admin scope")
        secret = secret or TOKEN_PREFIX + secrets.token_urlsafe(32)
        tok = Token(name=name, token_hash=hash_token(secret), prefix=secret[:12], scopes=scopes, expires_at=expires_at,
                    created_by=creator.label if creator else "bootstrap")
        with self._sessions.begin() as s:
            s.add(tok)
        return tok, secret

    def list(self) -> list[Token]:
        with self._sessions() as s:
            return list(s.scalars(select(Token).order_by(Token.id)))

    def revoke(self, token_id: int) -> Token:
        with self._sessions.begin() as s:
            tok = s.get(Token, token_id)
            if tok is None:
                raise NotFound(f"no token with id {token_id}")
            if tok.revoked_at is None:
                tok.revoked_at = utcnow()
        self.clear_cache()
        return tok

    def any(self) -> bool:
        """Whether any token was ever created (the first start creates the admin token)."""
        with self._sessions() as s:
            return s.scalar(select(Token.id).limit(1)) is not None
