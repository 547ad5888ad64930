"""The spine of the promotion and vetting work: durable background tasks, the event stream, the ingest pipeline
(gates, follow-ups, package.created) and scans."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from wharf.config import Settings
from wharf.core.content import NewArtifact
from wharf.core.errors import PolicyDenied
from wharf.core.events import Event
from wharf.core.ingest import Decision
from wharf.core.services import Core
from wharf.db.models import Task, utcnow


@pytest.fixture
def core(tmp_path):
    c = Core(Settings(data=tmp_path / "data"), migrate=True)
    yield c
    c.close()


def _make_due(core):
    """Bring every retry's backoff to now (instead of sleeping through it)."""
    with core.sessions.begin() as s:
        s.execute(update(Task).where(Task.state == "queued").values(run_at=utcnow() - timedelta(seconds=1)))


def test_task_retries_with_backoff_then_fails_for_good(core):
    calls = []

    def flaky(_core, payload):
        calls.append(payload["n"])
        raise RuntimeError("receiver down")

    core.tasks.register("flaky", flaky)
    core.tasks.enqueue("flaky", {"n": 1}, max_attempts=3, backoff=60.0)
    assert core.tasks.run_pending(core) == 1
    # the retry is not due yet: backoff 60 s
    assert core.tasks.run_pending(core) == 0
    [task] = core.tasks.list()
    assert task["state"] == "queued" and task["attempts"] == 1 and "receiver down" in task["last_error"]
    _make_due(core)
    assert core.tasks.run_pending(core) == 1
    _make_due(core)
    assert core.tasks.run_pending(core) == 1
    assert calls == [1, 1, 1]
    [task] = core.tasks.list()
    assert task["state"] == "failed" and task["attempts"] == 3
    assert core.tasks.pending() == 0


def test_task_summary_counts_the_whole_queue(core):
    core.tasks.register("work", lambda _c, p: None)
    for i in range(1005):  # more than a task list page holds
        core.tasks.enqueue("work", {"x": i})
    core.tasks.enqueue("later", {}, delay=3600)
    core.tasks.enqueue("nobody-handles-this", {}, max_attempts=1)
    assert core.tasks.run_pending(core, limit=3) == 3  # the first three by run_at: all "work"
    summary = core.tasks.summary()
    assert (summary["queued"], summary["running"], summary["failed"], summary["due"]) == (1004, 0, 0, 1003)
    assert summary["kinds"] == {"work": {"queued": 1002}, "later": {"queued": 1},
                                "nobody-handles-this": {"queued": 1}}
    core.tasks.run_pending(core)
    summary = core.tasks.summary()
    assert (summary["queued"], summary["failed"], summary["due"]) == (1, 1, 0)
    assert summary["kinds"]["nobody-handles-this"] == {"failed": 1}


def test_task_success_is_removed_and_dedupe_key_collapses(core):
    seen = []
    core.tasks.register("work", lambda _c, p: seen.append(p["x"]))
    assert core.tasks.enqueue("work", {"x": 1}, dedupe_key="k") is not None
    assert core.tasks.enqueue("work", {"x": 2}, dedupe_key="k") is None  # the first is still queued
    assert core.tasks.drain(core, timeout=10)
    assert seen == [1] and core.tasks.list() == []
    assert core.tasks.enqueue("work", {"x": 3}, dedupe_key="k") is not None  # done: the key is free again


def test_expired_lease_is_claimed_again(core):
    seen = []
    core.tasks.register("work", lambda _c, p: seen.append(p))
    core.tasks.enqueue("work", {"x": 1})
    with core.sessions.begin() as s:  # a worker claimed it, then its process died
        s.execute(update(Task).values(state="running", lease_until=utcnow() - timedelta(seconds=1)))
    assert core.tasks.run_pending(core) == 1 and seen == [{"x": 1}]


def test_unknown_task_kind_is_kept_failed_not_lost(core):
    core.tasks.enqueue("nobody-handles-this", {}, max_attempts=1)
    core.tasks.run_pending(core)
    [task] = core.tasks.list(state="failed")
    assert "no handler" in task["last_error"]


