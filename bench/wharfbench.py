#!/usr/bin/env python3
"""Helpers shared by Wharf's benchmark scripts (stdlib only).

- locate and import the shared index-benchmark harness (../shared/bench, or $WHARF_SHARED_BENCH)
- start / stop a Wharf server on a fresh data dir (loopback only, PID-checked stop)
- create a repository, upload files through the legacy (twine) API with a small multipart
  encoder over keep-alive http.client connections
- build tiny valid wheels in memory (the shared harness's build_wheel)

CLI (used by run.sh):
  wharfbench.py start --data DIR --state FILE [--wharf EXE] [--port P] [--workers N]
                      [--token T] [--repo bench] [--access-log]
  wharfbench.py stop --state FILE
"""
from __future__ import annotations

import argparse
import base64
import email.parser
import hashlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# ------------------------------------------------------------------ shared harness
def repo_root() -> str:
    try:
        r = subprocess.run(["git", "-C", HERE, "rev-parse", "--show-toplevel"], capture_output=True,
                           text=True, timeout=10)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return os.path.dirname(HERE)


def shared_bench_dir() -> str:
    d = os.environ.get("WHARF_SHARED_BENCH") or os.path.join(repo_root(), "..", "shared", "bench")
    d = os.path.abspath(d)
    if not os.path.exists(os.path.join(d, "run.py")):
        raise SystemExit(f"shared benchmark harness not found at {d} (set WHARF_SHARED_BENCH)")
    return d


def import_shared():
    """Import benchutil, loadgen and make_corpus from the shared harness (by path)."""
    d = shared_bench_dir()
    if d not in sys.path:
        sys.path.insert(0, d)
    import benchutil  # noqa: PLC0415
    import loadgen  # noqa: PLC0415
    import make_corpus  # noqa: PLC0415
    return benchutil, loadgen, make_corpus


