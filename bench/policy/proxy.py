"""What deciding on a proxy fetch costs the first client of a file, through a real server (loopback only).

The upstream is a hosted Python repository on the same server holding N wheels of SIZE bytes (incompressible). Three
proxy repositories of it are read cold, each file once, by one client:

- ``none``: no policy (the bytes are streamed to the client while they are stored);
- ``admission``: 10 proxy_fetch deny policies on name/version/vulnerabilities (decided before the fetch; streamed);
- ``hold``: one deny policy on the licence (needs the bytes: the whole file is stored and judged before it is served).

Reported per case: median time to the first byte and to the last byte (ms), and the ratios to ``none``. No target is
asserted: the numbers are for the notes (holding trades the first client's time to first byte for safety)."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import artifacts  # noqa: E402
from tests.support.server import WharfServer  # noqa: E402

ADMIN = "wharf_bench_admin_token_proxy_policies"
JSON = "application/vnd.pypi.simple.v1+json"


def _wheel(name: str, size: int) -> bytes:
    blob = os.urandom(size)
    data = artifacts.wheel_bytes(name, "1.0", metadata_fields={"License": "MIT"},
                                 extra_files={f"{artifacts.dist_name(name)}/payload.bin": blob})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # (stored deflated: random bytes stay their size)
        assert zf.testzip() is None
    return data


def _cold_reads(c: Any, proxy: str, names: list[str]) -> dict[str, float]:
    first, total = [], []
    for name in names:
        page = c.get(f"/{proxy}/simple/{name}/", headers={"Accept": JSON})
        page.raise_for_status()
        (f,) = page.json()["files"]
        url = f"/{proxy}/files/{f['hashes']['sha256']}/{f['filename']}"
        start = time.perf_counter()
        with c.stream("GET", url) as r:
            it = r.iter_raw(256 * 1024)
            next(it)
            first.append(time.perf_counter() - start)
            for _ in it:
                pass
            total.append(time.perf_counter() - start)
            assert r.status_code == 200, r.status_code
    return {"ttfb_ms": statistics.median(first) * 1000, "total_ms": statistics.median(total) * 1000}


def main() -> int:
    import httpx

    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--size", type=int, default=4 * 1024 * 1024)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="policy-proxy-bench-"))
    out: dict[str, Any] = {"files": args.files, "size": args.size, "cases": {}}
    with WharfServer(tmp / "data", token=ADMIN) as srv:
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120) as c:
            c.post("/api/v1/repositories", json={"name": "up", "format": "python"}).raise_for_status()
            for case in ("none", "admission", "hold"):
                names = [f"{case}-pkg{i}" for i in range(args.files)]
                for name in names:
                    data = _wheel(name, args.size)
                    fn = f"{artifacts.dist_name(name)}-1.0-py3-none-any.whl"
                    r = c.post("/up/legacy/", data={":action": "file_upload", "protocol_version": "1", "name": name,
                                                    "version": "1.0", "filetype": "bdist_wheel", "pyversion": "py3",
                                                    "metadata_version": "2.1",
                                                    "sha256_digest": hashlib.sha256(data).hexdigest()},
                               files={"content": (fn, data)})
                    assert r.status_code == 200, r.text
                proxy = f"px-{case}"
                c.post("/api/v1/repositories", json={"name": proxy, "format": "python", "kind": "proxy",
                                                     "config": {"upstream": {"url": f"{srv.url}/up/simple/"}}}
                       ).raise_for_status()
                if case == "admission":
                    for i in range(10):
                        c.post("/api/v1/policies", json={
                            "name": f"adm{i}", "events": ["proxy_fetch"], "repositories": [proxy], "action": "deny",
                            "message": "no", "expression": f'name == "never{i}" || '
                                                           'vulnerabilities.max_severity == "critical"'}
                               ).raise_for_status()
                elif case == "hold":
                    c.post("/api/v1/policies", json={
                        "name": "no-gpl", "events": ["proxy_fetch"], "repositories": [proxy], "action": "deny",
                        "message": "no GPL", "expression": 'license.startsWith("GPL")'}).raise_for_status()
                out["cases"][case] = _cold_reads(c, proxy, names)
    base = out["cases"]["none"]
    print(f"cold proxy reads, {args.files} files of {args.size // 1024} KiB, one client, medians:")
    print(f"{'case':<10} {'first byte ms':>14} {'last byte ms':>13} {'ttfb x':>7} {'total x':>8}")
    for case, m in out["cases"].items():
        m["ttfb_x"] = m["ttfb_ms"] / base["ttfb_ms"]
        m["total_x"] = m["total_ms"] / base["total_ms"]
        print(f"{case:<10} {m['ttfb_ms']:>14.2f} {m['total_ms']:>13.2f} {m['ttfb_x']:>7.2f} {m['total_x']:>8.2f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