def test_events_reach_each_subscriber_and_a_failing_one_is_retried_alone(core):
    got, failures = [], []

    def good(_core, event):
        got.append((event.type, event.package))

    def bad(_core, event):
        failures.append(event.id)
        raise RuntimeError("boom")

    core.events.subscribe("good", good, types={"package.created"})
    core.events.subscribe("bad", bad)
    core.events.subscribe("other", lambda c, e: got.append(("other", e.type)), types={"ping"})
    event_id = core.events.emit(Event("package.created", "r", "pkg", "1.0", actor="t"))
    core.tasks.run_pending(core)
    assert got == [("package.created", "pkg")]  # "other" only wants pings
    assert failures == [event_id]
    _make_due(core)
    core.tasks.run_pending(core)
    assert got == [("package.created", "pkg")] and failures == [event_id, event_id]  # only the failing one again
    [stored] = core.events.list(repository="r")
    assert stored.id == event_id and stored.at is not None
    with pytest.raises(ValueError):
        core.events.emit(Event("package.exploded", "r"))


def test_a_queuing_subscriber_queues_in_the_event_transaction(core):
    """``on_store``: the subscriber's task commits (or not) with the event itself; no delivery task is queued."""
    core.tasks.register("follow-up", lambda c, payload: None)
    core.events.on_store("queue", lambda s, e: core.tasks.enqueue("follow-up", {"package": e.package}, session=s),
                         types={"package.created"}, when=lambda e: e.package != "skipped")
    core.events.emit(Event("package.created", "r", "pkg", "1.0"))
    core.events.emit(Event("package.created", "r", "skipped", "1.0"))
    core.events.emit(Event("package.deleted", "r", "pkg", "1.0"))
    def queued():
        return [(t["kind"], t["payload"]) for t in core.tasks.list() if t["kind"] != "scan"]  # (vetting's own)

    assert queued() == [("follow-up", {"package": "pkg"})]
    with pytest.raises(RuntimeError):
        with core.sessions.begin() as s:
            core.events.emit(Event("package.created", "r", "rolled-back", "1.0"), session=s)
            raise RuntimeError("the write that caused the event fails")
    assert len(queued()) == 1 and [e.package for e in core.events.list(repository="r")] == ["pkg", "skipped",
                                                                                                     "pkg"]
    with pytest.raises(ValueError):
        core.events.on_store("bad", lambda s, e: None, types={"package.exploded"})


def _new(core, name="pkg", version="1.0", data=b"wheel bytes"):
    return NewArtifact("python", name, version, f"{name}-{version}-py3-none-any.whl", core.blobs.put_bytes(data))


def test_ingest_runs_gates_then_records_then_emits(core):
    repo = core.create_repository(name="dev", format="python", actor="t")
    seen_actions, followed_up = [], []

    def gate(_core, _repo, new, action, actor):
        seen_actions.append((new.name, action, actor))
        if new.name == "evil":
            raise PolicyDenied("policy no-evil denies 'evil'")
        return [Decision("tagger", "tag", tags=("reviewed",))]

    core.gates.append(gate)
    core.after_ingest.append(lambda c, r, result, decisions, action: followed_up.append(
        (result.file.name, [d.tags for d in decisions], action)))
    result = core.ingest(repo, _new(core), actor="alice")
    assert result.created and [d.result for d in result.decisions] == ["tag"]
    with pytest.raises(PolicyDenied):
        core.ingest(repo, _new(core, "evil", data=b"other"), actor="alice", action="proxy_fetch")
    assert [f.name for f in core.content.files(repo.id)] == ["pkg"]  # nothing of the refused one
    again = core.ingest(repo, _new(core), actor="alice")  # the identical file: a no-op, no second event
    assert not again.created
    assert seen_actions == [("pkg", "upload", "alice"), ("evil", "proxy_fetch", "alice"), ("pkg", "upload", "alice")]
    assert followed_up == [("pkg", [("reviewed",)], "upload")]
    [event] = core.events.list(repository="dev", types=["package.created"])
    assert event.package == "pkg" and event.files[0]["sha256"] == result.file.sha256
    assert event.detail["decisions"][0]["tags"] == ["reviewed"]


def test_deleting_files_emits_package_deleted(core):
    repo = core.create_repository(name="dev", format="python", actor="t")
    core.ingest(repo, _new(core), actor="t")
    core.remove_files(repo, name="pkg", actor="admin")
    [event] = core.events.list(repository="dev", types=["package.deleted"])
    assert (event.package, event.version, event.actor) == ("pkg", "1.0", "admin")


