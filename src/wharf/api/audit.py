"""The audit log: every write, who, when, from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from .deps import CallerDep, CoreDep

router = APIRouter(tags=["audit"])


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str | None
    action: str
    repository: str | None
    subject: str | None
    remote_addr: str | None
    detail: dict[str, Any]


@router.get("/audit", response_model=list[AuditOut])
def audit_log(core: CoreDep, caller: CallerDep, repository: str | None = None, action: str | None = None,
              limit: int = 100, before_id: int | None = None) -> list[AuditOut]:
    """Newest first. Server admins see everything; a repository admin sees that repository's events."""
    caller.require("admin", repository)
    events = core.audit.query(repository=repository, action=action, limit=limit, before_id=before_id)
    return [AuditOut(id=e.id, at=e.at, actor=e.actor, action=e.action, repository=e.repository, subject=e.subject,
                     remote_addr=e.remote_addr, detail=e.detail or {}) for e in events]
