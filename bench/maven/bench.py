"""Maven read path: ``maven-metadata.xml`` and POM requests per second from a hosted Wharf repository holding
N artifacts, against nginx serving byte-identical copies of the same files from disk (wrk, keep-alive, random
paths from the whole set).

    .venv/bin/python bench/maven/bench.py [--artifacts 2000] [--duration 10] [--connections 32] [--workers 1]

Everything runs on 127.0.0.1 under a scratch directory (``--work``, default /tmp/wharf-bench-maven) and is
stopped by PID at the end. Results: a Markdown table on stdout and in bench/maven/results/.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TOKEN = "wharf_bench_maven_admin_token"

NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    types {{ text/xml xml pom; }}
    default_type application/octet-stream;
    etag on;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root};
    }}
}}
"""

WRK_LUA = """\
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(%d)
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def jar_bytes(i: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        zf.writestr(f"org/bench/a{i}/A.class", os.urandom(256) + b"\x00" * 1024)
    return buf.getvalue()


def pom_bytes(group: str, artifact: str, version: str) -> bytes:
    deps = "".join(f"<dependency><groupId>org.bench.dep{j}</groupId><artifactId>d{j}</artifactId>"
                   f"<version>1.{j}</version></dependency>" for j in range(5))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<project>\n'
            f"  <modelVersion>4.0.0</modelVersion>\n  <groupId>{group}</groupId>\n  <artifactId>{artifact}</artifactId>\n"
            f"  <version>{version}</version>\n  <packaging>jar</packaging>\n  <description>{'x' * 400}</description>\n"
            f"  <dependencies>{deps}</dependencies>\n</project>\n").encode()


def load(base: str, repo: str, n: int, versions: int) -> tuple[list[str], list[str], float]:
    """Deploy n artifacts (each `versions` releases of a pom + jar); returns metadata paths, pom paths, seconds."""
    meta_paths, pom_paths = [], []
    jobs = []
    for i in range(n):
        group, artifact = f"org.bench.g{i % 50}", f"artifact{i}"
        gpath = f"{group.replace('.', '/')}/{artifact}"
        meta_paths.append(f"/{repo}/{gpath}/maven-metadata.xml")
        for v in range(versions):
            version = f"1.{v}.0"
            pom_paths.append(f"/{repo}/{gpath}/{version}/{artifact}-{version}.pom")
            jobs.append((f"{gpath}/{version}/{artifact}-{version}", group, artifact, version, i))
    t0 = time.time()

    def put(job):  # type: ignore[no-untyped-def]
        stem, group, artifact, version, i = job
        with httpx.Client(base_url=base, auth=("bench", TOKEN), timeout=60) as c:
            for suffix, body in ((".jar", jar_bytes(i)), (".pom", pom_bytes(group, artifact, version))):
                r = c.put(f"/{repo}/{stem}{suffix}", content=body)
                assert r.status_code in (200, 201), r.text
                r = c.put(f"/{repo}/{stem}{suffix}.sha1", content=hashlib.sha1(body).hexdigest().encode())
                assert r.status_code in (200, 201), r.text

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(put, jobs))
    return meta_paths, pom_paths, time.time() - t0


def mirror(base: str, paths: list[str], root: Path) -> None:
    """Copy what Wharf serves, byte for byte, into nginx's root."""
    with httpx.Client(base_url=base, timeout=60) as c:
        for p in paths:
            r = c.get(p)
            assert r.status_code == 200, (p, r.status_code)
            dest = root / p.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(r.content)


