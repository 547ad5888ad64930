"""Entitlement tokens: download-only secrets for customers, scoped to repositories and optionally to package-name
globs, with expiry, revocation and download counts.

They authenticate like API tokens (sha256 of the secret, through ``TokenService.lookups``) and become a
``Principal`` with ``entitlement=True`` and read scopes only, so every protocol route's ``ctx.require`` already
refuses writes; the management API refuses them except ``/api/v1/whoami`` (``api.deps.get_caller``).

Download counting costs no database write per download: ``count`` bumps an in-memory counter; a background thread
adds the counters to the rows every ``entitlement_flush`` seconds, at shutdown, and before counts are listed."""

from __future__ import annotations

import fnmatch
import logging
import secrets
import threading
from collections import Counter
from datetime import datetime, timezone
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from ..db.models import Artifact, RepositoryContent, utcnow
from ..db.models_hooks import Entitlement
from . import audit
from .auth import Principal, hash_token
from .errors import Forbidden, InvalidInput, NotFound

if TYPE_CHECKING:  # pragma: no cover
    from .services import Core

__all__ = ["EntitlementService", "ENTITLEMENT_PREFIX", "EntitlementTag"]

log = logging.getLogger("wharf.entitlements")
ENTITLEMENT_PREFIX = "wharf_ent_"


class EntitlementTag(StrEnum):
    CREATE = "entitlement:create"
    REVOKE = "entitlement:revoke"


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return value.replace(tzinfo=value.tzinfo or timezone.utc).timestamp()