def test_scans_run_on_created_store_results_and_emit_only_on_change(core):
    repo = core.create_repository(name="dev", format="python", actor="t")
    verdict = {"status": "pass"}

    def sizes(_core, target):
        total = 0
        for f in target.files:
            with target.open(f) as fh:
                total += len(fh.read())
        return {"status": verdict["status"], "summary": {"bytes": total}, "findings": []}

    core.scans.register("sizes", sizes)
    core.scans.register("broken", lambda c, t: 1 / 0)
    core.ingest(repo, _new(core), actor="t")
    core.ingest(repo, NewArtifact("python", "pkg", "1.0", "pkg-1.0.tar.gz", core.blobs.put_bytes(b"sdist!")), actor="t")
    assert core.tasks.drain(core, timeout=10)
    results = core.scans.results(repo.id, "pkg", "1.0")
    assert results["sizes"]["summary"] == {"bytes": len(b"wheel bytes") + len(b"sdist!")}
    assert results["broken"]["status"] == "error" and "ZeroDivisionError" in results["broken"]["findings"][0]["message"]
    completed = core.events.list(repository="dev", types=["scan.completed"])
    assert len(completed) == 1  # one release, two files: one scan (deduplicated) ... or a re-scan with no change
    core.scans.scan(repo, "pkg", "1.0")  # nothing changed: no new event
    assert len(core.events.list(repository="dev", types=["scan.completed"])) == 1
    verdict["status"] = "fail"
    core.scans.scan(repo, "pkg", "1.0")
    events = core.events.list(repository="dev", types=["scan.completed"])
    assert len(events) == 2 and events[0].detail["changed"] == ["sizes"]
    facts = core.scans.facts(repo, "pkg", "1.0")
    assert facts["bytes"] == len(b"wheel bytes") + len(b"sdist!") and facts["scanned"]
    # (vetting's own analyzers run too: only this test's two are compared)
    assert {a: facts["scan_status"][a] for a in ("sizes", "broken")} == {"sizes": "fail", "broken": "error"}


def test_no_background_work_is_queued_when_nothing_would_use_it(tmp_path):
    """Uploads with no analyzer registered (or vetting off) queue no scan work at all."""
    for settings, analyzers in ((Settings(data=tmp_path / "a"), False), (Settings(data=tmp_path / "b", vetting=False), True)):
        c = Core(settings, migrate=True)
        try:
            c.scans._analyzers.clear()  # feature analyzers (vulnerabilities, vetting) register themselves at start
            if analyzers:
                c.scans.register("noop", lambda core, target: {"status": "pass"})
            repo = c.create_repository(name="dev", format="python", actor="t")
            c.ingest(repo, _new(c), actor="t")
            assert c.tasks.pending() == 0 and len(c.events.list(repository="dev")) == 1
        finally:
            c.close()


def test_helper_lane_tasks_are_left_to_the_helper(core):
    from wharf.tasks import HELPER, IN_PROCESS

    seen = []
    core.tasks.register("heavy", lambda _c, p: seen.append(("heavy", p["x"])), helper=True)
    core.tasks.register("light", lambda _c, p: seen.append(("light", p["x"])))
    core.tasks.enqueue("heavy", {"x": 1})
    core.tasks.enqueue("light", {"x": 2})
    assert [t["lane"] for t in core.tasks.list()] == ["any", "helper"]
    assert core.tasks.due(HELPER) and core.tasks.due(IN_PROCESS)
    # a server's worker thread runs its own lane only
    assert core.tasks.run_one(core, IN_PROCESS) and seen == [("light", 2)]
    assert not core.tasks.run_one(core, IN_PROCESS) and not core.tasks.due(IN_PROCESS)
    assert core.tasks.due(HELPER)
    # the helper (or `wharf worker`, any lane) runs the rest
    assert core.tasks.run_one(core, HELPER) and seen == [("light", 2), ("heavy", 1)]
    assert not core.tasks.due(HELPER) and not core.tasks.due()


def test_a_helper_task_whose_lease_ran_out_is_due_again_in_its_lane(core):
    from wharf.tasks import HELPER, IN_PROCESS

    core.tasks.register("heavy", lambda _c, p: None, helper=True)
    core.tasks.enqueue("heavy", {})
    with core.sessions.begin() as s:  # the helper claimed it, then was killed
        s.execute(update(Task).values(state="running", lease_until=utcnow() - timedelta(seconds=1)))
    assert not core.tasks.due(IN_PROCESS) and core.tasks.due(HELPER)
    assert core.tasks.run_one(core, HELPER) and core.tasks.list() == []
