"""The event stream: what happened to packages, stored in order (``events``) and handed to subscribers in
background work, never in the request path.

A subscriber (webhooks, scans, policies, ...) registers a function in every process at start-up; ``emit`` stores the
event and, in the same transaction, one task per interested subscriber, so a slow or failing subscriber is retried
on its own and never delays the write that caused the event or the other subscribers. A subscriber whose whole work
is to queue a task of its own (the scan of a new version) registers with ``on_store`` instead: it queues that task in
the event's transaction, sparing every event a delivery task (claim, run, finish: three more writes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import Event as EventRow
from ..db.models import utcnow

if TYPE_CHECKING:  # pragma: no cover
    from ..tasks import TaskQueue
    from .content import LiveFile
    from .services import Core

__all__ = ["Event", "EventBus", "EVENT_TYPES", "file_entries"]

log = logging.getLogger("wharf.events")

EVENT_TYPES = frozenset({
    "package.created", "package.deleted", "package.promoted", "package.copied", "package.moved",
    "package.quarantined", "package.released", "package.tags_updated", "scan.completed", "policy.denied", "ping",
})

Subscriber = Callable[["Core", "Event"], None]
Queuer = Callable[[Session, "Event"], None]
_INSERT = insert(EventRow.__table__).returning(EventRow.__table__.c.id)  # built once: emit is on the upload path


@dataclass(frozen=True)
class Event:
    type: str
    repository: str | None
    package: str | None = None
    version: str | None = None
    files: tuple[dict[str, Any], ...] = ()  # {"filename", "key", "sha256", "size"}
    actor: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    format: str | None = None
    id: int | None = None
    at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "at": self.at.isoformat() if self.at else None,
                "repository": self.repository, "format": self.format, "package": self.package,
                "version": self.version, "files": list(self.files), "actor": self.actor, "detail": self.detail}


def file_entries(files: Iterable["LiveFile"]) -> tuple[dict[str, Any], ...]:
    return tuple({"filename": f.filename, "key": f.key, "sha256": f.sha256, "size": f.size} for f in files)


def _interested(subscribers: dict[str, tuple[Any, frozenset[str] | None, Callable[[Event], bool] | None]],
                event: Event) -> list[str]:
    return [name for name, (_fn, types, when) in subscribers.items()
            if (types is None or event.type in types) and (when is None or when(event))]


def _from_row(row: EventRow) -> Event:
    return Event(row.type, row.repository, row.package, row.version, tuple(row.files or ()), row.actor,
                 dict(row.detail or {}), row.format, row.id, row.at)


class EventBus:
    def __init__(self, sessions: sessionmaker[Session], tasks: "TaskQueue"):
        self._sessions = sessions
        self._tasks = tasks
        self._subscribers: dict[str, tuple[Subscriber, frozenset[str] | None, Callable[[Event], bool] | None]] = {}
        self._queuers: dict[str, tuple[Queuer, frozenset[str] | None, Callable[[Event], bool] | None]] = {}
        self._prepare: dict[str, tuple[Callable[[], object], frozenset[str] | None]] = {}

    def subscribe(self, name: str, fn: Subscriber, types: Collection[str] | None = None, *,
                  when: Callable[[Event], bool] | None = None, prepare: Callable[[], object] | None = None) -> None:
        """Call ``fn(core, event)`` in background work for every event (of ``types``) emitted from now on; ``when``
        (checked at emit time) skips queueing work that would do nothing (e.g. no webhook subscribed). ``prepare``
        is called before ``when`` by an ``emit`` that opens its own transaction, where it may read the database:
        it brings up to date what ``when`` consults (``when`` itself may be called inside a caller's transaction,
        where it must not query, and then answers from what it knows)."""
        self._subscribers[name] = (fn, self._types(types), when)
        if prepare is not None:
            self._prepare[name] = (prepare, self._subscribers[name][1])
        self._tasks.register(f"event:{name}", lambda core, payload: self._deliver(core, name, payload))

    def on_store(self, name: str, fn: Queuer, types: Collection[str] | None = None, *,
                 when: Callable[[Event], bool] | None = None) -> None:
        """Call ``fn(session, event)`` inside the transaction that stores every event (of ``types``) emitted from
        now on, for work that is only queueing a task: ``fn`` writes through ``session`` alone, and quickly."""
        self._queuers[name] = (fn, self._types(types), when)

    @staticmethod
    def _types(types: Collection[str] | None) -> frozenset[str] | None:
        unknown = set(types or ()) - EVENT_TYPES
        if unknown:
            raise ValueError(f"unknown event types {sorted(unknown)}")
        return frozenset(types) if types is not None else None

    def _deliver(self, core: "Core", name: str, payload: dict[str, Any]) -> None:
        sub = self._subscribers.get(name)
        event = self.get(int(payload["event"]))
        if sub is not None and event is not None:
            sub[0](core, event)

    def emit(self, event: Event, *, session: Session | None = None) -> int:
        """Store the event and queue it for each interested subscriber (with ``session``: in the caller's
        transaction). Returns its id."""
        if event.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event.type!r}")
        # subscribers are chosen before the write transaction opens: a ``when`` may read the database, and on SQLite
        # a second connection of this thread would wait on our own write lock (with ``session`` the caller's
        # transaction is already open: ``when`` functions must then not query)
        if session is None:
            for name, (prepare, types) in self._prepare.items():
                if types is None or event.type in types:
                    try:
                        prepare()
                    except Exception:  # noqa: BLE001 - ``when`` then answers from what it knew: at worst, queued work
                        log.exception("preparing subscriber %s failed", name)
        names, queuers = _interested(self._subscribers, event), _interested(self._queuers, event)
        if session is None:
            with self._sessions.begin() as s:
                event_id = self._store(s, event, names, queuers)
            if names or queuers:  # (work may have been queued: the worker looks)
                self._tasks.wakeup.set()
            return event_id
        return self._store(session, event, names, queuers)

    def _store(self, s: Session, event: Event, names: list[str], queuers: list[str]) -> int:
        event_id = int(s.execute(_INSERT, {
            "type": event.type, "repository": event.repository, "format": event.format, "package": event.package,
            "version": event.version, "actor": event.actor, "files": list(event.files), "detail": event.detail,
            "at": event.at or utcnow()}).scalar_one())
        for name in names:
            self._tasks.enqueue(f"event:{name}", {"event": event_id}, session=s)
        for name in queuers:
            self._queuers[name][0](s, event)
        return event_id

    def get(self, event_id: int) -> Event | None:
        with self._sessions() as s:
            row = s.get(EventRow, event_id)
            return _from_row(row) if row is not None else None

    def list(self, *, repository: str | None = None, package: str | None = None, types: Collection[str] | None = None,
             after: int | None = None, limit: int = 100) -> list[Event]:
        q = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
        if repository is not None:
            q = q.where(EventRow.repository == repository)
        if package is not None:
            q = q.where(EventRow.package == package)
        if types:
            q = q.where(EventRow.type.in_(list(types)))
        if after is not None:
            q = q.where(EventRow.id > after)
        with self._sessions() as s:
            return [_from_row(r) for r in s.scalars(q)]
