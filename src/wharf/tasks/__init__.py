"""Durable background work kept in the database (the ``tasks`` table).

Every server process runs a worker thread (``Worker``) that claims due tasks one at a time; ``wharf worker`` runs
the same loop on its own for deployments that keep request processes free of background work. Kinds registered with
``helper=True`` (CPU-heavy: vetting scans, advisory imports) go in the helper lane: a server's worker thread leaves
them to its task helper, a niced process started while such work is due (``tasks/helper.py``), so a backlog of
scans never holds the request process's interpreter. A claim is a lease:
a task whose process died is claimed again once its lease ends. A raising task is retried after
``backoff * 2**(attempt-1)`` seconds until ``max_attempts``, then kept as ``failed`` with its error (a finished task
is deleted: the event stream and the feature's own logs, e.g. webhook deliveries, are the record).

The database is the queue on purpose: SQLite needs nothing else on one machine, and PostgreSQL's
``FOR UPDATE SKIP LOCKED`` lets several nodes share it.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import Task, utcnow

if TYPE_CHECKING:  # pragma: no cover
    from ..core.services import Core
    from .helper import HelperProcess

__all__ = ["TaskQueue", "Worker", "TaskFn", "ANY_LANE", "IN_PROCESS", "HELPER"]

log = logging.getLogger("wharf.tasks")

TaskFn = Callable[["Core", dict[str, Any]], None]
LEASE = timedelta(minutes=5)
IN_PROCESS, HELPER = 0, 1  # lanes
ANY_LANE = None


class TaskQueue:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions
        self._handlers: dict[str, TaskFn] = {}
        self._lanes: dict[str, int] = {}
        self.wakeup = threading.Event()  # set on enqueue: this process's worker looks at once
        self._woken: set[int] = set()  # the lanes of the tasks this process queued since its worker last looked

    def register(self, kind: str, fn: TaskFn, *, helper: bool = False) -> None:
        """``helper``: CPU-heavy work, run by a server's task helper process rather than its request process."""
        self._handlers[kind] = fn
        self._lanes[kind] = HELPER if helper else IN_PROCESS

    def enqueue(self, kind: str, payload: dict[str, Any], *, delay: float = 0.0, max_attempts: int = 5,
                backoff: float = 2.0, dedupe_key: str | None = None, session: Session | None = None) -> int | None:
        """Queue work; with ``dedupe_key``, nothing is added while a queued task has the same key (returns None).
        With ``session``, the task commits with the caller's transaction."""
        row = Task(kind=kind, payload=payload, state="queued", attempts=0, max_attempts=max_attempts, backoff=backoff,
                   run_at=utcnow() + timedelta(seconds=delay), dedupe_key=dedupe_key, created_at=utcnow(),
                   lane=self._lanes.get(kind, IN_PROCESS))
        if session is not None:
            return self._add(session, row)
        with self._sessions.begin() as s:
            task_id = self._add(s, row)
        self.wakeup.set()
        return task_id

    def _add(self, s: Session, row: Task) -> int | None:
        # the state is compared here, not in the query: asked for both, SQLite's planner (without statistics) takes
        # the (state, run_at) index and reads every queued task; by key alone it reads the few tasks with this key
        if row.dedupe_key is not None and "queued" in s.scalars(select(Task.state).where(
                Task.dedupe_key == row.dedupe_key)).all():
            return None
        s.add(row)
        s.flush()
        self._woken.add(row.lane)
        return row.id

    def woken_lanes(self) -> set[int]:
        """The lanes of the tasks queued by this process since the last call (whoever sets ``wakeup`` after queueing
        in a caller's transaction adds nothing here: the lanes were noted when the tasks were added). A hint: empty
        when unknown, and a task may have been rolled back since."""
        lanes, self._woken = self._woken, set()
        return lanes

    # -- running --------------------------------------------------------------------------------------------
    @staticmethod
    def _due(now: Any, lane: int | None) -> list[Any]:
        """One query each for queued tasks and running ones whose lease ran out, so each reads the (state, [lane,]
        run_at) index from its first due entry (an OR of the two made the database sort every queued task)."""
        out = []
        for due in (Task.state == "queued", (Task.state == "running") & (Task.lease_until < now)):
            q = select(Task).where(due, Task.run_at <= now)
            out.append(q if lane is None else q.where(Task.lane == lane))
        return out

    def _claim(self, lane: int | None = ANY_LANE) -> Task | None:
        """The due task that comes first (by run_at, id) in ``lane`` (or any): queued, or running on a lease that
        ran out. A read first: an idle poll (or a wakeup with nothing for this lane) takes no write lock."""
        if not self.due(lane):
            return None
        now = utcnow()
        with self._sessions.begin() as s:
            found = []
            for q in self._due(now, lane):
                q = q.order_by(Task.run_at, Task.id).limit(1)
                if s.get_bind().dialect.name == "postgresql":
                    q = q.with_for_update(skip_locked=True)
                found.extend(s.scalars(q))
            if not found:
                return None
            task = min(found, key=lambda t: (t.run_at, t.id))
            task.state, task.lease_until, task.attempts = "running", now + LEASE, task.attempts + 1
            s.flush()
            s.expunge(task)
            return task

    def due(self, lane: int | None = ANY_LANE) -> bool:
        """Whether a task in ``lane`` (or any) is due now (nothing is claimed)."""
        now = utcnow()
        with self._sessions() as s:
            return any(s.execute(q.with_only_columns(Task.id).limit(1)).first() is not None
                       for q in self._due(now, lane))

    def run_one(self, core: "Core", lane: int | None = ANY_LANE) -> bool:
        """Claim and run one due task (of ``lane``, or any); False if none was due."""
        task = self._claim(lane)
        if task is None:
            return False
        fn = self._handlers.get(task.kind)
        core.refresh()  # settings another process changed (e.g. a repository created since this one last looked)
        try:
            if fn is None:
                raise LookupError(f"no handler for task kind {task.kind!r} in this process")
            fn(core, task.payload)
        except Exception as exc:  # noqa: BLE001 - any failure is retried, then kept with its message
            self._failed(task, exc)
        else:
            with self._sessions.begin() as s:
                s.execute(delete(Task).where(Task.id == task.id))
        return True

    def _failed(self, task: Task, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        final = task.attempts >= task.max_attempts
        values: dict[str, Any] = {"last_error": error, "lease_until": None}
        if final:
            values["state"] = "failed"
            log.warning("task %s (%s) failed for good after %d attempts: %s", task.id, task.kind, task.attempts, error)
        else:
            values["state"] = "queued"
            values["run_at"] = utcnow() + timedelta(seconds=task.backoff * 2 ** (task.attempts - 1))
        with self._sessions.begin() as s:
            s.execute(update(Task).where(Task.id == task.id).values(**values))

    def run_pending(self, core: "Core", limit: int | None = None) -> int:
        """Run due tasks in this thread until none is due (or ``limit``); returns how many ran."""
        done = 0
        while (limit is None or done < limit) and self.run_one(core):
            done += 1
        return done

    def pending(self, kind: str | None = None) -> int:
        """Queued or running tasks (failed ones excluded)."""
        q = select(func.count(Task.id)).where(Task.state.in_(("queued", "running")))
        if kind is not None:
            q = q.where(Task.kind == kind)
        with self._sessions() as s:
            return int(s.scalar(q) or 0)

    def summary(self) -> dict[str, Any]:
        """Counts of the whole queue: per state, how many queued tasks are due now, per kind and state."""
        now = utcnow()
        with self._sessions() as s:
            rows = s.execute(select(Task.kind, Task.state, func.count(Task.id)).group_by(Task.kind, Task.state)).all()
            due = int(s.scalar(select(func.count(Task.id)).where(Task.state == "queued", Task.run_at <= now)) or 0)
        states: dict[str, int] = {"queued": 0, "running": 0, "failed": 0}
        kinds: dict[str, dict[str, int]] = {}
        for kind, state, n in rows:
            states[state] = states.get(state, 0) + n
            kinds.setdefault(kind, {})[state] = n
        return {**states, "due": due, "kinds": kinds}

    def drain(self, core: "Core", timeout: float = 30.0) -> bool:
        """Run due work here until nothing is queued or running (other workers may help); False on timeout.
        Retries that are not yet due count as pending: a caller waiting for them waits for their backoff."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run_one(core):
                if self.pending() == 0:
                    return True
                time.sleep(0.05)
        return False

    def list(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        q = select(Task).order_by(Task.id.desc()).limit(limit)
        if state is not None:
            q = q.where(Task.state == state)
        with self._sessions() as s:
            return [{"id": t.id, "kind": t.kind, "state": t.state, "attempts": t.attempts,
                     "max_attempts": t.max_attempts, "run_at": t.run_at.isoformat() if t.run_at else None,
                     "last_error": t.last_error, "payload": t.payload,
                     "lane": "helper" if t.lane == HELPER else "any"} for t in s.scalars(q)]


class Worker:
    """A daemon thread that runs due tasks; it sleeps ``poll`` seconds when idle (or until this process queues work).
    With a ``helper`` (a server's), it runs the in-process lane only and starts the helper whenever helper-lane work
    is due and it is not running."""

    def __init__(self, core: "Core", *, poll: float = 1.0, helper: "HelperProcess | None" = None):
        self._core = core
        self._poll = poll
        self._helper = helper
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="wharf-worker", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        queue, helper = self._core.tasks, self._helper
        look, looked = True, 0.0
        while not self._stop.is_set():
            ran = False
            if look:
                looked = time.monotonic()
                try:
                    ran = queue.run_one(self._core, IN_PROCESS if helper is not None else ANY_LANE)
                    if not ran and helper is not None and not helper.running() and queue.due(HELPER):
                        helper.start()
                except Exception:  # noqa: BLE001 - e.g. the database is briefly unavailable: try again later
                    log.exception("background worker error")
                    ran = False
            if not ran:
                woke = queue.wakeup.wait(self._poll)
                queue.wakeup.clear()
                look = self.worth_a_look(woke, queue.woken_lanes(), time.monotonic() - looked)

    def worth_a_look(self, woke: bool, lanes: set[int], since: float) -> bool:
        """Whether to query for due work now (``since``: seconds since the last look): not when woken only for
        helper-lane work (the scan an upload queues) while the helper runs, which is the helper's to claim (two
        queries per upload spared); always once the poll interval has passed, which finds the work other processes
        queued (the helper's scan.completed subscribers) and delayed retries, however busy uploads keep it."""
        if since >= self._poll:
            return True
        helper = self._helper
        return not (woke and lanes == {HELPER} and helper is not None and helper.running())

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._core.tasks.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._helper is not None:
            self._helper.stop(timeout)