class EntitlementService:
    def __init__(self, core: "Core"):
        self.core = core
        self._sessions = core.sessions
        self._pending: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        self._names: dict[tuple[str, str, str], tuple[str, bool]] = {}  # (repo, sha256, filename) -> (package, exact)
        core.tokens.lookups.append(self._lookup)

    # -- authentication ------------------------------------------------------------------------------------------
    def _lookup(self, digest: str) -> Principal | None:
        with self._sessions() as s:
            ent = s.scalar(select(Entitlement).where(Entitlement.token_hash == digest))
        if ent is None or ent.revoked_at is not None:
            return None
        scopes = tuple((r, "read") for r in ent.repositories)
        return Principal(ent.id, ent.name, scopes, _epoch(ent.expires_at), entitlement=True,
                         packages=tuple(p.lower() for p in ent.packages))

    # -- the protocol side (per request) -------------------------------------------------------------------------
    def check_package(self, principal: Principal, name: str, filename: str) -> None:
        """Refuse a package outside a package-scoped entitlement (a proxy asks before it fetches the file)."""
        if principal.packages and not any(fnmatch.fnmatchcase(name.lower(), p) for p in principal.packages):
            raise Forbidden(f"this entitlement does not cover {filename!r} (packages: {', '.join(principal.packages)})")

    def before_download(self, principal: Principal, repo_name: str, sha256: str, filename: str, *,
                        package: str | None = None) -> bool:
        """Refuse a file outside a package-scoped entitlement; True when the file is a package file (counted as a
        download), False for a derived file with the same digest (e.g. PEP 658 metadata) or an unknown one.
        ``package``: what the route already knows the file belongs to (a proxy's file not recorded yet)."""
        found = self._package_of(repo_name, sha256, filename)
        if principal.packages:
            if found is None and package is None:
                raise Forbidden(f"this entitlement does not cover {filename!r} (packages: {', '.join(principal.packages)})")
            self.check_package(principal, found[0] if found is not None else str(package), filename)
        return found is not None and found[1]

    def _package_of(self, repo_name: str, sha256: str, filename: str) -> tuple[str, bool] | None:
        """(package name, whether ``filename`` is the artifact's own name) of a file published in a repository;
        looked up by digest, since a derived file (a wheel's .metadata) is published under the artifact's digest."""
        key = (repo_name, sha256, filename)
        hit = self._names.get(key)
        if hit is not None:
            return hit
        repo = self.core.repos.get(repo_name)
        if repo is None:
            return None
        with self._sessions() as s:
            rows = s.execute(select(RepositoryContent.name, Artifact.filename)
                             .join(Artifact, Artifact.id == RepositoryContent.artifact_id)
                             .where(RepositoryContent.repository_id == repo.id, Artifact.sha256 == sha256).limit(20)).all()
        if not rows:  # not remembered: the file may be recorded a moment later
            return None
        exact = [n for n, f in rows if f == filename]
        hit = (exact[0], True) if exact else (rows[0][0], False)
        if len(self._names) > 50_000:
            self._names.clear()
        self._names[key] = hit  # a file's package never changes
        return hit

    def count(self, entitlement_id: int) -> None:
        """One download (a GET of a file): an in-memory increment; written later in batches."""
        with self._lock:
            self._pending[entitlement_id] += 1
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._run, name="wharf-entitlement-counts", daemon=True)
                self._flusher.start()

    def _run(self) -> None:
        interval = max(0.05, float(self.core.settings.entitlement_flush))
        while not self._stop.wait(interval):
            try:
                self.flush()
            except Exception:  # pragma: no cover - the database may be briefly unavailable; counts stay pending
                log.exception("could not write entitlement download counts")

    def flush(self) -> int:
        """Write pending counts (one UPDATE per entitlement); returns how many downloads were written."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return 0
        try:
            now = utcnow()
            with self._sessions.begin() as s:
                for ent_id, n in sorted(pending.items()):
                    s.execute(update(Entitlement).where(Entitlement.id == ent_id)
                              .values(downloads=Entitlement.downloads + n, last_download_at=now))
        except Exception:
            with self._lock:
                self._pending.update(pending)  # try again next time
            raise
        return sum(pending.values())

    def close(self) -> None:
        self._stop.set()
        try:
            self.flush()
        except Exception:  # pragma: no cover
            log.exception("could not write entitlement download counts at shutdown")

    # -- management ----------------------------------------------------------------------------------------------
    def create(self, *, name: str, repositories: list[str], packages: list[str] | None = None,
               expires_at: datetime | None, actor: str, remote_addr: str | None = None) -> tuple[Entitlement, str]:
        if not name or len(name) > 200:
            raise InvalidInput("an entitlement needs a name (1-200 characters), e.g. the customer's")
        if not repositories or not all(isinstance(r, str) and r for r in repositories):
            raise InvalidInput("an entitlement needs at least one repository ('*' for every repository)")
        for r in repositories:
            if r != "*" and self.core.repos.get(r) is None:
                raise InvalidInput(f"no repository named {r!r}")
        packages = [p.strip() for p in packages or [] if p and p.strip()]
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=timezone.utc)
        if expires_at is not None and expires_at <= datetime.now(timezone.utc):
            raise InvalidInput("expiry must be in the future")
        secret = ENTITLEMENT_PREFIX + secrets.token_urlsafe(32)
        ent = Entitlement(name=name, token_hash=hash_token(secret), prefix=secret[:14], repositories=sorted(set(repositories)),
                          packages=packages, expires_at=expires_at, created_by=actor, downloads=0)
        with self._sessions.begin() as s:
            s.add(ent)
            s.flush()
            audit.record(s, EntitlementTag.CREATE, actor=actor, subject=f"{name}#{ent.id}",  # type: ignore[arg-type]
                         remote_addr=remote_addr, repositories=ent.repositories, packages=packages,
                         expires_at=expires_at.isoformat() if expires_at else None)
        return ent, secret

    def list(self) -> list[Entitlement]:
        self.flush()  # this process's pending counts (other processes write theirs every few seconds)
        with self._sessions() as s:
            return list(s.scalars(select(Entitlement).order_by(Entitlement.id)))

    def get(self, ent_id: int) -> Entitlement:
        self.flush()
        with self._sessions() as s:
            ent = s.get(Entitlement, ent_id)
        if ent is None:
            raise NotFound(f"no entitlement with id {ent_id}")
        return ent

    def revoke(self, ent_id: int, *, actor: str, remote_addr: str | None = None) -> Entitlement:
        with self._sessions.begin() as s:
            ent = s.get(Entitlement, ent_id)
            if ent is None:
                raise NotFound(f"no entitlement with id {ent_id}")
            if ent.revoked_at is None:
                ent.revoked_at = utcnow()
                audit.record(s, EntitlementTag.REVOKE, actor=actor, subject=f"{ent.name}#{ent.id}",  # type: ignore[arg-type]
                             remote_addr=remote_addr)
        self.core.tokens.clear_cache()
        self.core.signal.bump()  # other processes drop their cached principals too
        return ent


def entitlement_out(ent: Entitlement) -> dict[str, Any]:
    return dict(id=ent.id, name=ent.name, prefix=ent.prefix, repositories=ent.repositories, packages=ent.packages,
                created_at=ent.created_at, created_by=ent.created_by, expires_at=ent.expires_at,
                revoked_at=ent.revoked_at, downloads=ent.downloads, last_download_at=ent.last_download_at)