def assert_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host not in LOOPBACK and not host.startswith("127."):
        raise SystemExit(f"refusing non-loopback URL {url!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str, tag: str = "wharf-bench") -> None:
    print(f"[{tag} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ /proc
def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def pid_alive(pid: int) -> bool:
    try:
        return _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def proc_tree(pid: int) -> list[int]:
    if not pid_alive(pid):
        return []
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(_read(f"/proc/{d}/stat").rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def status_kb(pid: int, key: str) -> int:
    try:
        for line in _read(f"/proc/{pid}/status").splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_report(pid: int) -> dict:
    """VmRSS / VmHWM of the server's process tree (MB), total and per process."""
    tree = proc_tree(pid)
    per = {p: round(status_kb(p, "VmRSS") / 1024, 1) for p in tree}
    procs = []
    for p in tree:
        try:
            cmd = _read(f"/proc/{p}/cmdline").replace("\0", " ").strip()
        except OSError:
            cmd = ""
        procs.append({"pid": p, "rss_mb": per[p], "hwm_mb": round(status_kb(p, "VmHWM") / 1024, 1),
                      "threads": status_kb(p, "Threads"), "cmd": cmd[:120]})
    return {"pids": len(tree), "rss_mb_total": round(sum(per.values()), 1),
            "rss_mb_max_process": max(per.values()) if per else None,
            "rss_mb_main": per.get(pid), "hwm_mb_total": round(sum(x["hwm_mb"] for x in procs), 1),
            "procs": procs}


def cpu_seconds(pid: int) -> float:
    tot = 0
    for p in proc_tree(pid):
        try:
            f = _read(f"/proc/{p}/stat").rsplit(")", 1)[1].split()
            tot += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return tot / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ HTTP
def http_request(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None,
                 timeout: float = 30.0) -> tuple[int, dict, bytes]:
    assert_loopback(url)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.request(method, (u.path or "/") + (("?" + u.query) if u.query else ""), body=body,
                     headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def wait_health(base: str, timeout: float, pid: int | None = None) -> float:
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        if pid is not None and not pid_alive(pid):
            raise RuntimeError(f"server pid {pid} exited while waiting for {base}/health")
        try:
            st, _, _ = http_request(base + "/health", timeout=5)
            if st == 200:
                return time.time() - t0
            last = f"HTTP {st}"
        except OSError as e:
            last = repr(e)
        time.sleep(0.1)
    raise TimeoutError(f"{base}/health not ready after {timeout}s (last: {last})")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def create_repo(base: str, token: str, name: str, fmt: str = "python", kind: str = "hosted") -> int:
    body = json.dumps({"name": name, "format": fmt, "kind": kind}).encode()
    st, _, data = http_request(base + "/api/v1/repositories", "POST", body,
                               {**bearer(token), "Content-Type": "application/json"})
    if st not in (200, 201, 409):
        raise RuntimeError(f"create repository {name!r}: HTTP {st}: {data[:300]!r}")
    return st


# ------------------------------------------------------------------ legacy upload
def wheel_metadata(data: bytes) -> dict:
    """Core metadata from a wheel's .dist-info/METADATA (first one found)."""
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        name = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1), None)
        if not name:
            return {}
        raw = zf.read(name).decode("utf-8", "replace")
    return parse_metadata(raw)


def parse_metadata(raw: str) -> dict:
    msg = email.parser.HeaderParser().parsestr(raw)
    out: dict = {}
    for k in ("Metadata-Version", "Name", "Version", "Summary", "Author", "License", "Requires-Python",
              "Description-Content-Type"):
        if msg.get(k):
            out[k.lower().replace("-", "_")] = msg.get(k)
    for k in ("Classifier", "Requires-Dist"):
        vals = msg.get_all(k) or []
        if vals:
            out[k.lower().replace("-", "_") + "s"] = vals
    body = msg.get_payload()
    if isinstance(body, str) and body.strip():
        out["description"] = body
    return out


def upload_fields(filename: str, data: bytes, meta: dict | None = None, sha256: str | None = None) -> list:
    """Form fields as twine sends them for the legacy upload API."""
    meta = meta if meta is not None else (wheel_metadata(data) if filename.endswith(".whl") else {})
    if filename.endswith(".whl"):
        filetype = "bdist_wheel"
        parts = filename[:-4].split("-")
        pyversion = parts[-3] if len(parts) >= 5 else "py3"
        name_fb, version_fb = parts[0], parts[1] if len(parts) > 1 else "0"
    else:
        filetype, pyversion = "sdist", "source"
        stem = filename.rsplit(".tar.gz", 1)[0].rsplit(".zip", 1)[0]
        name_fb, _, version_fb = stem.rpartition("-")
    f = [(":action", "file_upload"), ("protocol_version", "1"),
         ("name", meta.get("name", name_fb)), ("version", meta.get("version", version_fb)),
         ("filetype", filetype), ("pyversion", pyversion),
         ("metadata_version", meta.get("metadata_version", "2.1")),
         ("sha256_digest", sha256 or hashlib.sha256(data).hexdigest()),
         ("md5_digest", hashlib.md5(data).hexdigest()),
         ("blake2_256_digest", hashlib.blake2b(data, digest_size=32).hexdigest())]
    for k in ("summary", "author", "license", "requires_python", "description_content_type", "description"):
        if meta.get(k):
            f.append((k, meta[k]))
    for v in meta.get("classifiers", []):
        f.append(("classifiers", v))
    for v in meta.get("requires_dists", []):
        f.append(("requires_dist", v))
    return f


def encode_multipart(fields: list, filename: str, data: bytes, file_field: str = "content") -> tuple[str, bytes]:
    boundary = secrets.token_hex(16)
    b = boundary.encode()
    parts = []
    for k, v in fields:
        parts.append(b"--" + b + b'\r\nContent-Disposition: form-data; name="' + k.encode() + b'"\r\n\r\n'
                     + str(v).encode() + b"\r\n")
    parts.append(b"--" + b + b'\r\nContent-Disposition: form-data; name="' + file_field.encode()
                 + b'"; filename="' + filename.encode() + b'"\r\nContent-Type: application/octet-stream\r\n\r\n')
    parts.append(data)
    parts.append(b"\r\n--" + b + b"--\r\n")
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


class Uploader:
    """Thread-safe legacy uploader: one keep-alive connection per thread."""

    def __init__(self, upload_url: str, auth_headers: dict, timeout: float = 120.0):
        assert_loopback(upload_url)
        u = urllib.parse.urlsplit(upload_url)
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path or "/"
        self.auth, self.timeout = auth_headers, timeout
        self._local = threading.local()

    def _conn(self, fresh: bool = False) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = c
        return c

    def close(self):
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    def upload(self, filename: str, data: bytes, meta: dict | None = None, sha256: str | None = None) -> dict:
        """One POST; returns {status, s, error?}.  Reconnects once on a dropped keep-alive connection."""
        ctype, body = encode_multipart(upload_fields(filename, data, meta, sha256), filename, data)
        hdrs = {**self.auth, "Content-Type": ctype, "Content-Length": str(len(body)),
                "User-Agent": "wharf-bench-loader"}
        for attempt in (0, 1):
            conn = self._conn(fresh=attempt > 0)
            t0 = time.perf_counter()
            try:
                conn.request("POST", self.path, body=body, headers=hdrs)
                r = conn.getresponse()
                resp = r.read()
                dt = time.perf_counter() - t0
                if r.getheader("connection", "").lower() == "close":
                    self.close()
                out = {"status": r.status, "s": dt}
                if r.status >= 300:
                    out["error"] = resp[:300].decode("utf-8", "replace")
                return out
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if attempt:
                    return {"status": 0, "s": time.perf_counter() - t0, "error": f"{type(e).__name__}: {e}"}
        return {"status": 0, "s": 0.0, "error": "unreachable"}


def tiny_wheel(name: str, version: str) -> tuple[str, bytes]:
    """Minimal valid wheel (METADATA, WHEEL, RECORD + one module) via the shared build_wheel."""
    _, _, mc = import_shared()
    mod = mc.wheel_escape(name)
    return mc.build_wheel(name, version, {f"{mod}/__init__.py": f"V = {version!r}\n".encode()},
                          summary="wharf scaling bench", description="tiny")


def tiny_meta(name: str, version: str) -> dict:
    return {"metadata_version": "2.1", "name": name, "version": version, "summary": "wharf scaling bench",
            "author": "bench", "license": "MIT"}


# ------------------------------------------------------------------ server lifecycle
class WharfServer:
    def __init__(self, wharf: str, data: str, port: int | None = None, workers: int | None = None,
                 token: str | None = None, access_log: bool = False, log_path: str | None = None,
                 extra: list[str] | None = None):
        self.wharf, self.data = os.path.abspath(wharf), os.path.abspath(data)
        self.port = port or free_port()
        self.workers, self.access_log = workers, access_log
        self.token = token or ("bench-" + secrets.token_urlsafe(24))
        self.log_path = log_path or os.path.join(os.path.dirname(self.data), "wharf-server.log")
        self.extra = extra or []
        self.pid: int | None = None
        self.cmd: list[str] = []
        self.startup_s: float | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> "WharfServer":
        if os.path.exists(self.data) and os.listdir(self.data):
            raise SystemExit(f"data dir {self.data} is not empty; the benchmark needs a fresh one")
        os.makedirs(self.data, exist_ok=True)
        self.cmd = [self.wharf, "serve", "--data", self.data, "--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers:
            self.cmd += ["--workers", str(self.workers)]
        if not self.access_log:
            self.cmd += ["--no-access-log"]
        self.cmd += self.extra
        env = dict(os.environ, WHARF_BOOTSTRAP_TOKEN=self.token)
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(k, None)
        logf = open(self.log_path, "ab")
        t0 = time.time()
        proc = subprocess.Popen(self.cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        logf.close()
        self.pid = proc.pid
        try:
            wait_health(self.base, timeout, self.pid)
        except BaseException:
            self.stop()
            raise RuntimeError(f"wharf did not become healthy; log tail:\n{self.log_tail()}")
        self.startup_s = round(time.time() - t0, 3)
        return self

    def log_tail(self, n: int = 40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> str:
        return stop_server(self.pid, self.data, timeout) if self.pid else "not started"

    def state(self) -> dict:
        return {"pid": self.pid, "port": self.port, "base": self.base, "token": self.token, "data": self.data,
                "log": self.log_path, "cmd": self.cmd, "workers": self.workers, "startup_s": self.startup_s}


def _settings_name(pid: int, data: str) -> bool:
    """`wharf serve` execs a slim supervisor (`python -m wharf.supervisor`) whose command line no longer names
    the data dir; the settings it was started with are in its environment (WHARF_SETTINGS_JSON)."""
    try:
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    except OSError:
        return False
    for item in env:
        if item.startswith(b"WHARF_SETTINGS_JSON="):
            try:
                got = json.loads(item.split(b"=", 1)[1]).get("data")
                return isinstance(got, str) and os.path.realpath(got) == os.path.realpath(data)
            except ValueError:
                return False
    return False


def stop_server(pid: int, match: str, timeout: float = 20.0) -> str:
    """SIGTERM the server PID we started (if its command line still names our data dir), then
    SIGKILL it and any of its descendants still alive after `timeout`, one PID at a time."""
    if not pid_alive(pid):
        return "not running"
    try:
        cmdline = _read(f"/proc/{pid}/cmdline").replace("\0", " ")
    except OSError:
        return "not running"
    if match not in cmdline and not _settings_name(pid, match):
        return f"pid {pid} runs {cmdline[:80]!r}; not touching it"
    tree = proc_tree(pid)
    os.kill(pid, signal.SIGTERM)
    t0 = time.time()
    while time.time() - t0 < timeout:
        if not any(pid_alive(p) for p in tree):
            return "stopped"
        time.sleep(0.1)
    for p in tree:
        if pid_alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return "killed"


def pending_tasks(base: str, token: str) -> int:
    """Background tasks due now or running (the scheduled retention run, due later, does not count): the whole
    queue's counts, not a page of it."""
    st, _, data = http_request(f"{base}/api/v1/tasks/summary", headers=bearer(token))
    if st != 200:
        raise RuntimeError(f"GET /api/v1/tasks/summary: HTTP {st} {data[:200]!r}")
    counts = json.loads(data)
    return int(counts["due"]) + int(counts["running"])


def drain(base: str, token: str, pid: int | None, timeout: float, helper_grace: float = 45.0) -> dict:
    """After a bulk load: wait until the background work it queued (vetting scans) is done and the helpers have
    ended (they exit after 30 s idle), so measurements see the steady-state server. Bounded by ``timeout``."""
    t0 = time.time()
    left = pending_tasks(base, token)
    first = left
    while left and time.time() - t0 < timeout:
        time.sleep(1.0)
        left = pending_tasks(base, token)
    tasks_s = time.time() - t0
    helpers = _helpers(pid or 0)
    deadline = time.time() + helper_grace
    while _helpers(pid or 0) and time.time() < deadline:
        time.sleep(1.0)  # the scan helper is given its idle time to end
    return {"tasks_at_start": first, "tasks_left": left, "tasks_s": round(tasks_s, 1),
            "total_s": round(time.time() - t0, 1),
            "scan_helpers": {"before": len(helpers), "after": len(_helpers(pid or 0))}}


def _helpers(pid: int) -> list[int]:
    """The server's helper processes (the task helper that runs scans, tasks/helper.py, and its malware scanner,
    security/sandbox.py), by command line."""
    out = []
    for p in proc_tree(pid):
        try:
            cmd = _read(f"/proc/{p}/cmdline")
            if "wharf.security.sandbox" in cmd or "wharf.tasks.helper" in cmd:
                out.append(p)
        except OSError:
            pass
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start Wharf on a fresh data dir, wait for /health, create a repo")
    s.add_argument("--wharf", default=os.path.join(repo_root(), ".venv", "bin", "wharf"))
    s.add_argument("--data", required=True)
    s.add_argument("--state", required=True, help="JSON file to write pid/port/token into")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int)
    s.add_argument("--token")
    s.add_argument("--repo", default="bench", help="repository to create ('' = none)")
    s.add_argument("--access-log", action="store_true")
    s.add_argument("--log")
    s.add_argument("--timeout", type=float, default=120)
    t = sub.add_parser("stop")
    t.add_argument("--state", required=True)
    d = sub.add_parser("drain", help="wait until the server's queued background work is done (bounded)")
    d.add_argument("--state", required=True)
    d.add_argument("--timeout", type=float, default=900)
    d.add_argument("--json", help="write what was waited for here")
    a = ap.parse_args(argv)
    if a.cmd == "drain":
        with open(a.state) as f:
            st = json.load(f)
        res = drain(f"http://127.0.0.1:{st['port']}", st["token"], st["pid"], a.timeout)
        log(f"background work: {res['tasks_at_start']} tasks due, {res['tasks_left']} left after {res['tasks_s']} s; "
            f"scan helpers {res['scan_helpers']['before']} -> {res['scan_helpers']['after']} after {res['total_s']} s")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
        return 0 if not res["tasks_left"] else 1
    if a.cmd == "start":
        srv = WharfServer(a.wharf, a.data, a.port, a.workers, a.token, a.access_log, a.log)
        log(f"starting: {' '.join([srv.wharf, 'serve', '--data', srv.data, '...'])} on port {srv.port}")
        srv.start(a.timeout)
        st = srv.state()
        with open(a.state, "w") as f:
            json.dump(st, f, indent=1)
        os.chmod(a.state, 0o600)
        log(f"wharf pid={srv.pid} healthy after {srv.startup_s}s")
        if a.repo:
            try:
                code = create_repo(srv.base, srv.token, a.repo)
            except BaseException:
                srv.stop()
                raise
            log(f"repository {a.repo!r}: HTTP {code}")
        print(json.dumps({k: v for k, v in st.items() if k != "token"}))
    else:
        with open(a.state) as f:
            st = json.load(f)
        res = stop_server(st["pid"], st["data"])
        log(f"wharf pid {st['pid']}: {res}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
