"""Diff, rollback, retention and GC logic on an in-process Core (SQLite)."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest

from wharf.config import Settings
from wharf.core.check import run_check
from wharf.core.content import NewArtifact
from wharf.core.errors import FileWasDeleted, InvalidInput, NotFound
from wharf.core.services import Core
from wharf.core.snapshots import EMPTY_SHA256, validate_retention
from wharf.db.models import utcnow


@pytest.fixture
def core(tmp_path):
    c = Core(Settings(data=tmp_path / "data"), migrate=True)
    yield c
    c.close()


def _add(core, repo, path: str, data: bytes):
    directory, _, filename = path.rpartition("/")
    blob = core.blobs.put_bytes(data)
    return core.content.add(repo, NewArtifact("generic", directory, "", filename, blob, key=path), actor="t")


def _keys(core, repo, v=None):
    return sorted(f.key for f in core.content.files(repo.id, at_version=v))


def test_pinned_reads_and_diff(core):
    repo = core.create_repository(name="r", format="generic", actor="t")
    _add(core, repo, "d/a", b"a")  # v1
    _add(core, repo, "d/b", b"b")  # v2
    core.remove_files(repo, keys=["d/a"], actor="t")  # v3
    view = core.snapshots.view(core.repos.require("r"), "1")
    assert view.name == "r/~1" and view.pinned == 1 and view.base == "r"
    assert [f.key for f in core.content.files(view)] == ["d/a"]
    assert core.content.names(view) == ["d"]
    d = core.snapshots.diff(repo, 1, 3)
    assert [f["key"] for f in d["added"]] == ["d/b"] and [f["key"] for f in d["removed"]] == ["d/a"]
    assert d["added"][0]["sha256"] == core.content.files(repo.id)[0].sha256
    core.snapshots.create(repo, "one", version=1, actor="t")
    assert core.snapshots.diff(repo, "one", "2")["added"][0]["key"] == "d/b"
    with pytest.raises(NotFound):
        core.snapshots.diff(repo, "nope", 2)
    with pytest.raises(InvalidInput):
        core.snapshots.create(repo, "a..b", actor="t")
    # a rendered view has its own tree; a file can be unpublished from every view (quarantine)
    one = core.snapshots.view(core.repos.require("r"), "one")
    core.snapshots.ensure_published(one)
    assert core.snapshots.rendered_views("r") == ["r/~one"]
    a = core.content.files(one)[0]
    from wharf.core.published import link_file
    assert link_file(core, one.name, a.sha256, "a")  # generic links a file on its first download
    assert core.pages.file_path("r/~one", a.sha256, "a") is not None
    core.snapshots.unlink_from_views("r", a.sha256, "a")
    assert core.pages.file_path("r/~one", a.sha256, "a") is None


def test_rollback_restores_files_and_attributes(core):
    repo = core.create_repository(name="r", format="generic", actor="t")
    _add(core, repo, "d/a", b"a")  # v1
    core.content.set_attributes(repo, "d", {"tag": "one"}, actor="t")  # v2
    _add(core, repo, "d/b", b"b")  # v3
    core.content.set_attributes(repo, "d", {"tag": "two", "extra": 1}, actor="t")  # v4
    core.remove_files(repo, keys=["d/a"], actor="t")  # v5
    out = core.snapshots.rollback(repo, 2, actor="t")
    assert out["version"] == 6 and out["removed"] == 1 and out["added"] == 1
    assert _keys(core, repo) == _keys(core, repo, 2) == ["d/a"]
    assert core.content.attributes(repo.id, "d") == {"tag": "one"}
    assert core.snapshots.diff(repo, 2, 6) == {"repository": "r", "from": 2, "to": 6, "added": [], "removed": [],
                                               "yank_changes": []}
    assert _keys(core, repo, 5) == ["d/b"]  # history is untouched
    with pytest.raises(InvalidInput):
        core.snapshots.rollback(repo, 2, actor="t")  # already equal
    with pytest.raises(InvalidInput):
        core.snapshots.rollback(repo, 6, actor="t")  # the current version
    # the published tree follows: the listing of d has a only
    from wharf.formats.generic.listing import lookup
    assert lookup(core, "r", "d", "a") is not None and lookup(core, "r", "d", "b") is None
    assert [e.action for e in core.audit.query(repository="r", action="repository:version:rollback")]
    # the rollback told subscribers what went and what came back
    from sqlalchemy import select
    from wharf.db.models import Event as EventRow
    with core.sessions() as s:
        rows = [(e.type, e.package, e.detail.get("action")) for e in s.scalars(select(EventRow).order_by(EventRow.id))]
    assert ("package.deleted", "d", "rollback") in rows and ("package.created", "d", "rollback") in rows


def test_retention_keeps_last_days_and_snapshots(core):
    repo = core.create_repository(name="r", format="generic", actor="t",
                                  config={"retention": {"keep_last": 2}})
    for i in range(1, 6):  # v1..v5 add files; v6 removes f1
        _add(core, repo, f"d/f{i}", b"x%d" % i)
    core.remove_files(repo, keys=["d/f1"], actor="t")  # v6
    core.remove_files(repo, keys=["d/f2"], actor="t")  # v7
    core.snapshots.create(repo, "keep-three", version=3, actor="t")
    repo = core.repos.require("r")
    dry = core.snapshots.prune(repo, apply=False)
    assert dry["pruned_versions"] == [0, 1, 2, 4, 5] and not dry["applied"]
    assert _keys(core, repo, 1) == ["d/f1"]  # dry run changed nothing
    out = core.snapshots.prune(repo)
    assert out["pruned_versions"] == [0, 1, 2, 4, 5]
    # kept: 3 (snapshot), 6, 7 (last two); their contents are intact
    assert _keys(core, repo, 3) == ["d/f1", "d/f2", "d/f3"]
    assert _keys(core, repo, 6) == ["d/f2", "d/f3", "d/f4", "d/f5"]
    assert _keys(core, repo) == ["d/f3", "d/f4", "d/f5"]
    with pytest.raises(NotFound, match="pruned"):
        core.snapshots.view(repo, "4")
    assert [v["number"] for v in core.snapshots.versions(repo)] == [7, 6, 3]
    # deleting the snapshot lets the next prune drop version 3 and the rows only it needed (f1)
    core.snapshots.delete(repo, "keep-three", actor="t")
    assert core.snapshots.prune(repo)["pruned_versions"] == [3]
    # f1's row was alive only in pruned versions: it is gone (rows still alive in a kept version stay)
    assert _keys(core, repo, 3) == ["d/f2", "d/f3"]
    assert _keys(core, repo, 6) == ["d/f2", "d/f3", "d/f4", "d/f5"]
    # a pruned, deleted key stays reserved (tombstone): other bytes under that path are refused
    with pytest.raises(FileWasDeleted):
        _add(core, repo, "d/f1", b"other bytes")
    # keep_days: versions younger than D days are kept whatever keep_last says
    repo2 = core.create_repository(name="r2", format="generic", actor="t", config={"retention": {"keep_days": 1}})
    _add(core, repo2, "d/a", b"a")
    _add(core, repo2, "d/b", b"b")
    repo2 = core.repos.require("r2")
    assert core.snapshots.prune(repo2)["pruned_versions"] == []
    later = utcnow() + timedelta(days=2)
    assert core.snapshots.prune(repo2, apply=False, now=later)["pruned_versions"] == [0, 1]


def test_retention_setting_is_validated(core):
    assert validate_retention({"keep_last": 3}) == {"keep_last": 3}
    for bad in ({}, {"keep_last": 0}, {"keep_last": True}, {"keep": 1}, [1]):
        with pytest.raises(InvalidInput):
            validate_retention(bad)
    with pytest.raises(InvalidInput):
        core.create_repository(name="bad", format="generic", actor="t", config={"retention": {"keep_last": -1}})


def test_gc_deletes_only_unreferenced_blobs(core):
    repo = core.create_repository(name="r", format="generic", actor="t", config={"retention": {"keep_last": 1}})
    kept = _add(core, repo, "d/kept", b"kept bytes").file.sha256
    gone = _add(core, repo, "d/gone", b"gone bytes!").file.sha256
    core.remove_files(repo, keys=["d/gone"], actor="t")
    # another repository holds the same bytes as a deleted file: they stay
    other = core.create_repository(name="o", format="generic", actor="t")
    shared = _add(core, repo, "d/shared", b"shared").file.sha256
    _add(core, other, "e/shared", b"shared")
    core.remove_files(repo, keys=["d/shared"], actor="t")
    # before pruning every blob is referenced by some version
    assert core.snapshots.gc(grace=0)["blobs"] == []
    core.snapshots.prune(core.repos.require("r"))
    dry = core.snapshots.gc(grace=0)
    assert dry["blobs"] == [gone] and dry["bytes"] == len(b"gone bytes!") and not dry["applied"]
    assert core.blobs.exists(gone)
    # young blobs (touched within the grace period) are never candidates
    assert core.snapshots.gc(grace=3600)["blobs"] == [] and gone in core.snapshots.gc(grace=3600)["young"]
    out = core.snapshots.gc(apply=True, grace=0)
    assert out["deleted"] == [gone] and out["bytes_freed"] == len(b"gone bytes!")
    assert not core.blobs.exists(gone)
    assert core.blobs.exists(kept) and core.blobs.exists(shared) and core.blobs.exists(EMPTY_SHA256)
    report = run_check(core)
    assert not report["missing_blobs"] and not report["orphan_blobs"], report
    assert core.audit.query(action="system:blobs:gc")


def test_gc_guard_against_a_concurrent_upload_of_the_same_bytes(core):
    repo = core.create_repository(name="r", format="generic", actor="t", config={"retention": {"keep_last": 1}})
    sha = _add(core, repo, "d/x", b"racing bytes").file.sha256
    core.remove_files(repo, keys=["d/x"], actor="t")
    core.snapshots.prune(core.repos.require("r"))
    path = core.blobs.local_path(sha)
    old = time.time() - 7200
    os.utime(path, (old, old))
    assert core.snapshots.gc(grace=600)["blobs"] == [sha]
    # an upload of the same bytes (to another repository) finds them stored: committing touches the file ...
    w = core.blobs.writer()
    w.write(b"racing bytes")
    assert w.commit().sha256 == sha and not w.created
    assert path.stat().st_mtime > old + 3600
    # ... so GC keeps it, and the upload records its rows afterwards
    out = core.snapshots.gc(apply=True, grace=600)
    assert out["deleted"] == [] and core.blobs.exists(sha)
    other = core.create_repository(name="o", format="generic", actor="t")
    _add(core, other, "e/x", b"racing bytes")
    # a file moved aside while a row reappeared is put back (the re-check after the move)
    os.utime(path, (old, old))
    assert core.snapshots._delete_blob_file(sha, 600) is None and core.blobs.exists(sha)
    assert not run_check(core)["missing_blobs"]
    # an upload whose touch comes after GC moved the file aside stores its own copy
    core.remove_files(other, keys=["e/x"], actor="t")
    aside = path.with_name("aside")
    os.replace(path, aside)
    w = core.blobs.writer()
    w.write(b"racing bytes")
    assert w.commit().sha256 == sha and w.created and core.blobs.exists(sha)


def test_scheduled_retention_prunes_and_queues_the_next_run(core):
    from sqlalchemy import select
    from wharf.core.snapshots import RETENTION_TASK
    from wharf.db.models import Task

    repo = core.create_repository(name="r", format="generic", actor="t", config={"retention": {"keep_last": 1}})
    _add(core, repo, "d/a", b"a")
    _add(core, repo, "d/b", b"b")
    core.snapshots.schedule_retention(delay=0)
    core.snapshots.schedule_retention(delay=0)  # at most one queued
    with core.sessions() as s:
        assert len(list(s.scalars(select(Task).where(Task.kind == RETENTION_TASK)))) == 1
    core.tasks.run_pending(core)
    assert [v["number"] for v in core.snapshots.versions(core.repos.require("r"))] == [2]
    with core.sessions() as s:  # the next run is queued, an interval later
        queued = list(s.scalars(select(Task).where(Task.kind == RETENTION_TASK, Task.state == "queued")))
    assert len(queued) == 1


def test_scheduled_retention_runs_every_retention_interval(tmp_path):
    """The setting ``retention_interval`` spaces the runs: each run queues the next that many seconds later, and
    the queued run, once due, prunes what arrived since."""
    from datetime import datetime, timezone

    from tests.support.net import wait_until
    from wharf.core.snapshots import RETENTION_TASK

    def queued_at() -> list[datetime]:
        return [datetime.fromisoformat(t["run_at"]).replace(tzinfo=timezone.utc)  # stored as naive UTC
                for t in core.tasks.list("queued") if t["kind"] == RETENTION_TASK]

    core = Core(Settings(data=tmp_path / "data", retention_interval=0.3), migrate=True)
    try:
        repo = core.create_repository(name="r", format="generic", actor="t", config={"retention": {"keep_last": 1}})
        _add(core, repo, "d/a", b"a")
        _add(core, repo, "d/b", b"b")
        core.snapshots.schedule_retention(delay=0)
        before = utcnow()
        assert core.tasks.run_pending(core) == 1
        assert [v["number"] for v in core.snapshots.versions(repo)] == [2]
        [nxt] = queued_at()  # the next run: retention_interval after this one, not an hour
        assert before + timedelta(seconds=0.3) <= nxt <= utcnow() + timedelta(seconds=0.3)

        _add(core, repo, "d/c", b"c")  # v3: v2 is now outside keep_last
        assert core.tasks.run_pending(core) == 0  # not due yet
        wait_until(lambda: core.tasks.run_pending(core), "the next scheduled retention run", timeout=10)
        assert [v["number"] for v in core.snapshots.versions(repo)] == [3]
        assert len(queued_at()) == 1  # and it queued the one after
    finally:
        core.close()


def test_a_snapshot_of_a_proxy_holds_the_files_being_recorded(core):
    """A proxy records a fetched file just after the client has its bytes: a snapshot of the proxy's present waits
    for that record, so one taken right after an install through the proxy holds what was installed."""
    import threading

    proxy = core.create_repository(name="px", format="python", kind="proxy", actor="t",
                                   config={"upstream": {"url": "http://127.0.0.1:9/simple/"}})
    _add(core, proxy, "first-1.0-py3-none-any.whl", b"one")
    taken: dict = {}
    with core.pending_records.hold("px"):  # as fetch_file holds it from the last bytes sent until recorded
        creator = threading.Thread(target=lambda: taken.update(core.snapshots.create(
            core.repos.require("px"), "after-install", actor="t")))
        creator.start()
        creator.join(0.5)
        assert creator.is_alive(), "the snapshot did not wait for the file being recorded"
        _add(core, proxy, "second-1.0-py3-none-any.whl", b"two")  # the record lands
    creator.join(30)
    assert not creator.is_alive()
    assert _keys(core, proxy, taken["version"]) == ["first-1.0-py3-none-any.whl", "second-1.0-py3-none-any.whl"]
    # nothing pending: a snapshot is taken at once; a hosted repository never waits
    assert core.pending_records.wait_idle("px", 0)
    core.snapshots.create(core.repos.require("px"), "idle", actor="t")
