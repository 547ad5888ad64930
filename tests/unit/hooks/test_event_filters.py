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