def wrk(url: str, paths_file: Path, duration: int, connections: int, threads: int) -> dict:
    script = paths_file.with_suffix(".lua")
    script.write_text(WRK_LUA % (paths_file, 42))
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": p50.group(1) if p50 else "?", "p99": p99.group(1) if p99 else "?",
            "non2xx": int(errors.group(1)) if errors else 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", type=int, default=2000)
    ap.add_argument("--versions", type=int, default=1, help="releases per artifact")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--workers", type=int, default=1, help="Wharf worker processes = nginx worker_processes")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    ap.add_argument("--work", default="/tmp/wharf-bench-maven")
    ap.add_argument("--wharf", default=str(ROOT / ".venv" / "bin" / "wharf"))
    a = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    procs: list[subprocess.Popen] = []
    try:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
        env.update(WHARF_BOOTSTRAP_TOKEN=TOKEN, WHARF_ACCESS_LOG="false")
        wharf = subprocess.Popen([a.wharf, "serve", "--data", str(work / "data"), "--host", "127.0.0.1", "--port",
                                  str(port), "--workers", str(a.workers), "--no-access-log"], env=env,
                                 stdout=open(work / "wharf.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(wharf)
        base = f"http://127.0.0.1:{port}"
        wait_up(base + "/health")
        r = httpx.post(base + "/api/v1/repositories", headers={"Authorization": f"Bearer {TOKEN}"},
                       json={"name": "bench", "format": "maven"})
        assert r.status_code == 201, r.text
        meta_paths, pom_paths, load_s = load(base, "bench", a.artifacts, a.versions)
        uploads = len(pom_paths) * 4
        print(f"loaded {a.artifacts} artifacts ({uploads} PUTs) in {load_s:.1f} s "
              f"({uploads / load_s:.0f} PUT/s)", file=sys.stderr)
        static = work / "nginx" / "root"
        mirror(base, meta_paths + pom_paths, static)
        (work / "nginx" / "tmp").mkdir(parents=True, exist_ok=True)
        nport = free_port()
        conf = work / "nginx" / "nginx.conf"
        conf.write_text(NGINX_CONF.format(workers=a.workers, prefix=work / "nginx", port=nport, root=static))
        nginx = subprocess.Popen(["nginx", "-p", str(work / "nginx"), "-e", str(work / "nginx" / "error.log"), "-c",
                                  str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(nginx)
        nbase = f"http://127.0.0.1:{nport}"
        wait_up(nbase + meta_paths[0])
        sets = {"maven-metadata.xml": meta_paths, "pom": pom_paths}
        results: dict[tuple[str, str], list[dict]] = {}
        for name, paths in sets.items():
            pf = work / f"{name}.paths"
            pf.write_text("\n".join(paths) + "\n")
            for target, url in (("wharf", base), ("nginx", nbase)):  # warm-up
                wrk(url, pf, 2, a.connections, a.threads)
            for _ in range(a.rounds):
                for target, url in (("wharf", base), ("nginx", nbase)):
                    results.setdefault((name, target), []).append(wrk(url, pf, a.duration, a.connections, a.threads))
        lines = [f"# Maven read path vs nginx ({datetime.now():%Y-%m-%d %H:%M})", "",
                 f"{a.artifacts} artifacts x {a.versions} version(s) in one hosted repository; wrk -t{a.threads} "
                 f"-c{a.connections} -d{a.duration}s, random paths over the whole set, median of {a.rounds} rounds; "
                 f"Wharf {a.workers} worker(s), nginx worker_processes {a.workers}; {os.cpu_count()} CPUs shared with "
                 f"wrk. Load: {uploads} PUTs in {load_s:.1f} s.", "",
                 "| document | Wharf req/s | nginx req/s | Wharf / nginx | Wharf p50 / p99 | nginx p50 / p99 |",
                 "|---|---:|---:|---:|---|---|"]
        for name in sets:
            w = sorted(results[(name, "wharf")], key=lambda r: r["rps"])[len(results[(name, "wharf")]) // 2]
            n = sorted(results[(name, "nginx")], key=lambda r: r["rps"])[len(results[(name, "nginx")]) // 2]
            assert w["non2xx"] == 0 and n["non2xx"] == 0, (w, n)
            lines.append(f"| {name} | {w['rps']:.0f} | {n['rps']:.0f} | {w['rps'] / n['rps']:.0%} | "
                         f"{w['p50']} / {w['p99']} | {n['p50']} / {n['p99']} |")
        report = "\n".join(lines) + "\n"
        print(report)
        out = HERE / "results"
        out.mkdir(exist_ok=True)
        (out / f"maven-read-{datetime.now():%Y%m%d-%H%M%S}.md").write_text(report)
        return 0
    finally:
        for p in reversed(procs):
            stop(p)


if __name__ == "__main__":
    sys.exit(main())
