"""Snapshot views vs the live tree (loopback only, bounded runs).

    .venv/bin/python bench/snapshots/bench.py [--packages 200] [--seconds 5] [--json out.json]

Uploads N single-wheel Python projects, creates a snapshot (the request renders the view's tree: its time is
reported), then measures with wrk, for the same project page: the live index vs the snapshot view (req/s), and a
wheel download from each. Targets: the view serves within 10% of the live tree (both are files served the same
way); rendering a snapshot of 200 projects takes well under a second of server time per 1,000 files. Also times a
`gc` dry run over the resulting blob store.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
WHARF = os.environ.get("WHARF_BIN", str(Path(sys.executable).with_name("wharf")))
TOKEN = "wharf_snapshot_bench_token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, seconds: int) -> float:
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", url], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else 0.0


def main() -> None:
    import httpx

    from tests.support import artifacts

    ap = argparse.ArgumentParser()
    ap.add_argument("--packages", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
        env.update({"WHARF_BOOTSTRAP_TOKEN": TOKEN, "WHARF_ACCESS_LOG": "false"})
        proc = subprocess.Popen([WHARF, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            wait(base + "/health")
            auth = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=base, headers=auth, timeout=120) as c:
                assert c.post("/api/v1/repositories", json={"name": "prod", "format": "python"}).status_code == 201
                dist = Path(tmp) / "dist"
                dist.mkdir()
                for i in range(args.packages):
                    w = artifacts.make_wheel(dist, f"pkg{i:05d}", "1.0")
                    r = c.post("/prod/legacy/", data=artifacts.upload_form(w, w.name, f"pkg{i:05d}", "1.0"),
                               files={"content": (w.name, w.read_bytes())})
                    assert r.status_code == 200, r.text
                t0 = time.perf_counter()
                r = c.post("/api/v1/repositories/prod/snapshots", json={"name": "rel"})
                render = time.perf_counter() - t0
                assert r.status_code == 201, r.text
                page = c.get("/prod/~rel/simple/pkg00000/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
                file_url = str(httpx.URL(f"{base}/prod/~rel/simple/pkg00000/").join(page.json()["files"][0]["url"]))
                t0 = time.perf_counter()
                dry = c.post("/api/v1/gc", params={"grace": 0}).json()
                gc_dry = time.perf_counter() - t0
            live_page = wrk(f"{base}/prod/simple/pkg00000/", args.seconds)
            view_page = wrk(f"{base}/prod/~rel/simple/pkg00000/", args.seconds)
            live_file = wrk(file_url.replace("/prod/~rel/", "/prod/"), args.seconds)
            view_file = wrk(file_url, args.seconds)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    result = {
        "packages": args.packages, "snapshot_create_seconds": round(render, 3),
        "gc_dry_run_seconds": round(gc_dry, 3), "gc_candidates": len(dry["blobs"]),
        "page_rps": {"live": live_page, "view": view_page, "ratio": round(view_page / live_page, 3) if live_page else None},
        "download_rps": {"live": live_file, "view": view_file,
                         "ratio": round(view_file / live_file, 3) if live_file else None},
        "targets": {"view_vs_live_ratio_min": 0.9},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
