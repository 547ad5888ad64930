"""Webhooks (server admins) and entitlement tokens (admins of the repositories they cover)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ..core.entitlements import entitlement_out
from ..core.webhooks import EVENT_TYPES, redact_url
from .deps import Caller, CallerDep, CoreDep

router = APIRouter()


# -- webhooks ----------------------------------------------------------------------------------------------------
class WebhookIn(BaseModel):
    url: str = Field(description="where deliveries are POSTed (http or https)")
    repository: str | None = Field(default=None, description="only this repository's events; omitted: every repository")
    events: list[str] = Field(default_factory=list, description=f"event types ({', '.join(EVENT_TYPES)}); empty: all")
    secret: str | None = Field(default=None, description="HMAC key (>= 16 characters); omitted: generated")
    max_attempts: int = Field(default=5, ge=1, le=20)
    timeout: float = Field(default=10.0, gt=0, le=60, description="seconds per attempt")
    description: str | None = None


class WebhookOut(BaseModel):
    id: int
    url: str
    repository: str | None
    events: list[str]
    active: bool
    max_attempts: int
    timeout: float
    description: str | None
    created_at: datetime
    created_by: str | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret; shown only in this response")


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    response_code: int | None
    duration_ms: float
    error: str | None
    response_excerpt: str | None


class DeliveryOut(BaseModel):
    id: int
    uuid: str
    webhook_id: int
    event: str
    event_id: int | None
    status: str
    attempts: int
    response_code: int | None
    created_at: datetime
    finished_at: datetime | None
    log: list[AttemptOut]


def _hook_out(hook: Any, repo: str | None) -> dict[str, Any]:
    return dict(id=hook.id, url=redact_url(hook.url), repository=repo, events=hook.events, active=hook.active,
                max_attempts=hook.max_attempts, timeout=hook.timeout, description=hook.description,
                created_at=hook.created_at, created_by=hook.created_by)


def _delivery_out(d: Any, attempts: list[Any]) -> DeliveryOut:
    return DeliveryOut(id=d.id, uuid=d.uuid, webhook_id=d.webhook_id, event=d.event_type, event_id=d.event_id,
                       status=d.status, attempts=d.attempts, response_code=d.response_code, created_at=d.created_at,
                       finished_at=d.finished_at,
                       log=[AttemptOut(attempt=a.attempt, at=a.at, response_code=a.response_code, duration_ms=a.duration_ms,
                                       error=a.error, response_excerpt=a.response_excerpt) for a in attempts])


@router.post("/webhooks", response_model=WebhookCreated, status_code=201, tags=["webhooks"])
def create_webhook(body: WebhookIn, core: CoreDep, caller: CallerDep) -> WebhookCreated:
    """Subscribe a URL to events. The response holds the secret; no later answer shows it again."""
    caller.require("admin", None)
    hook, secret = core.webhooks.create(url=body.url, repository=body.repository, events=body.events, secret=body.secret,
                                        max_attempts=body.max_attempts, timeout=body.timeout,
                                        description=body.description, actor=caller.actor, remote_addr=caller.remote)
    return WebhookCreated(**_hook_out(hook, body.repository), secret=secret)


@router.get("/webhooks", response_model=list[WebhookOut], tags=["webhooks"])
def list_webhooks(core: CoreDep, caller: CallerDep) -> list[WebhookOut]:
    caller.require("admin", None)
    return [WebhookOut(**_hook_out(h, r)) for h, r in core.webhooks.list()]


@router.get("/webhooks/{hook_id}", response_model=WebhookOut, tags=["webhooks"])
def get_webhook(hook_id: int, core: CoreDep, caller: CallerDep) -> WebhookOut:
    caller.require("admin", None)
    return WebhookOut(**_hook_out(*core.webhooks.get(hook_id)))


@router.delete("/webhooks/{hook_id}", status_code=204, tags=["webhooks"])
def delete_webhook(hook_id: int, core: CoreDep, caller: CallerDep) -> None:
    caller.require("admin", None)
    core.webhooks.delete(hook_id, actor=caller.actor, remote_addr=caller.remote)


@router.post("/webhooks/{hook_id}/ping", response_model=DeliveryOut, status_code=202, tags=["webhooks"])
def ping_webhook(hook_id: int, core: CoreDep, caller: CallerDep) -> DeliveryOut:
    """Queue a test delivery (event ``ping``); follow it in the delivery log."""
    caller.require("admin", None)
    return _delivery_out(core.webhooks.ping(hook_id, actor=caller.actor), [])


@router.get("/webhooks/{hook_id}/deliveries", response_model=list[DeliveryOut], tags=["webhooks"])
def list_deliveries(hook_id: int, core: CoreDep, caller: CallerDep,
                    limit: int = Query(default=50, ge=1, le=500)) -> list[DeliveryOut]:
    """Newest first, each with its attempts (response code, duration, error, a bounded excerpt of the answer)."""
    caller.require("admin", None)
    return [_delivery_out(d, a) for d, a in core.webhooks.deliveries(hook_id, limit=limit)]


@router.get("/webhooks/deliveries/{delivery}", response_model=DeliveryOut, tags=["webhooks"])
def get_delivery(delivery: str, core: CoreDep, caller: CallerDep) -> DeliveryOut:
    """One delivery by its id or its X-Wharf-Delivery uuid."""
    caller.require("admin", None)
    return _delivery_out(*core.webhooks.delivery(int(delivery) if delivery.isdigit() else delivery))


# -- entitlements ------------------------------------------------------------------------------------------------
class EntitlementIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="who it is for, e.g. the customer")
    repositories: list[str] = Field(min_length=1, description="repository names ('*': every repository)")
    packages: list[str] = Field(default_factory=list, description="package-name globs such as 'acme-*'; empty: all")
    expires_in_days: float | None = Field(default=None, gt=0)
    expires_at: datetime | None = None


class EntitlementOut(BaseModel):
    id: int
    name: str
    prefix: str
    repositories: list[str]
    packages: list[str]
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    downloads: int
    last_download_at: datetime | None


class EntitlementCreated(EntitlementOut):
    token: str = Field(description="the download token; shown only in this response")


def _require_admin_of(caller: Caller, repositories: list[str]) -> None:
    for repo in repositories:
        caller.require("admin", None if repo == "*" else repo)


def _administers(caller: Caller, repositories: list[str]) -> bool:
    p = caller.principal
    return p is not None and all(p.can("admin", None if r == "*" else r) for r in repositories)


@router.post("/entitlements", response_model=EntitlementCreated, status_code=201, tags=["entitlements"])
def create_entitlement(body: EntitlementIn, core: CoreDep, caller: CallerDep) -> EntitlementCreated:
    """A download-only token for customers; needs admin on every repository it covers."""
    _require_admin_of(caller, body.repositories)
    expires = body.expires_at
    if body.expires_in_days is not None:
        expires = datetime.now(timezone.utc) + timedelta(days=body.expires_in_days)
    ent, secret = core.entitlements.create(name=body.name, repositories=body.repositories, packages=body.packages,
                                           expires_at=expires, actor=caller.actor, remote_addr=caller.remote)
    return EntitlementCreated(**entitlement_out(ent), token=secret)


@router.get("/entitlements", response_model=list[EntitlementOut], tags=["entitlements"])
def list_entitlements(core: CoreDep, caller: CallerDep) -> list[EntitlementOut]:
    """Entitlements the caller administers, with their download counts."""
    if caller.principal is None:
        caller.require("admin", None)
    return [EntitlementOut(**entitlement_out(e)) for e in core.entitlements.list() if _administers(caller, e.repositories)]


@router.get("/entitlements/{ent_id}", response_model=EntitlementOut, tags=["entitlements"])
def get_entitlement(ent_id: int, core: CoreDep, caller: CallerDep) -> EntitlementOut:
    ent = core.entitlements.get(ent_id)
    _require_admin_of(caller, ent.repositories)
    return EntitlementOut(**entitlement_out(ent))


@router.delete("/entitlements/{ent_id}", response_model=EntitlementOut, tags=["entitlements"])
def revoke_entitlement(ent_id: int, core: CoreDep, caller: CallerDep) -> EntitlementOut:
    _require_admin_of(caller, core.entitlements.get(ent_id).repositories)
    return EntitlementOut(**entitlement_out(core.entitlements.revoke(ent_id, actor=caller.actor,
                                                                     remote_addr=caller.remote)))
