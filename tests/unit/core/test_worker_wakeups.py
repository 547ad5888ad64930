"""The worker thread is woken by this process's own queueing; it skips the query for due work when all it was
woken for is helper-lane work (an upload's scan) and the helper runs, but never for longer than its poll interval."""

from __future__ import annotations

from wharf.config import Settings
from wharf.core.services import Core
from wharf.tasks import HELPER, IN_PROCESS, Worker
from wharf.tasks.helper import HelperProcess, _lock_path, _try_lock


def _core(tmp_path) -> Core:
    core = Core(Settings(data=tmp_path / "data"), migrate=True)
    core.tasks.register("t:light", lambda _c, _p: None)
    core.tasks.register("t:heavy", lambda _c, _p: None, helper=True)
    return core


def test_queueing_notes_the_lanes_for_the_worker(tmp_path):
    core = _core(tmp_path)
    try:
        core.tasks.woken_lanes()  # (whatever start-up queued)
        core.tasks.enqueue("t:heavy", {})
        assert core.tasks.woken_lanes() == {HELPER}
        assert core.tasks.woken_lanes() == set()  # taken
        with core.sessions.begin() as s:  # in a caller's transaction too
            core.tasks.enqueue("t:light", {}, session=s)
            core.tasks.enqueue("t:heavy", {}, session=s)
        assert core.tasks.woken_lanes() == {IN_PROCESS, HELPER}
        core.tasks.enqueue("t:heavy", {}, dedupe_key="k")
        core.tasks.woken_lanes()
        assert core.tasks.enqueue("t:heavy", {}, dedupe_key="k") is None  # nothing added: nothing to look at
        assert core.tasks.woken_lanes() == set()
    finally:
        core.close()


def test_helper_lane_work_is_left_alone_only_while_a_helper_runs(tmp_path):
    settings = Settings(data=tmp_path / "data")
    core = _core(tmp_path)
    try:
        worker = Worker(core, poll=1.0, helper=HelperProcess(settings))
        # no helper runs: the worker must look (and would start one)
        assert worker.worth_a_look(True, {HELPER}, 0.0)
        held = _try_lock(_lock_path(settings))  # a helper (another server process's) holds the data dir's lock
        assert held is not None
        try:
            assert not worker.worth_a_look(True, {HELPER}, 0.0)
            assert worker.worth_a_look(True, {HELPER, IN_PROCESS}, 0.0)  # in-process work came with it
            assert worker.worth_a_look(True, set(), 0.0)  # woken for something unknown
            assert worker.worth_a_look(False, set(), 1.0)  # the poll interval passed
            assert worker.worth_a_look(True, {HELPER}, 1.0)  # however busy uploads keep it
        finally:
            held.close()
        assert worker.worth_a_look(True, {HELPER}, 0.0)
        # without a helper (WHARF_TASK_HELPER=0) the worker runs helper-lane work itself
        assert Worker(core, poll=1.0).worth_a_look(True, {HELPER}, 0.0)
    finally:
        core.close()


def test_an_event_nobody_subscribes_to_does_not_wake_the_worker(tmp_path):
    from wharf.core.events import Event

    core = _core(tmp_path)
    try:
        core.tasks.wakeup.clear()
        core.events.emit(Event("ping", "dev"))  # no webhook: no subscriber wants it
        assert not core.tasks.wakeup.is_set()
        core.tasks.woken_lanes()
        core.events.subscribe("probe", lambda _c, _e: None, types=["ping"])
        core.events.emit(Event("ping", "dev"))
        assert core.tasks.wakeup.is_set() and core.tasks.woken_lanes() == {IN_PROCESS}
    finally:
        core.close()
