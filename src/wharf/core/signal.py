"""Cross-process change signal: an 8-byte value in a small shared (memory-mapped) file that every change replaces.

Each server process caches repository settings, verified tokens and parsed pages; reading the mapped value (a
memory read, no system call) on each request tells it whether another process changed something since. A change
writes a new random value: two changes at once still leave a value no process has seen. (Scale-out mode will swap
this for a database notification.)

``Beat`` is the same kind of shared file holding the times of the last few events of one kind (uploads), so a
process can tell that others are busy (the task helper backs off while a server takes uploads in a burst).
"""

from __future__ import annotations

import mmap
import os
import time
from pathlib import Path

__all__ = ["ChangeSignal", "Beat"]

_SIZE = 8


def _mapped(path: Path, size: int) -> mmap.mmap:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


class ChangeSignal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._map = _mapped(self.path, _SIZE)
        self._value = memoryview(self._map).cast("Q")

    def current(self) -> int:
        return self._value[0]

    def bump(self) -> None:
        self._value[0] = int.from_bytes(os.urandom(_SIZE), "little")


class Beat:
    """The ``slots`` latest times (``time.monotonic``: one clock for every process of the machine) something
    happened, in a ring shared by the processes of a data directory. Two processes marking at once may both write
    one slot: a beat is a hint (how busy the others are), never a count to rely on."""

    def __init__(self, path: Path, slots: int = 16):
        self.path = Path(path)
        self._map = _mapped(self.path, 8 * (slots + 1))
        self._next = memoryview(self._map)[:8].cast("Q")
        self._times = memoryview(self._map)[8:].cast("d")

    def mark(self) -> None:
        i = self._next[0]
        self._times[i % len(self._times)] = time.monotonic()
        self._next[0] = (i + 1) % (1 << 63)

    def since(self, t: float) -> int:
        """How many of the kept times are at ``t`` or later (a slot never marked holds 0.0: not a time, even when
        ``t`` is before the clock's start, as an hour ago is on a machine booted less than an hour ago)."""
        return sum(1 for x in self._times if x >= t and x > 0.0)
