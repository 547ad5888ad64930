"""Cross-process change signal: an 8-byte value in a small shared (memory-mapped) file that every change replaces.

Each server process caches repository settings, verified tokens and parsed pages; reading the mapped value (a
memory read, no system call) on each request tells it whether another process changed something since. A change
writes a new random value: two changes at once still leave a value no process has seen. (Scale-out mode will swap
this for a database notification.)
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

__all__ = ["ChangeSignal"]

_SIZE = 8


class ChangeSignal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self._value = memoryview(self._map).cast("Q")

    def current(self) -> int:
        return self._value[0]

    def bump(self) -> None:
        self._value[0] = int.from_bytes(os.urandom(_SIZE), "little")
