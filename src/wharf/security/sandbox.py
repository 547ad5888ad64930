"""The malware scan runs in a helper process: niced (requests keep the CPU; scans catch up when the server is idle),
with a memory cap, and killed when it overruns its time limit. A hostile archive that crashes YARA or the
decompressor, or exhausts memory, ends that helper, not the server; the next scan starts a new one.

Protocol: one JSON request a line on stdin (``{"files": [[filename, path]], "limits": {...}, "guarddog": bool}``),
one JSON result a line on stdout. Run as ``python -m wharf.security.sandbox``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

from .archive import Limits

__all__ = ["ScannerProcess", "main"]

NICE = 10
MEMORY_LIMIT = 2 * 1024 * 1024 * 1024  # address space of the helper (YARA, Python and one member at a time)


def _limit_result(message: str) -> dict[str, Any]:
    return {"status": "warn",
            "findings": [{"rule": "archive-limit", "severity": "low", "file": None, "line": None, "message": message}],
            "summary": {"malware": False, "malware_rules": [], "malware_severity": None, "malware_truncated": True}}


class ScannerProcess:
    """One helper process per server process, started on first use; scans are serialised through it. It ends once
    no scan has come for ``idle`` seconds (its YARA rules and interpreter are ~30 MB the server need not keep
    between bursts of uploads); the next scan starts a new one."""

    def __init__(self, *, grace: float = 10.0, idle: float = 30.0):
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._grace = grace
        self._idle = idle
        self._used = 0.0  # time.monotonic() of the last scan
        self._reaper: threading.Thread | None = None

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen([sys.executable, "-m", "wharf.security.sandbox"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._end_when_idle, name="wharf-scanner-idle", daemon=True)
                self._reaper.start()
        return self._proc

    def _end_when_idle(self) -> None:
        while True:
            with self._lock:
                left = self._used + self._idle - time.monotonic()
                if self._proc is None or left <= 0:
                    self._kill()
                    self._reaper = None
                    return
            time.sleep(left)

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def analyze(self, files: list[tuple[str, str]], *, limits: Limits, include_guarddog: bool) -> dict[str, Any]:
        request = json.dumps({"files": files, "limits": dataclasses.asdict(limits), "guarddog": include_guarddog})
        with self._lock:
            proc = self._ensure()
            try:
                result = self._exchange(proc, request, limits)
            finally:
                self._used = time.monotonic()
        if "error" in result:
            raise RuntimeError(result["error"])
        return result

    def _exchange(self, proc: subprocess.Popen[bytes], request: str, limits: Limits) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(request.encode() + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._kill()
            return _limit_result("the scanner process could not be reached: not scanned")
        deadline = time.monotonic() + limits.max_seconds + self._grace  # + start-up and rule compilation
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready = select.select([proc.stdout], [], [], max(0.0, left))[0] if left > 0 else []
            if not ready:
                self._kill()
                return _limit_result(f"the scan took longer than {limits.max_seconds:g} s and was stopped")
            chunk = os.read(proc.stdout.fileno(), 1 << 20)
            if not chunk:
                self._kill()
                return _limit_result("the scanner process ended (out of memory or crashed on this archive)")
            line += chunk
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        with self._lock:
            self._kill()


def _serve() -> None:
    from . import malware

    class _File:
        __slots__ = ("filename", "path")

        def __init__(self, filename: str, path: str):
            self.filename, self.path = filename, path

    for line in sys.stdin.buffer:
        try:
            req = json.loads(line)
            files = [_File(f, p) for f, p in req["files"]]
            result = malware.analyze(files, lambda f: open(f.path, "rb"), limits=Limits(**req["limits"]),
                                     include_guarddog=bool(req["guarddog"]))
        except MemoryError:
            result = _limit_result("the scan ran out of memory: not scanned")
        except Exception as exc:  # noqa: BLE001 - reported to the caller, which records an analyzer error
            result = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


def main() -> None:
    try:
        os.nice(NICE)
    except OSError:  # pragma: no cover - not allowed here: run at normal priority
        pass
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):  # pragma: no cover - no such limit on this platform
        pass
    _serve()


if __name__ == "__main__":
    main()
