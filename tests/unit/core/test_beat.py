"""The shared upload beat: times one mapping marks are seen through another mapping of the same file (as another
process sees them), the ring keeps the latest ones, and a fresh file reads as quiet."""

from __future__ import annotations

import multiprocessing
import time

from wharf.core.signal import Beat


def _mark(path: str, n: int) -> None:
    beat = Beat(path)
    for _ in range(n):
        beat.mark()


def test_marks_of_another_process_are_seen(tmp_path):
    path = tmp_path / "state" / "uploads.beat"
    reader = Beat(path)
    start = time.monotonic()
    assert reader.since(start - 3600) == 0  # a new file: nothing happened
    assert reader.since(float("-inf")) == 0  # (however early one asks: its empty slots are not times)
    p = multiprocessing.get_context("spawn").Process(target=_mark, args=(str(path), 3))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert reader.since(start) == 3
    assert reader.since(time.monotonic() + 1) == 0


def test_the_ring_keeps_the_latest_times(tmp_path):
    beat = Beat(tmp_path / "b", slots=4)
    for _ in range(4):
        beat.mark()
    middle = time.monotonic()
    for _ in range(3):
        beat.mark()
    assert beat.since(0) == 4  # only the 4 latest are kept
    assert beat.since(middle) == 3
