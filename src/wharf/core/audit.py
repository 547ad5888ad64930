"""Audit log of every write: who, what, when, from where. Tags follow ``source:subject:action``."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import AuditEvent

__all__ = ["AuditTag", "AuditLog", "record", "insert"]


class AuditTag(StrEnum):
    REPOSITORY_CREATE = "repository:create"
    REPOSITORY_UPDATE = "repository:update"
    REPOSITORY_DELETE = "repository:delete"
    FILE_UPLOAD = "repository:file:upload"
    FILE_DELETE = "repository:file:delete"
    FILE_CACHE = "repository:file:proxy-fetch"
    FILE_YANK = "repository:file:yank"
    FILE_UNYANK = "repository:file:unyank"
    RELEASE_DELETE = "repository:release:delete"
    PACKAGE_ATTRIBUTES = "repository:package:attributes"
    TOKEN_CREATE = "token:create"
    TOKEN_REVOKE = "token:revoke"
    CHECK_REPAIR = "system:check:repair"
    ADVISORIES_IMPORT = "system:advisories:import"


def record(session: Session, tag: AuditTag, *, actor: str | None, repository: str | None = None, subject: str | None = None,
           remote_addr: str | None = None, **detail: Any) -> None:
    """Add an audit row inside the caller's transaction, so the write and its record commit together."""
    session.add(AuditEvent(action=str(tag), actor=actor, repository=repository, subject=subject, remote_addr=remote_addr,
                           detail=detail))


_INSERT = AuditEvent.__table__.insert()


def insert(session: Session, tag: AuditTag, *, actor: str | None, repository: str | None = None,
           subject: str | None = None, remote_addr: str | None = None, at: Any = None, **detail: Any) -> None:
    """Like ``record``, as one prepared INSERT (no ORM unit of work): for hot write paths."""
    from ..db.models import utcnow

    session.execute(_INSERT, {"action": str(tag), "actor": actor, "repository": repository, "subject": subject,
                              "remote_addr": remote_addr, "detail": detail, "at": at or utcnow()})


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def query(self, *, repository: str | None = None, action: str | None = None, limit: int = 100,
              before_id: int | None = None) -> list[AuditEvent]:
        q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(min(limit, 1000))
        if repository:
            q = q.where(AuditEvent.repository == repository)
        if action:
            q = q.where(AuditEvent.action == action)
        if before_id:
            q = q.where(AuditEvent.id < before_id)
        with self._sessions() as s:
            return list(s.scalars(q))
