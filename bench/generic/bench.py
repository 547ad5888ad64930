"""Generic repositories vs nginx serving the same files (loopback only, bounded runs).

    .venv/bin/python bench/generic/bench.py [--quick] [--workers N] [--upload-mb 1024] [--json out.json]

Measures: small-file GET req/s (wrk, 4 KiB file), 50 MiB download throughput (curl, best of 5), upload
throughput of a streamed 1 GiB PUT (curl -T) and the server's peak RSS during it (VmHWM of every server process,
from /proc). nginx serves a copy of the same files from a static root (sendfile on, as in production setups).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHARF = os.environ.get("WHARF_BIN", str(Path(sys.executable).with_name("wharf")))
TOKEN = "wharf_generic_bench_token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def tree(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                ppid = int(open(f"/proc/{e}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(e))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def status_kib(pid: int, field: str) -> int:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def curl(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(["curl", "-q", "-sS", "--noproxy", "*", *args], capture_output=True, text=True, env=env,
                          check=True).stdout


def wrk(url: str, seconds: int, conns: int) -> float:
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", url], capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw errors: {out}")
    return float(m.group(1)) if m else 0.0


def download_mbps(url: str, runs: int) -> float:
    best = 0.0
    for _ in range(runs):
        speed = float(curl("-o", "/dev/null", "-w", "%{speed_download}", url))
        best = max(best, speed / 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--upload-mb", type=int, default=1024)
    ap.add_argument("--json")
    args = ap.parse_args()
    seconds = 3 if args.quick else 10
    upload_mb = min(args.upload_mb, 200) if args.quick else args.upload_mb
    work = Path(tempfile.mkdtemp(prefix="wharf-generic-bench-"))
    os.chmod(work, 0o755)  # nginx workers (nobody when started as root) read the static root
    procs: list[subprocess.Popen] = []
    results: dict[str, object] = {"workers": args.workers}
    try:
        # files: 4 KiB and 50 MiB, in Wharf and in nginx's root
        small, big = os.urandom(4096), os.urandom(50 * 1024 * 1024)
        static = work / "static" / "bench" / "dist"
        static.mkdir(parents=True)
        (static / "small.bin").write_bytes(small)
        (static / "big.bin").write_bytes(big)

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
        env.update(WHARF_BOOTSTRAP_TOKEN=TOKEN, WHARF_ACCESS_LOG="false")
        wharf = subprocess.Popen([WHARF, "serve", "--data", str(work / "data"), "--host", "127.0.0.1", "--port",
                                  str(port), "--workers", str(args.workers)], env=env, stdout=open(work / "wharf.log", "wb"),
                                 stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(wharf)
        base = f"http://127.0.0.1:{port}"
        wait(base + "/health")
        auth = ["-H", f"Authorization: Bearer {TOKEN}"]
        curl(*auth, "-H", "content-type: application/json", "-X", "POST", base + "/api/v1/repositories",
             "-d", json.dumps({"name": "bench", "format": "generic", "config": {"max_upload_size": (upload_mb + 1) << 20}}))
        curl(*auth, "-T", str(static / "small.bin"), base + "/bench/dist/small.bin")
        curl(*auth, "-T", str(static / "big.bin"), base + "/bench/dist/big.bin")

        nport = free_port()
        conf = work / "nginx.conf"
        conf.write_text(f"""worker_processes {args.workers};
pid {work}/nginx.pid; error_log {work}/nginx-error.log; daemon off;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; tcp_nopush on; etag on;
  client_body_temp_path {work}/ntmp; proxy_temp_path {work}/ntmp; fastcgi_temp_path {work}/ntmp;
  uwsgi_temp_path {work}/ntmp; scgi_temp_path {work}/ntmp;
  server {{ listen 127.0.0.1:{nport}; root {work}/static; }} }}
""")
        (work / "ntmp").mkdir()
        nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-p", str(work)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(nginx)
        nbase = f"http://127.0.0.1:{nport}"
        wait(nbase + "/bench/dist/small.bin")

        for name, url in (("wharf", base), ("nginx", nbase)):
            results[f"{name}_small_get_rps"] = round(wrk(url + "/bench/dist/small.bin", seconds, 32))
            results[f"{name}_50mb_download_MBps"] = round(download_mbps(url + "/bench/dist/big.bin", 2 if args.quick else 5), 1)
            print(name, {k: v for k, v in results.items() if k.startswith(name)}, flush=True)
        results["wharf_listing_rps"] = round(wrk(base + "/bench/dist/", seconds, 32))

        # a streamed upload of upload_mb MiB: throughput and peak RSS of the server processes
        upload = work / "upload.bin"
        block = os.urandom(1 << 20)
        with open(upload, "wb") as fh:
            for _ in range(upload_mb):
                fh.write(block)
        pids = tree(wharf.pid)
        before = {p: status_kib(p, "VmHWM") for p in pids}
        rss_before = {p: status_kib(p, "VmRSS") for p in pids}
        t0 = time.perf_counter()
        out = curl(*auth, "-T", str(upload), "-w", "\n%{http_code}", base + "/bench/big/upload.bin")
        elapsed = time.perf_counter() - t0
        assert out.strip().endswith("201"), out[-300:]
        after = {p: status_kib(p, "VmHWM") for p in pids}
        results["upload_MiB"] = upload_mb
        results["upload_MBps"] = round(upload_mb * 1.048576 / elapsed, 1)
        results["server_rss_before_MiB"] = {p: round(v / 1024, 1) for p, v in rss_before.items()}
        results["server_peak_rss_growth_MiB"] = {p: round((after[p] - before[p]) / 1024, 1) for p in pids}
        print(json.dumps(results, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
