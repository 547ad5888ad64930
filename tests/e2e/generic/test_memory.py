"""A 200 MB upload is streamed to the blob store: the worker's peak RSS (VmHWM in /proc) does not grow with it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from tests.e2e.generic.conftest import make_repo
from tests.support.generic_curl import Curl

SIZE = 200 * 1024 * 1024


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _peak_rss_kib(pids: list[int]) -> dict[int, int]:
    peaks = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peaks[pid] = int(line.split()[1])
        except OSError:
            pass
    return peaks


def test_big_upload_keeps_memory_flat(sqlite_server: Any, curl: Curl, tmp_path: Path) -> None:
    repo = make_repo(sqlite_server, max_upload_size=SIZE + 1)
    auth = ["-H", f"Authorization: Bearer {sqlite_server.token}"]
    warm = tmp_path / "warm.bin"
    warm.write_bytes(b"w" * 1_000_000)
    assert curl(*auth, "-T", warm, f"{sqlite_server.url}/{repo}/warm.bin").status == 201  # imports, buffers
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:  # not all zeros, not all random: a repeated 1 MiB random block
        block = os.urandom(1024 * 1024)
        h = hashlib.sha256()
        for _ in range(SIZE // len(block)):
            fh.write(block)
            h.update(block)
    pids = _descendants(sqlite_server.proc.pid)
    before = _peak_rss_kib(pids)
    r = curl(*auth, "-T", big, "-H", f"X-Checksum-Sha256: {h.hexdigest()}", f"{sqlite_server.url}/{repo}/big.bin",
             timeout=600)
    assert r.status == 201 and r.json()["size"] == SIZE, r
    after = _peak_rss_kib(pids)
    growth = {pid: after[pid] - before[pid] for pid in before if pid in after}
    # the body is 200 MiB; the worker's peak resident memory may move by buffers, not by the file
    assert max(growth.values()) < 40 * 1024, growth
    big.unlink()
    out = tmp_path / "down.bin"
    assert curl(f"{sqlite_server.url}/{repo}/big.bin", output=out, timeout=600).status == 200
    assert out.stat().st_size == SIZE
