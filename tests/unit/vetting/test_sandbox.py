"""The malware scan's helper process: results as in-process, a hung or dead helper gives a warn result and is
replaced, never an exception in the server."""

from __future__ import annotations

import os

import pytest

from wharf.security import malware
from wharf.security.archive import Limits
from wharf.security.sandbox import ScannerProcess

from tests.support.net import wait_until

from .samples import evil_wheel, opener


@pytest.fixture
def sandbox():
    s = ScannerProcess(grace=5.0)
    yield s
    s.close()


def test_same_result_as_in_process(sandbox, tmp_path):
    wheel = evil_wheel()
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.data)
    got = sandbox.analyze([(wheel.filename, str(path))], limits=Limits(), include_guarddog=False)
    assert got == malware.analyze([wheel], opener, include_guarddog=False)


def test_a_hung_helper_is_killed_and_replaced(tmp_path):
    sandbox = ScannerProcess(grace=0.5)
    try:
        fifo = tmp_path / "never.whl"
        os.mkfifo(fifo)  # opening it blocks forever: the helper hangs
        got = sandbox.analyze([("never.whl", str(fifo))], limits=Limits(max_seconds=0.5), include_guarddog=False)
        assert got["status"] == "warn" and "stopped" in got["findings"][0]["message"]
        wheel = evil_wheel()
        (tmp_path / "w.whl").write_bytes(wheel.data)
        again = sandbox.analyze([("w.whl", str(tmp_path / "w.whl"))], limits=Limits(), include_guarddog=False)
        assert again["status"] == "fail"
    finally:
        sandbox.close()


def test_a_dead_helper_is_a_warning_then_replaced(sandbox, tmp_path):
    wheel = evil_wheel()
    (tmp_path / "w.whl").write_bytes(wheel.data)
    files = [("w.whl", str(tmp_path / "w.whl"))]
    assert sandbox.analyze(files, limits=Limits(), include_guarddog=False)["status"] == "fail"
    sandbox._proc.kill()  # as if the kernel's OOM killer or a crash in a parser had ended it
    sandbox._proc.wait()
    got = sandbox.analyze(files, limits=Limits(), include_guarddog=False)
    assert got["status"] in ("warn", "fail")  # warn: it noticed the death; then the next one works
    assert sandbox.analyze(files, limits=Limits(), include_guarddog=False)["status"] == "fail"


def test_an_idle_helper_ends_and_the_next_scan_starts_another(tmp_path):
    sandbox = ScannerProcess(grace=5.0, idle=0.3)
    try:
        wheel = evil_wheel()
        (tmp_path / "w.whl").write_bytes(wheel.data)
        files = [("w.whl", str(tmp_path / "w.whl"))]
        assert sandbox.analyze(files, limits=Limits(), include_guarddog=False)["status"] == "fail"
        first = sandbox._proc
        assert first is not None
        wait_until(lambda: sandbox._proc is None, "the idle helper to end", timeout=10)
        assert first.poll() is not None
        assert sandbox.analyze(files, limits=Limits(), include_guarddog=False)["status"] == "fail"
        assert sandbox._proc is not None and sandbox._proc is not first
    finally:
        sandbox.close()
