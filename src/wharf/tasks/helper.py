"""The task helper: the process that runs a server's CPU-heavy background tasks (the helper lane: vetting scans,
advisory imports), so that a backlog of them never holds a request process's interpreter (GIL) or its memory.

A server's worker thread starts it (``HelperProcess.start``) when helper-lane work is due and it is not running. It
runs niced (requests keep the CPU; the backlog drains when they leave some), takes the data directory's helper lock
(one helper per data directory, however many server processes there are), runs due helper-lane tasks one at a time
and exits once none has been due for ``task_helper_idle`` seconds, giving its memory back between bursts of
uploads. SIGTERM ends it after the task in hand; a task cut short by a crash is claimed again when its lease ends.

Run as ``python -m wharf.tasks.helper`` with the server's settings in ``WHARF_SETTINGS_JSON``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Settings

__all__ = ["HelperProcess", "main", "NICE"]

log = logging.getLogger("wharf.tasks.helper")

NICE = 10


def _lock_path(settings: "Settings") -> Path:
    return Path(settings.data) / "state" / "task-helper.lock"


def _try_lock(path: Path) -> IO[bytes] | None:
    """The helper lock, held by the returned file (None: another helper has it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "ab")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


class HelperProcess:
    """A server process's handle on the helper: start it, see whether one runs, stop the one it started."""

    def __init__(self, settings: "Settings"):
        from ..supervisor import SETTINGS_ENV, settings_json

        self._lock = _lock_path(settings)
        self._env = {**os.environ, SETTINGS_ENV: settings_json(settings)}
        self._proc: subprocess.Popen[bytes] | None = None
        self.started = 0  # helpers this process started

    def running(self) -> bool:
        """Whether a helper runs for this data directory (this process's, or another server process's)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                return True
            self._proc = None  # (reaped)
        probe = _try_lock(self._lock)
        if probe is None:
            return True
        probe.close()
        return False

    def start(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-m", "wharf.tasks.helper"], env=self._env,
                                      stdin=subprocess.DEVNULL, close_fds=True)
        self.started += 1

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    try:
        os.nice(NICE)
    except OSError:  # pragma: no cover - not allowed here: run at normal priority
        pass
    from ..observability import setup_logging
    from ..supervisor import settings_from_env

    settings = settings_from_env()
    setup_logging(settings.log_level)
    lock = _try_lock(_lock_path(settings))
    if lock is None:
        return  # another server process's helper is at it
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    from ..core.services import Core
    from . import HELPER

    core = Core(settings)
    done = 0
    try:
        idle_since = time.monotonic()
        while not stop.is_set():
            try:
                ran = core.tasks.run_one(core, HELPER)
            except Exception:  # noqa: BLE001 - e.g. the database is briefly unavailable: try again
                log.exception("task helper error")
                ran = False
            now = time.monotonic()
            if ran:
                done, idle_since = done + 1, now
            elif now - idle_since >= settings.task_helper_idle:
                break
            else:
                stop.wait(min(settings.worker_poll, 0.5))
    finally:
        log.info("task helper exits", extra={"fields": {"tasks": done}})
        core.vetting.close()
        core.close()
        lock.close()


if __name__ == "__main__":
    main()
