"""Costs of the hooks area (see bench/hooks/run.sh).

1. In-process (the ASGI app called directly, no network): microseconds per download of a small generic file
   with no allowlist, with a 50-range allow_read list, with trusted_proxies + X-Forwarded-For, and with an
   entitlement token (package-glob check + in-memory count). Target: allowlists and entitlements add < 10%.
2. A real server: upload latency (generic PUT, median of N) with no webhook, and with a webhook to a receiver that
   holds every request for 2 s. Target: within 1.2x (deliveries never run in the request path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port  # noqa: E402
from tests.support.server import WharfServer  # noqa: E402
from wharf.app import WharfApp  # noqa: E402
from wharf.config import Settings  # noqa: E402
from wharf.core.services import Core  # noqa: E402

ADMIN = "wharf_bench_admin_token_0123456789"


async def _call(app: WharfApp, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"",
                client: str = "127.0.0.1") -> int:
    status = [0]
    sent = [False]

    async def receive() -> dict[str, Any]:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "scheme": "http", "client": (client, 1), "server": ("127.0.0.1", 80), "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), *headers]}
    await app(scope, receive, send)
    return status[0]


def in_process(n: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="hooks-bench-"))
    settings = Settings(data=tmp / "data", access_log=False, worker=False, trusted_proxies=("127.0.0.1/32",),
                        bootstrap_token=ADMIN, entitlement_flush=3600)
    core = Core(settings, migrate=True)
    core.bootstrap()
    ranges = [f"10.{i}.0.0/16" for i in range(49)] + ["127.0.0.0/8"]
    core.create_repository(name="plain", format="generic", actor="bench")
    core.create_repository(name="listed", format="generic", actor="bench", config={"allow_read": ranges})
    _ent, ent_secret = core.entitlements.create(name="bench", repositories=["plain"], packages=["tools*"],
                                                expires_at=None, actor="bench")
    app = WharfApp(core)
    auth = [(b"authorization", f"Bearer {ADMIN}".encode())]
    results: dict[str, float] = {}

    async def run() -> None:
        for repo in ("plain", "listed"):
            assert await _call(app, "PUT", f"/{repo}/tools/1.0/tool.txt", auth, b"x" * 2048) in (200, 201)
        cases = {
            "no allowlist (admin token)": ("plain", auth, "127.0.0.1"),
            "allow_read of 50 ranges (admin token)": ("listed", auth, "127.0.0.1"),
            "allow_read + trusted proxy + X-Forwarded-For": ("listed", auth + [(b"x-forwarded-for", b"10.48.1.1")],
                                                             "127.0.0.1"),
            "entitlement token (glob + count)": ("plain", [(b"authorization", f"Bearer {ent_secret}".encode())],
                                                 "127.0.0.1"),
        }
        for label, (repo, headers, client) in cases.items():
            path = f"/{repo}/tools/1.0/tool.txt"
            for _ in range(200):  # warm caches
                assert await _call(app, "GET", path, headers, client=client) == 200
            best = float("inf")
            for _round in range(3):
                start = time.perf_counter()
                for _ in range(n):
                    await _call(app, "GET", path, headers, client=client)
                best = min(best, (time.perf_counter() - start) / n * 1e6)
            results[label] = best

    asyncio.run(run())
    core.close()
    return results


class _Slow(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(2.0)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def uploads(n: int) -> dict[str, float]:
    import httpx

    port = free_port()
    receiver = ThreadingHTTPServer(("127.0.0.1", port), _Slow)
    receiver.daemon_threads = True
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    tmp = Path(tempfile.mkdtemp(prefix="hooks-bench-srv-"))
    out: dict[str, float] = {}
    with WharfServer(tmp / "data", token=ADMIN) as srv:
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60) as c:
            for label, hook in (("no webhook", False), ("webhook to a receiver holding 2 s", True)):
                repo = "up-hook" if hook else "up-plain"
                c.post("/api/v1/repositories", json={"name": repo, "format": "generic"}).raise_for_status()
                if hook:
                    c.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:{port}/", "repository": repo,
                                                     "timeout": 30}).raise_for_status()
                times = []
                for i in range(n):
                    start = time.perf_counter()
                    r = c.put(f"/{repo}/pkg/{i}/file-{i}.bin", content=b"y" * 4096)
                    times.append(time.perf_counter() - start)
                    assert r.status_code in (200, 201), r.text
                out[label] = statistics.median(times) * 1000
    receiver.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--uploads", type=int, default=40)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    downloads = in_process(args.requests)
    base = downloads["no allowlist (admin token)"]
    print("in-process small-file download, best of 3 rounds (us/request):")
    for label, us in downloads.items():
        print(f"  {label:50s} {us:8.1f}  ({us / base:.2f}x)")
    ups = uploads(args.uploads)
    print(f"generic upload latency through a real server, median of {args.uploads} (ms):")
    plain = ups["no webhook"]
    for label, ms in ups.items():
        print(f"  {label:50s} {ms:8.2f}  ({ms / plain:.2f}x)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"downloads_us": downloads, "uploads_ms": ups}, indent=2))


if __name__ == "__main__":
    main()
