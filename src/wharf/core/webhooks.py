"""Webhooks: subscriptions to events (of one repository or all), signed JSON deliveries run as background tasks
with exponential backoff, and a delivery log.

Signature: ``X-Wharf-Signature-256: sha256=<hex>`` where ``<hex>`` is HMAC-SHA256, keyed with the webhook's
secret (its UTF-8 bytes), of ``<X-Wharf-Timestamp value> + "." + <raw request body bytes>``. The timestamp is
Unix seconds of the attempt, so a receiver can refuse old (replayed) requests; ``X-Wharf-Delivery`` is the same
on every attempt of one delivery, so a receiver can drop duplicates.

Secrets are kept so HMAC is possible, encrypted at rest with AES-256-GCM under a key in the data directory
(``state/webhooks.key``, created on first use, mode 0600): a copy of the database alone does not reveal them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
import uuid
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable
from urllib.parse import urlsplit

from sqlalchemy import or_, select

from .. import __version__
from ..db.models import Repository, utcnow
from ..db.models_hooks import Webhook, WebhookAttempt, WebhookDelivery
from . import audit
from .errors import InvalidInput, NotFound
from .signal import ChangeSignal

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from .services import Core

__all__ = ["WebhookService", "EVENT_TYPES", "sign", "verify", "SecretBox", "WebhookTag", "TASK_KIND", "redact_url", "event_payload"]

log = logging.getLogger("wharf.webhooks")

EVENT_TYPES = (
    "package.created", "package.deleted", "package.promoted", "package.copied", "package.moved",
    "package.quarantined", "package.released", "package.tags_updated", "scan.completed", "policy.denied", "ping",
)
TASK_KIND = "webhook.deliver"
SECRET_PREFIX = "whsec_"
EXCERPT_BYTES = 1024


class WebhookTag(StrEnum):
    CREATE = "webhook:create"
    DELETE = "webhook:delete"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Wharf-Signature-256`` value: ``sha256=`` + hex HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: float | None = 300.0) -> bool:
    """What a receiver does (shown in docs/webhooks.md): constant-time compare, and a bounded clock skew."""
    if tolerance is not None:
        try:
            if abs(time.time() - int(timestamp)) > tolerance:
                return False
        except ValueError:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class SecretBox:
    """AES-256-GCM with a random key kept in the data directory. Stored form: ``v1:`` + base64(nonce + ciphertext)."""

    def __init__(self, path: Path):
        self.path = path
        self._aead: Any = None

    def _cipher(self) -> Any:
        if self._aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead = AESGCM(self._load_key())
        return self._aead

    def _load_key(self) -> bytes:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):  # another process may be writing it right now
                key = self.path.read_bytes()
                if len(key) == 32:
                    return key
                time.sleep(0.02)
            raise RuntimeError(f"{self.path} is not a 32-byte key")
        key = secrets.token_bytes(32)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key

    def seal(self, plain: str) -> str:
        nonce = secrets.token_bytes(12)
        return "v1:" + base64.b64encode(nonce + self._cipher().encrypt(nonce, plain.encode(), b"wharf-webhook")).decode()

    def open(self, sealed: str) -> str:
        if not sealed.startswith("v1:"):
            raise ValueError("unknown secret encoding")
        raw = base64.b64decode(sealed[3:])
        return self._cipher().decrypt(raw[:12], raw[12:], b"wharf-webhook").decode()  # type: ignore[no-any-return]


def _validate_url(url: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"webhook url must be an http:// or https:// URL, got {url!r}")
    return url


def _validate_events(events: Iterable[str] | None) -> list[str]:
    out = sorted({e.strip() for e in events or [] if e and e.strip()})
    bad = [e for e in out if e not in EVENT_TYPES]
    if bad:
        raise InvalidInput(f"unknown event type(s) {', '.join(bad)}; known: {', '.join(EVENT_TYPES)}")
    return out


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or timezone.utc).isoformat()
    return str(value)


def event_payload(event: Any) -> dict[str, Any]:
    """The JSON body for an event (``core.events.Event`` or anything with its attributes)."""
    return {
        "event": event.type,
        "id": getattr(event, "id", None),
        "time": _iso(getattr(event, "at", None)) or utcnow().isoformat(),
        "repository": event.repository,
        "format": getattr(event, "format", None),
        "package": getattr(event, "package", None),
        "version": getattr(event, "version", None),
        "files": [dict(f) for f in (getattr(event, "files", None) or ())],
        "actor": getattr(event, "actor", None),
        "detail": dict(getattr(event, "detail", None) or {}),
    }


class WebhookService:
    def __init__(self, core: "Core", *, backoff: float | None = None):
        self.core = core
        self._sessions = core.sessions
        self.box = SecretBox(Path(core.settings.data).resolve() / "state" / "webhooks.key")
        self.backoff = float(getattr(core.settings, "webhook_backoff", 2.0) if backoff is None else backoff)
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        # whether any webhook is active, as of an epoch of this signal (bumped by every webhook change, any process)
        self._signal = ChangeSignal(Path(core.settings.data).resolve() / "state" / "webhooks-epoch")
        self._any: tuple[int, bool] | None = None
        try:
            self._refresh_any()
        except Exception:  # noqa: BLE001 - e.g. a database not migrated yet: decided later, in background work
            self._any = None
        core.tasks.register(TASK_KIND, _deliver_task)
        core.events.subscribe("webhooks", _on_event, types=None, when=self._wanted, prepare=self._refresh_if_changed)

    def _wanted(self, event: Any) -> bool:
        """At emit time (maybe inside the writer's transaction: no query here): False only when this process knows
        that no webhook exists since the last configuration change; otherwise the background subscriber looks."""
        known = self._any
        return event.type != "ping" and (known is None or known[1] or known[0] != self._signal.current())

    def _refresh_if_changed(self) -> None:
        known = self._any
        if known is None or known[0] != self._signal.current():
            self._refresh_any()

    def _refresh_any(self) -> None:
        epoch = self._signal.current()
        with self._sessions() as s:
            found = s.scalar(select(Webhook.id).where(Webhook.active.is_(True)).limit(1)) is not None
        self._any = (epoch, found)

    # -- management ----------------------------------------------------------------------------------------------
    def create(self, *, url: str, repository: str | None = None, events: Iterable[str] | None = None,
               secret: str | None = None, max_attempts: int = 5, timeout: float = 10.0, description: str | None = None,
               actor: str, remote_addr: str | None = None) -> tuple[Webhook, str]:
        _validate_url(url)
        types = _validate_events(events)
        if not 1 <= max_attempts <= 20:
            raise InvalidInput("max_attempts must be between 1 and 20")
        if not 0 < timeout <= 60:
            raise InvalidInput("timeout must be between 0 and 60 seconds")
        if secret is not None and len(secret) < 16:
            raise InvalidInput("a webhook secret must have at least 16 characters (or let Wharf generate one)")
        secret = secret or SECRET_PREFIX + secrets.token_urlsafe(32)
        repo_id = None
        if repository:
            info = self.core.repos.get(repository)
            if info is None:
                raise InvalidInput(f"no repository named {repository!r}")
            repo_id = info.id
        hook = Webhook(url=url, repository_id=repo_id, events=types, secret=self.box.seal(secret), active=True,
                       max_attempts=max_attempts, timeout=timeout, description=description, created_by=actor)
        with self._sessions.begin() as s:
            s.add(hook)
            s.flush()
            audit.record(s, WebhookTag.CREATE, actor=actor, repository=repository,  # type: ignore[arg-type]
                         subject=f"webhook#{hook.id}", remote_addr=remote_addr, url=redact_url(url), events=types)
        self._changed()
        return hook, secret

    def _changed(self) -> None:
        self._any = None
        self._signal.bump()  # other processes stop skipping events (see _wanted)

    def list(self) -> list[tuple[Webhook, str | None]]:
        with self._sessions() as s:
            rows = s.execute(select(Webhook, Repository.name).outerjoin(Repository, Repository.id == Webhook.repository_id)
                             .order_by(Webhook.id)).all()
        return [(h, name) for h, name in rows]

    def get(self, hook_id: int) -> tuple[Webhook, str | None]:
        with self._sessions() as s:
            row = s.execute(select(Webhook, Repository.name).outerjoin(Repository, Repository.id == Webhook.repository_id)
                            .where(Webhook.id == hook_id)).first()
        if row is None:
            raise NotFound(f"no webhook with id {hook_id}")
        return row[0], row[1]

    def delete(self, hook_id: int, *, actor: str, remote_addr: str | None = None) -> None:
        with self._sessions.begin() as s:
            hook = s.get(Webhook, hook_id)
            if hook is None:
                raise NotFound(f"no webhook with id {hook_id}")
            s.delete(hook)
            audit.record(s, WebhookTag.DELETE, actor=actor, subject=f"webhook#{hook_id}",  # type: ignore[arg-type]
                         remote_addr=remote_addr, url=redact_url(hook.url))
        self._changed()

    def deliveries(self, hook_id: int, *, limit: int = 50) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
        self.get(hook_id)
        with self._sessions() as s:
            rows = list(s.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook_id)
                                  .order_by(WebhookDelivery.id.desc()).limit(limit)))
            ids = [d.id for d in rows]
            attempts: dict[int, list[WebhookAttempt]] = {i: [] for i in ids}
            if ids:
                for a in s.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids))
                                   .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)):
                    attempts[a.delivery_id].append(a)
        return [(d, attempts[d.id]) for d in rows]

    def delivery(self, uuid_or_id: str | int) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
        with self._sessions() as s:
            if isinstance(uuid_or_id, int):
                d = s.get(WebhookDelivery, uuid_or_id)
            else:
                d = s.scalar(select(WebhookDelivery).where(WebhookDelivery.uuid == uuid_or_id))
            if d is None:
                raise NotFound(f"no webhook delivery {uuid_or_id}")
            attempts = list(s.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == d.id)
                                      .order_by(WebhookAttempt.attempt)))
        return d, attempts

    def ping(self, hook_id: int, *, actor: str) -> WebhookDelivery:
        """A test delivery of a ``ping`` event to this webhook only (through the task queue, like any other)."""
        hook, repo_name = self.get(hook_id)
        body = {"event": "ping", "id": None, "time": utcnow().isoformat(), "repository": repo_name, "format": None,
                "package": None, "version": None, "files": [], "actor": actor,
                "detail": {"webhook": hook.id, "message": "ping from Wharf"}}
        return self._enqueue(hook, "ping", None, body)

    # -- dispatch ------------------------------------------------------------------------------------------------
    def matching(self, event_type: str, repository: str | None) -> list[Webhook]:
        with self._sessions() as s:
            cond = Webhook.repository_id.is_(None)
            if repository:
                repo_id = s.scalar(select(Repository.id).where(Repository.name == repository))
                if repo_id is not None:
                    cond = or_(cond, Webhook.repository_id == repo_id)
            hooks = list(s.scalars(select(Webhook).where(Webhook.active.is_(True), cond).order_by(Webhook.id)))
        return [h for h in hooks if not h.events or event_type in h.events]

    def on_event(self, event: Any) -> list[WebhookDelivery]:
        """An event subscriber (runs in background work): one delivery per matching webhook."""
        if event.type == "ping":  # pings go to the one webhook they test
            return []
        self._refresh_any()
        hooks = self.matching(event.type, event.repository)
        if not hooks:
            return []
        body = event_payload(event)
        return [self._enqueue(h, event.type, getattr(event, "id", None), body) for h in hooks]

    def _enqueue(self, hook: Webhook, event_type: str, event_id: int | None, body: dict[str, Any]) -> WebhookDelivery:
        d = WebhookDelivery(webhook_id=hook.id, uuid=str(uuid.uuid4()), event_type=event_type, event_id=event_id,
                            body=json.dumps(body, separators=(",", ":"), sort_keys=True, default=str),
                            status="pending", attempts=0)
        with self._sessions.begin() as s:
            s.add(d)
        self.core.tasks.enqueue(TASK_KIND, {"delivery": d.id}, max_attempts=hook.max_attempts, backoff=self.backoff)
        return d

    # -- delivery ------------------------------------------------------------------------------------------------
    def _client(self) -> httpx.Client:
        import httpx

        with self._http_lock:
            if self._http is None:
                self._http = httpx.Client(follow_redirects=False, trust_env=True,
                                          headers={"User-Agent": f"wharf-webhooks/{__version__}"})
            return self._http

    def attempt(self, delivery_id: int) -> bool:
        """One HTTP attempt of a delivery, logged. True: delivered (or nothing left to do). Raises DeliveryFailed on
        a failure that should be retried (the task queue retries with exponential backoff)."""
        import httpx  # only a server with webhooks pays for the HTTP client

        with self._sessions() as s:
            d = s.get(WebhookDelivery, delivery_id)
            hook = s.get(Webhook, d.webhook_id) if d is not None else None
        if d is None or hook is None or d.status in ("delivered", "failed"):
            return True
        number = d.attempts + 1
        body = d.body.encode()
        timestamp = str(int(time.time()))
        secret = self.box.open(hook.secret)
        headers = {
            "Content-Type": "application/json",
            "X-Wharf-Event": d.event_type,
            "X-Wharf-Delivery": d.uuid,
            "X-Wharf-Timestamp": timestamp,
            "X-Wharf-Signature-256": sign(secret, timestamp, body),
            "X-Wharf-Attempt": str(number),
        }
        code: int | None = None
        error: str | None = None
        excerpt: str | None = None
        start = time.perf_counter()
        try:
            with self._client().stream("POST", hook.url, content=body, headers=headers,
                                       timeout=httpx.Timeout(hook.timeout)) as resp:
                code = resp.status_code
                raw = b""
                for chunk in resp.iter_bytes():
                    raw += chunk
                    if len(raw) >= EXCERPT_BYTES:
                        break
                excerpt = raw[:EXCERPT_BYTES].decode("utf-8", "replace")
            if not 200 <= code < 300:
                error = f"receiver answered HTTP {code}"
        except httpx.TimeoutException:
            error = f"timed out after {hook.timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        duration = (time.perf_counter() - start) * 1000
        ok = error is None
        final = ok or number >= hook.max_attempts
        with self._sessions.begin() as s:
            s.add(WebhookAttempt(delivery_id=d.id, attempt=number, response_code=code, duration_ms=round(duration, 1),
                                 error=error, response_excerpt=excerpt))
            row = s.get(WebhookDelivery, d.id)
            if row is not None:
                row.attempts = number
                row.response_code = code
                row.status = "delivered" if ok else ("failed" if final else "retrying")
                if final:
                    row.finished_at = utcnow()
        log.info("webhook delivery", extra={"fields": {"webhook": hook.id, "delivery": d.uuid, "event": d.event_type,
                                                       "attempt": number, "status": code, "error": error,
                                                       "ms": round(duration, 1)}})
        if not ok and not final:
            raise DeliveryFailed(f"webhook #{hook.id} delivery {d.uuid} attempt {number}: {error}")
        return ok

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


class DeliveryFailed(Exception):
    """An attempt failed and another one is due (the task queue retries it)."""


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


def _deliver_task(core: "Core", payload: dict[str, Any]) -> None:
    core.webhooks.attempt(int(payload["delivery"]))


def _on_event(core: "Core", event: Any) -> None:
    core.webhooks.on_event(event)
