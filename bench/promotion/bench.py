"""Promotion benchmark on a real server (SQLite, one process, loopback).

N generic files (64 KiB each, 10 per package) are uploaded to ``dev``; then
  * ``upload``: the same files PUT again into another repository (what a copy without references costs);
  * ``bulk copy``: one ``POST /api/v1/promotions {"all": true}`` from dev to staging (by reference);
  * ``single copy``: one package (10 files) per request into a third repository, median latency.
Target: the bulk copy takes less time than uploading the same files again, and stores no new blob.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TOKEN = "wharf_bench_promotion_token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wharf-bench-promotion-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
    env.update({"WHARF_BOOTSTRAP_TOKEN": TOKEN, "WHARF_ACCESS_LOG": "0"})
    wharf = str(Path(sys.executable).with_name("wharf"))
    proc = subprocess.Popen([wharf, "serve", "--data", str(tmp / "data"), "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.1)
        for name in ("dev", "staging", "single", "reupload"):
            assert c.post("/api/v1/repositories", json={"name": name, "format": "generic"}).status_code == 201
        files = [(f"pkg{i // 10:04d}/1.0/f{i}.bin", os.urandom(64 * 1024)) for i in range(args.files)]
        for path, data in files:
            assert c.put(f"/dev/{path}", content=data).status_code == 201
        blobs = lambda: sum(1 for p in (tmp / "data" / "blobs").rglob("*") if p.is_file() and ".tmp" not in p.parts)  # noqa: E731
        before = blobs()

        t0 = time.perf_counter()
        for path, data in files:
            assert c.put(f"/reupload/{path}", content=data).status_code == 201
        upload_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        r = c.post("/api/v1/promotions", json={"source": "dev", "destination": "staging", "all": True})
        bulk_s = time.perf_counter() - t0
        assert r.status_code == 200 and len(r.json()["copied"]) == args.files and not r.json()["failed"], r.text
        assert blobs() == before, "a copy by reference stored new blobs"

        packages = sorted({p.rsplit("/", 1)[0] for p, _d in files})[:50]
        lat = []
        for pkg in packages:
            t0 = time.perf_counter()
            r = c.post("/api/v1/promotions", json={"source": "dev", "destination": "single", "package": pkg})
            lat.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
        result = {
            "files": args.files, "file_size": 64 * 1024,
            "reupload_s": round(upload_s, 3), "bulk_copy_s": round(bulk_s, 3),
            "bulk_copy_files_per_s": round(args.files / bulk_s, 1), "reupload_files_per_s": round(args.files / upload_s, 1),
            "single_package_copy_median_ms": round(statistics.median(lat) * 1000, 1),
            "new_blobs_during_copy": blobs() - before,
            "target_bulk_faster_than_reupload": bulk_s < upload_s,
        }
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        c.close()
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
