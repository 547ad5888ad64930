"""Scans run in the task helper process, not in the server's request process: a real server takes a twine upload,
its worker thread leaves the scan to a niced helper it starts, the helper records the results and exits once idle.
With the helper off (``WHARF_TASK_HELPER=0``) the worker thread scans as before."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.support.artifacts import make_wheel
from tests.support.clients import twine_upload
from tests.support.server import WharfServer

from .test_vetting_e2e import wait_scanned


def _helpers(pgid: int) -> list[int]:
    """The task helper processes of the server's process group."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            if b"wharf.tasks.helper" in cmd and os.getpgid(int(entry)) == pgid:
                out.append(int(entry))
        except (OSError, ProcessLookupError):
            pass
    return out


def _helper_exits(server: WharfServer) -> list[int]:
    return [int(n) for n in re.findall(r'"msg":\s*"task helper exits".*?"tasks":\s*(\d+)', server.log())]


def _wait(cond, timeout: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("helper", [True, False], ids=["helper", "in-process"])
def test_scans_run_in_a_helper_that_exits_when_idle(tmp_path, helper):
    env = {"WHARF_TASK_HELPER_IDLE": "2"} if helper else {"WHARF_TASK_HELPER": "0"}
    with WharfServer(tmp_path / "data", env=env) as server:
        server.create_repo("dev")
        wheel = make_wheel(tmp_path, "helper-demo", "1.0")
        assert twine_upload(tmp_path, f"{server.url}/dev/legacy/", [wheel], token=server.token).ok
        doc = wait_scanned(server, "dev", "helper-demo")
        assert doc["versions"][0]["scanned"]
        assert server.proc is not None
        pgid = server.proc.pid  # (the server leads its own process group)
        if not helper:
            time.sleep(3)  # as long as a helper would have needed to show itself and exit
            assert _helper_exits(server) == [] and _helpers(pgid) == []
            return
        # the helper scanned it, then ended on its own after 2 s with nothing due
        assert sum(_wait(lambda: _helper_exits(server), 30, "the helper to exit")) >= 1
        _wait(lambda: _helpers(pgid) == [], 10, "the helper process to end")  # (it logs, then closes up)
        # new work starts a new helper
        wheel2 = make_wheel(tmp_path, "helper-demo", "2.0")
        assert twine_upload(tmp_path, f"{server.url}/dev/legacy/", [wheel2], token=server.token).ok
        doc = wait_scanned(server, "dev", "helper-demo")
        assert doc["versions"][0]["version"] == "2.0"
        _wait(lambda: len(_helper_exits(server)) >= 2, 30, "the second helper to exit")
