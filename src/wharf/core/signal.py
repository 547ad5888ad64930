"""Cross-process change signal: a file whose mtime moves on every configuration change.

Each server process caches repository settings and verified tokens; one ``stat`` per request tells it whether
another process changed something since. (Scale-out mode will swap this for a database notification.)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["ChangeSignal"]


class ChangeSignal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        self._where = str(self.path)  # (os.stat of a str skips the Path conversion: this runs on every request)

    def current(self) -> int:
        try:
            st = os.stat(self._where)
        except FileNotFoundError:
            return 0
        return st.st_mtime_ns ^ st.st_size

    def bump(self) -> None:
        # size and mtime both change, so two bumps within one clock tick are still seen
        with open(self.path, "a") as fh:
            fh.write(".")
            if fh.tell() > 4096:
                fh.truncate(0)
        now = time.time_ns()
        os.utime(self.path, ns=(now, now))
