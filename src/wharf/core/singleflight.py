"""Single-flight: concurrent misses for the same key do the work once, within a process and across processes.

Callers re-check their cache inside the flight; waiters that enter after the first finished find it filled.
Across worker processes a file lock serialises the same key (scale-out mode will use a database advisory lock).
Keys share a fixed set of lock files (created once, not one new file per key); two keys on the same file only
wait for each other across processes, never wrongly share a lock. The lock is taken without a thread hop when free."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import anyio.to_thread

__all__ = ["SingleFlight"]

_STRIPE_DIGITS = 3  # 4096 lock files at most


class SingleFlight:
    def __init__(self, lock_dir: Path):
        self.lock_dir = Path(lock_dir)
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def flight(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                path = f"{self.lock_dir}/{hashlib.sha256(key.encode()).hexdigest()[:_STRIPE_DIGITS]}"
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:  # another process holds it: wait in a thread, not on the event loop
                        await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
                    try:
                        yield
                    finally:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                self._locks.pop(key, None)
