"""Scheduled re-import from a configured URL, through the tasks: conditional download (ETag), the next run queued
after the interval, failures kept in the source's state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.support.fake_upstream import Behaviour, FakeUpstream, Fault
from tests.support.osv_records import record, write_zip
from wharf.config import Settings
from wharf.core.services import Core
from wharf.db.models import Task, utcnow


@pytest.fixture
def upstream():
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def core(tmp_path, upstream):
    c = Core(Settings(data=tmp_path / "data", advisories_url=f"{upstream.url}/osv/all.zip", advisories_interval=3600),
             migrate=True)
    yield c
    c.close()


def _zip(tmp_path, docs) -> bytes:
    return write_zip(tmp_path / "all.zip", docs).read_bytes()


def _queued(core):
    return [t for t in core.tasks.list() if t["kind"] == "advisories.import" and t["state"] == "queued"]


def test_scheduled_import_is_conditional_and_queues_the_next_run(core, upstream, tmp_path):
    docs = [record("PYSEC-10", "PyPI", "demo", versions=["1.0"])]
    upstream.set("/osv/all.zip", Behaviour(body=_zip(tmp_path, docs), etag='"v1"'))
    assert core.advisories.schedule() is not None
    assert core.advisories.schedule() is None  # one queued import at a time
    assert core.tasks.run_pending(core) == 1
    assert [m.record.id for m in core.advisories.match("PyPI", "demo", "1.0")] == ["PYSEC-10"]
    [nxt] = _queued(core)  # the next run, an interval later
    assert core.tasks.run_pending(core) == 0

    with core.sessions.begin() as s:  # time passes
        s.execute(update(Task).where(Task.state == "queued").values(run_at=utcnow() - timedelta(seconds=1)))
    assert core.tasks.run_pending(core) == 1
    assert upstream.requests("/osv/all.zip")[-1]["if-none-match"] == '"v1"'  # answered 304: nothing imported
    [source] = core.advisories.stats()["sources"]
    assert source["ok"] and source["message"] == "not modified"
    assert len(_queued(core)) == 1


def test_failed_scheduled_import_is_recorded_and_retried_next_interval(core, upstream):
    upstream.set("/osv/all.zip", Fault.status(503))
    core.advisories.schedule()
    assert core.tasks.run_pending(core) == 1
    [source] = core.advisories.stats()["sources"]
    assert not source["ok"] and "503" in source["message"]
    assert len(_queued(core)) == 1  # not lost
