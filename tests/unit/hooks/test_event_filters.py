"""A subscriber's ``when`` may read the database when an event is emitted on its own (SQLite: no second connection
of the same thread waits on the emitter's write lock), and an allowlisted repository is not mistaken for a view."""

from __future__ import annotations

from sqlalchemy import text

from wharf.config import Settings
from wharf.core.events import Event
from wharf.core.services import Core


def test_when_may_query_outside_a_callers_transaction(tmp_path):
    core = Core(Settings(data=tmp_path / "data"), migrate=True)
    try:
        seen = []

        def when(_event: Event) -> bool:
            with core.sessions() as s:  # a read in its own transaction (BEGIN IMMEDIATE on SQLite)
                seen.append(s.execute(text("SELECT 1")).scalar())
            return True

        core.events.subscribe("probe", lambda _c, _e: None, types=["scan.completed"], when=when)
        core.events.emit(Event("scan.completed", "dev", "pkg", "1.0"))  # (was: "database is locked" after 30 s)
        assert seen == [1]
        assert core.tasks.pending("event:probe") == 1
    finally:
        core.close()


def test_allowlisted_repository_is_not_pinned(tmp_path):
    core = Core(Settings(data=tmp_path / "data"), migrate=True)
    try:
        core.create_repository(name="stage", format="python", actor="t", config={"allow_read": ["10.0.0.0/8"]})
        info = core.repos.require("stage")
        assert info.pinned is None and info.access is not None and not info.access.allows("read", "192.0.2.1")
    finally:
        core.close()


def test_a_process_that_never_evaluated_policies_queues_no_policy_work_without_scan_policies(tmp_path):
    """The scan helper emits every scan.completed, and never evaluates policies itself: its policy cache is only
    brought up to date by the event bus before the emit's transaction (``prepare``). Without scan policies no
    event:policy task is queued (each would be claimed, run and deleted by the server for nothing)."""
    core = Core(Settings(data=tmp_path / "data"), migrate=True)
    try:
        core.events.emit(Event("scan.completed", "dev", "pkg", "1.0"))
        assert core.tasks.pending("event:policy") == 0
        core.policy.create({"name": "upload-only", "events": ["upload"], "action": "tag", "tags": ["x"],
                            "expression": "true"}, actor="t")
        core.events.emit(Event("scan.completed", "dev", "pkg", "1.0"))
        assert core.tasks.pending("event:policy") == 0  # a policy, but none on scans
        core.policy.create({"name": "on-scans", "events": ["scan"], "action": "tag", "tags": ["scanned"],
                            "expression": "true"}, actor="t")
        core.events.emit(Event("scan.completed", "dev", "pkg", "1.1"))
        assert core.tasks.pending("event:policy") == 1
    finally:
        core.close()


def test_inside_a_callers_transaction_an_unknown_answer_queues_the_work(tmp_path):
    core = Core(Settings(data=tmp_path / "data"), migrate=True)
    try:
        with core.sessions.begin() as s:  # no query may run here: the policies are not known, so the work is queued
            core.events.emit(Event("scan.completed", "dev", "pkg", "1.0"), session=s)
        assert core.tasks.pending("event:policy") == 1
    finally:
        core.close()


def test_webhook_changes_made_by_another_process_are_seen_before_queueing(tmp_path):
    """Two Cores on one data directory stand for the server and its task helper."""
    settings = Settings(data=tmp_path / "data")
    emitter, other = Core(settings, migrate=True), Core(settings)
    try:
        emitter.events.emit(Event("package.created", "dev", "pkg", "1.0"))
        assert emitter.tasks.pending("event:webhooks") == 0
        hook, _secret = other.webhooks.create(url="http://127.0.0.1:9/hook", actor="t")
        emitter.events.emit(Event("package.created", "dev", "pkg", "1.1"))
        assert emitter.tasks.pending("event:webhooks") == 1
        other.webhooks.delete(hook.id, actor="t")
        emitter.events.emit(Event("package.created", "dev", "pkg", "1.2"))  # (was queued: the change made it unknown)
        assert emitter.tasks.pending("event:webhooks") == 1
    finally:
        other.close()
        emitter.close()
