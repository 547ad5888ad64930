"""Cargo sparse-index serving: Wharf (hosted registry, N crates) vs nginx serving the same index files statically.

    python bench/cargo/index_bench.py [--crates 2000] [--versions 3] [--duration 10] [--connections 32]
                                      [--workers 1,2] [--out bench/cargo/results]

1. starts ``wharf serve`` on a fresh data dir (127.0.0.1, a free port), creates the hosted cargo repository
   ``bench`` and publishes N crates x M versions through the publish API (threads);
2. downloads every index file from Wharf and writes the same bytes to a static tree that a private nginx
   (``daemon off``, own prefix, never the system's) serves on another free port;
3. runs ``wrk`` against both with a Lua script picking a random index path per request, twice: plain GETs
   (``200``) and revalidations with ``If-None-Match`` (``304``: what cargo sends for files it has), for each
   Wharf worker count with nginx on the same number of worker processes;
4. prints a table and writes it as Markdown (with the raw numbers as JSON) under ``--out``.

Loopback only; every load run is bounded by ``--duration``. Needs nginx and wrk (apt: nginx-light, wrk).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import hashlib
import io
import json
import os
import platform
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TOKEN = "wharf_bench_" + hashlib.sha256(os.urandom(16)).hexdigest()[:32]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

NGINX_CONF = """\
worker_processes {workers};
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    etag on;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {static};
        location = /health {{ return 200 "ok"; }}
    }}
}}
"""

WRK_LUA = """\
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local etags = {}
for line in io.lines("%(etags)s") do etags[#etags + 1] = line end
local conditional = %(conditional)s
math.randomseed(os.time())
request = function()
  local i = math.random(#paths)
  local h = {["User-Agent"] = "bench-wrk", ["Accept"] = "text/plain"}
  if conditional then h["If-None-Match"] = etags[i] end
  return wrk.format("GET", paths[i], h)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with _NO_PROXY.open(url, timeout=2):
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _NO_PROXY.open(req, timeout=60) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def crate(name: str, version: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in ((f"{name}-{version}/Cargo.toml",
                            f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n'.encode()),
                           (f"{name}-{version}/src/lib.rs", b"pub fn f() -> u32 { 1 }\n")):
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def publish_body(name: str, version: str, i: int) -> bytes:
    deps = [{"name": f"bench-crate-{(i * 7 + k) % 2000:04d}", "version_req": "^1", "features": [], "optional": False,
             "default_features": True, "target": None, "kind": "normal"} for k in range(1, 1 + i % 4)]
    meta = json.dumps({"name": name, "vers": version, "deps": deps, "features": {"default": [], "extra": []},
                       "authors": [], "description": f"{name}, benchmark crate", "license": "MIT", "links": None,
                       "keywords": [], "categories": [], "badges": {}}).encode()
    data = crate(name, version)
    return struct.pack("<I", len(meta)) + meta + struct.pack("<I", len(data)) + data


def index_path(name: str) -> str:
    n = name.lower()
    return f"{len(n)}/{n}" if len(n) <= 2 else (f"3/{n[0]}/{n}" if len(n) == 3 else f"{n[:2]}/{n[2:4]}/{n}")


def run_wrk(base: str, paths_file: Path, etags_file: Path, conditional: bool, connections: int, duration: int,
            threads: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="cargo-wrk-") as td:
        lua = Path(td) / "paths.lua"
        lua.write_text(WRK_LUA % {"paths": paths_file, "etags": etags_file,
                                  "conditional": "true" if conditional else "false"})
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s",
                              str(lua), base], capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(\w+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": "".join(p50.groups()) if p50 else None, "p99": "".join(p99.groups()) if p99 else None,
            "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crates", type=int, default=2000)
    ap.add_argument("--versions", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--work", default=None, help="scratch dir (default: a temp dir, removed afterwards)")
    args = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install nginx-light wrk)", file=sys.stderr)
            return 2
    wharf = os.environ.get("WHARF_BIN") or str(ROOT / ".venv" / "bin" / "wharf")
    work = Path(args.work or tempfile.mkdtemp(prefix="cargo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)  # nginx workers run as 'nobody' when started by root: the static tree must be reachable
    procs: list[subprocess.Popen] = []
    results: dict = {"crates": args.crates, "versions": args.versions, "duration_s": args.duration,
                     "connections": args.connections, "runs": []}
    try:
        data = work / "wharf-data"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
        env.update(WHARF_BOOTSTRAP_TOKEN=TOKEN, WHARF_ACCESS_LOG="0")

        def start_wharf(workers: int) -> subprocess.Popen:
            p = subprocess.Popen([wharf, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port),
                                  "--workers", str(workers), "--no-access-log"], env=env,
                                 stdout=open(work / "wharf.log", "ab"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
            procs.append(p)
            wait_http(f"http://127.0.0.1:{port}/health")
            return p

        def stop(p: subprocess.Popen) -> None:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=30)

        wharf_proc = start_wharf(2)
        base = f"http://127.0.0.1:{port}"
        status, body, _ = http("POST", f"{base}/api/v1/repositories",
                               json.dumps({"name": "bench", "format": "cargo"}).encode(),
                               {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        assert status == 201, body
        names = [f"bench-crate-{i:04d}" for i in range(args.crates)]
        jobs = [(n, f"1.{v}.0", i) for i, n in enumerate(names) for v in range(args.versions)]
        t0 = time.time()

        def publish(job: tuple[str, str, int]) -> None:
            status, body, _ = http("PUT", f"{base}/bench/api/v1/crates/new", publish_body(*job),
                                   {"Authorization": TOKEN})
            if status != 200:
                raise RuntimeError(f"publish {job}: {status} {body[:300]!r}")

        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # versions of one crate stay in order per thread
            by_crate = {}
            for job in jobs:
                by_crate.setdefault(job[0], []).append(job)
            list(pool.map(lambda js: [publish(j) for j in js], by_crate.values()))
        load_s = time.time() - t0
        results["load"] = {"publishes": len(jobs), "seconds": round(load_s, 1),
                           "per_publish_ms": round(1000 * load_s * 4 / len(jobs), 1)}
        print(f"published {len(jobs)} versions of {len(names)} crates in {load_s:.1f} s", flush=True)
        # the same index files, as static files for nginx
        static = work / "nginx" / "static"
        paths, etags, total = [], [], 0
        for n in names:
            rel = "/bench/index/" + index_path(n)
            status, body, headers = http("GET", base + rel)
            assert status == 200 and body.count(b"\n") == args.versions, (rel, status)
            target = static / rel.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            paths.append(rel)
            etags.append(headers.get("ETag") or headers.get("etag"))
            total += len(body)
        results["index_files"] = {"count": len(paths), "mean_bytes": round(total / len(paths))}
        stop(wharf_proc)
        paths_file, etags_file = work / "paths.txt", work / "etags.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        etags_file.write_text("\n".join(etags) + "\n")
        # nginx computes its own ETags (mtime-size): a separate list for its conditional run
        prefix = work / "nginx"
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        for d, _dirs, _files in os.walk(prefix):
            os.chmod(d, 0o755)
        for worker_count in [int(w) for w in args.workers.split(",")]:
            nport = free_port()
            conf = prefix / "nginx.conf"
            conf.write_text(NGINX_CONF.format(workers=worker_count, prefix=prefix, port=nport, static=static))
            ng = subprocess.Popen(["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
                                  stdout=open(work / "nginx.log", "ab"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
            procs.append(ng)
            nbase = f"http://127.0.0.1:{nport}"
            wait_http(nbase + "/health")
            assert http("GET", nbase + paths[0])[0] == 200, "nginx cannot read the static tree"
            nginx_etags = work / "nginx-etags.txt"
            nginx_etags.write_text("\n".join(http("GET", nbase + p)[2].get("ETag", "") for p in paths) + "\n")
            wharf_proc = start_wharf(worker_count)
            for conditional in (False, True):
                row = {"workers": worker_count, "request": "If-None-Match (304)" if conditional else "GET (200)"}
                row["wharf"] = run_wrk(base, paths_file, etags_file, conditional, args.connections, args.duration, 2)
                row["nginx"] = run_wrk(nbase, paths_file, nginx_etags, conditional, args.connections, args.duration,
                                       2)
                row["ratio"] = round(row["wharf"]["rps"] / row["nginx"]["rps"], 3)
                results["runs"].append(row)
                print(f"workers={worker_count} {row['request']:<20} wharf {row['wharf']['rps']:>9.0f} req/s  "
                      f"nginx {row['nginx']['rps']:>9.0f} req/s  ratio {row['ratio']:.2f}", flush=True)
            stop(wharf_proc)
            os.killpg(ng.pid, signal.SIGTERM)
            ng.wait(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=30)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(p.pid, signal.SIGKILL)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    lines = [f"# Cargo index serving: Wharf vs nginx (static), {args.crates} crates x {args.versions} versions", "",
             f"wrk, {args.connections} connections, 2 threads, {args.duration} s per run, random index file per "
             f"request; loopback, {os.cpu_count()} cores shared by server and load generator. Load: "
             f"{results['load']['publishes']} publishes in {results['load']['seconds']} s.", "",
             "| workers | request | Wharf req/s | nginx req/s | Wharf/nginx | Wharf p50 / p99 | nginx p50 / p99 |",
             "|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        lines.append(f"| {r['workers']} | {r['request']} | {r['wharf']['rps']:.0f} | {r['nginx']['rps']:.0f} | "
                     f"{r['ratio']:.2f} | {r['wharf']['p50']} / {r['wharf']['p99']} | "
                     f"{r['nginx']['p50']} / {r['nginx']['p99']} |")
    (out / f"cargo-index-{stamp}.md").write_text("\n".join(lines) + "\n\n```json\n" + json.dumps(results, indent=1)
                                                 + "\n```\n")
    print("\n".join(lines))
    bad = [r for r in results["runs"] if r["wharf"]["non_2xx_3xx"] or r["nginx"]["non_2xx_3xx"]]
    if bad:
        print("some responses were not 2xx/3xx: see the JSON", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
