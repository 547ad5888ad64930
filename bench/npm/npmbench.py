"""npm benchmarks (run by bench/npm/run.sh; loopback only, every loop bounded in time and count).

(a) packuments: a hosted npm repository with N packages (default 2,000; 10% scoped), GET random abbreviated
    packuments with wrk, Wharf vs nginx serving the same packuments as static files; req/s and the ratio.
(b) install: `npm install` of a 30-dependency project (25 public packages + 5 internal @acme/* ones, with
    transitive dependencies) with a cold npm cache, from a warm Wharf group (hosted + proxy) vs Verdaccio proxying
    the same upstream (a second Wharf on loopback) and hosting the same internal packages; with and without a
    lockfile (`npm ci` / `npm install`), rounds interleaved, medians reported.

Usage: python npmbench.py --work DIR --wharf BIN --verdaccio BIN [--packages 2000] [--rounds 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("WHARF_SHARED_BENCH", HERE.parents[2].parent / "shared" / "bench"))
sys.path.insert(0, str(SHARED))

import loadgen  # noqa: E402  (the shared harness: wrk driver with random paths)

ABBR = "application/vnd.npm.install-v1+json"
TOKEN = "wharf_bench_" + os.urandom(12).hex()


def log(msg: str) -> None:
    print(f"[npmbench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: Any = None, token: str | None = TOKEN, headers: dict[str, str] | None = None,
         timeout: float = 60) -> tuple[int, bytes]:
    assert url.startswith("http://127.0.0.1:"), url
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ok(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


class Proc:
    """A server process we started (stopped by its own PID / process group, never by name)."""

    def __init__(self, cmd: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


def start_wharf(wharf: str, data: Path, workers: int) -> tuple[Proc, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
    env.update(WHARF_BOOTSTRAP_TOKEN=TOKEN, WHARF_ACCESS_LOG="false")
    data.mkdir(parents=True, exist_ok=True)
    p = Proc([wharf, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port), "--workers",
              str(workers)], data.parent / f"{data.name}.log", env=env)
    url = f"http://127.0.0.1:{port}"
    wait_ok(url + "/health", p.proc)
    return p, url


def create_repo(base: str, name: str, kind: str = "hosted", **config: Any) -> None:
    st, body = http("POST", base + "/api/v1/repositories",
                    {"name": name, "format": "npm", "kind": kind, "private": False, "config": config})
    assert st == 201, body


# -- packages ---------------------------------------------------------------------------------------------------
def tarball(name: str, version: str, deps: dict[str, str], size: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    pkg = {"name": name, "version": version, "description": f"bench package {name}", "main": "index.js",
           "license": "MIT", "dependencies": deps}
    files = [("package/package.json", json.dumps(pkg, indent=2).encode()),
             ("package/index.js", f"module.exports = {json.dumps(name)};\n".encode()),
             ("package/README.md", (f"# {name}\n\n" + "lorem ipsum dolor sit amet " * 20).encode()),
             ("package/data.bin", rnd.randbytes(size))]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in files:
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 499162500
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def publish_doc(name: str, version: str, tgz: bytes, deps: dict[str, str]) -> dict[str, Any]:
    manifest = {"name": name, "version": version, "description": f"bench package {name}", "main": "index.js",
                "license": "MIT", "dependencies": deps, "_id": f"{name}@{version}",
                "dist": {"integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode(),
                         "shasum": hashlib.sha1(tgz).hexdigest(),
                         "tarball": f"http://127.0.0.1/{name}/-/{name.split('/')[-1]}-{version}.tgz"}}
    return {"_id": name, "name": name, "description": manifest["description"], "dist-tags": {"latest": version},
            "versions": {version: manifest}, "access": "public",
            "_attachments": {f"{name}-{version}.tgz": {"content_type": "application/octet-stream",
                                                      "data": base64.b64encode(tgz).decode(), "length": len(tgz)}}}


def publish(registry: str, name: str, version: str, deps: dict[str, str] | None = None, size: int = 2048,
            token: str | None = TOKEN, seed: int = 0) -> None:
    deps = deps or {}
    doc = publish_doc(name, version, tarball(name, version, deps, size, seed), deps)
    st, body = http("PUT", registry.rstrip("/") + "/" + name.replace("/", "%2f"), doc, token=token)
    assert st in (200, 201), (name, st, body[:300])


def escaped(name: str) -> str:
    return name.replace("/", "%2f")


# -- (a) packuments vs nginx -----------------------------------------------------------------------------------
NGINX_CONF = """\
worker_processes 1;
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
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    default_type application/vnd.npm.install-v1+json;
    etag on;
    server {{
        listen 127.0.0.1:{port};
        root {static};
        location = /health {{ return 200 "ok"; }}
        location / {{ try_files $uri =404; }}
    }}
}}
"""


def bench_packuments(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    wharf, base = start_wharf(a.wharf, work / "wharf-a", a.workers)
    nginx = None
    try:
        create_repo(base, "bench")
        reg = f"{base}/bench/"
        names = [f"@bench/pkg-{i}" if i % 10 == 0 else f"bench-pkg-{i}" for i in range(a.packages)]
        t0 = time.time()
        jobs = [(n, f"1.{v}.0") for v in range(a.versions) for n in names]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for v in range(a.versions):  # versions in order, packages in parallel
                list(pool.map(lambda n: publish(reg, n, f"1.{v}.0", size=512, seed=hash(n) & 0xffff), names))
        load_s = time.time() - t0
        log(f"(a) published {len(jobs)} versions of {len(names)} packages in {load_s:.1f}s "
            f"({len(jobs) / load_s:.0f} publishes/s, 8 threads)")
        # the same abbreviated packuments, as static files for nginx (what `npm install` fetches)
        prefix = work / "nginx"
        static = prefix / "static"
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        sizes = []
        for n in names:
            st, body = http("GET", reg + escaped(n), token=None, headers={"Accept": ABBR})
            assert st == 200, (n, st)
            sizes.append(len(body))
            path = static / n
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        for d, _, _ in os.walk(static):
            os.chmod(d, 0o755)
        port = free_port()
        (prefix / "nginx.conf").write_text(NGINX_CONF.format(prefix=prefix, port=port, static=static))
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        nginx = Proc([nginx_bin, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(prefix / "nginx.conf")],
                     prefix / "stdout.log")
        ngx = f"http://127.0.0.1:{port}"
        wait_ok(ngx + "/health", nginx.proc)
        paths_w = [f"/bench/{escaped(n)}" for n in names]
        paths_n = [f"/{escaped(n)}" for n in names]
        st, body = http("GET", ngx + paths_n[0], token=None)
        assert st == 200 and json.loads(body)["name"] == names[0]
        runs: dict[str, list[dict[str, Any]]] = {"wharf": [], "nginx": []}
        for rnd in range(a.rounds):  # interleaved, so machine noise hits both alike
            for target, origin, paths in (("wharf", base, paths_w), ("nginx", ngx, paths_n)):
                r = loadgen.run_load(origin, paths, concurrency=a.concurrency, duration=a.duration, accept=ABBR,
                                     seed=rnd + 1)
                assert r["status_4xx_5xx"] == 0 and not r["errors"], (target, r)
                runs[target].append(r)
                log(f"(a) round {rnd + 1} {target}: {r['rps']:,.0f} req/s, p99 {r['p99_ms']:.2f} ms")
        med = {t: statistics.median(x["rps"] for x in rs) for t, rs in runs.items()}
        p99 = {t: statistics.median(x["p99_ms"] for x in rs) for t, rs in runs.items()}
        return {"packages": len(names), "versions_each": a.versions, "load_s": round(load_s, 1),
                "packument_bytes_median": statistics.median(sizes), "concurrency": a.concurrency,
                "duration_s": a.duration, "rounds": a.rounds, "engine": runs["wharf"][0]["engine"],
                "wharf_rps": round(med["wharf"]), "nginx_rps": round(med["nginx"]),
                "ratio": round(med["wharf"] / med["nginx"], 4), "wharf_p99_ms": p99["wharf"],
                "nginx_p99_ms": p99["nginx"], "workers": a.workers, "runs": runs}
    finally:
        if nginx is not None:
            nginx.stop()
        wharf.stop()


# -- (b) npm install: Wharf group vs Verdaccio -----------------------------------------------------------------
VERDACCIO_CONF = """\
storage: {storage}
auth:
  htpasswd:
    file: {htpasswd}
    max_users: 100
uplinks:
  up:
    url: {upstream}
    cache: true
packages:
  '@acme/*':
    access: $all
    publish: $authenticated
  '**':
    access: $all
    publish: $authenticated
    proxy: up
server:
  keepAliveTimeout: 60
log: {{ type: stdout, format: pretty, level: warn }}
"""


def npm_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith(("npm_", "wharf_"))}
    env.update(HOME=str(home), NO_COLOR="1", npm_config_update_notifier="false")
    return env


def npm_install(registry: str, project: Path, cache: Path, *, ci: bool, timeout: float = 300) -> float:
    rc = project.parent / f"{project.name}.npmrc"
    rc.write_text(f"registry={registry}\nfund=false\naudit=false\nupdate-notifier=false\n")
    empty = project.parent / "empty.npmrc"
    empty.write_text("")
    shutil.rmtree(project / "node_modules", ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    cmd = ["npm", "ci" if ci else "install", "--no-audit", "--no-fund", "--userconfig", str(rc),
           "--globalconfig", str(empty), "--cache", str(cache), "--loglevel=error"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=project, env=npm_env(project.parent / "home"), capture_output=True, text=True,
                       timeout=timeout)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"npm {'ci' if ci else 'install'} against {registry} failed: {r.stdout[-2000:]} {r.stderr[-2000:]}")
    return dt


def bench_install(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    upstream, up_base = start_wharf(a.wharf, work / "upstream", 1)
    wharf = verdaccio = None
    try:
        create_repo(up_base, "public")
        up_reg = f"{up_base}/public/"
        libs = [f"bench-lib-{i}" for i in range(8)]
        public = [f"bench-dep-{i}" for i in range(25)]
        internal = [f"@acme/internal-{i}" for i in range(5)]
        for i, lib in enumerate(libs):
            for v in ("1.0.0", "1.1.0", "2.0.0"):
                publish(up_reg, lib, v, size=a.tarball_kb * 1024, seed=i)
        for i, dep in enumerate(public):
            deps = {libs[i % len(libs)]: "^1.0.0", libs[(i * 3 + 1) % len(libs)]: "^2.0.0"} if i % 2 == 0 else {}
            for v in ("1.0.0", "1.0.1"):
                publish(up_reg, dep, v, deps, size=a.tarball_kb * 1024, seed=100 + i)
        log(f"(b) upstream: {len(libs)} libs x3 + {len(public)} deps x2 versions at {up_reg}")

        wharf, base = start_wharf(a.wharf, work / "wharf-b", a.workers)
        create_repo(base, "internal")
        create_repo(base, "remote", kind="proxy", upstream={"url": up_reg})
        create_repo(base, "npm", kind="group", members=["internal", "remote"], default_member="internal",
                    reserved=["@acme/*"])
        wharf_reg = f"{base}/npm/"

        vport = free_port()
        vdir = work / "verdaccio"
        (vdir / "storage").mkdir(parents=True, exist_ok=True)
        (vdir / "config.yaml").write_text(VERDACCIO_CONF.format(storage=vdir / "storage", htpasswd=vdir / "htpasswd",
                                                                upstream=up_reg))
        verdaccio = Proc([a.verdaccio, "--config", str(vdir / "config.yaml"), "--listen", f"127.0.0.1:{vport}"],
                         vdir / "verdaccio.log", env=npm_env(vdir), cwd=vdir)
        v_reg = f"http://127.0.0.1:{vport}/"
        wait_ok(v_reg + "-/ping", verdaccio.proc)
        st, body = http("PUT", v_reg + "-/user/org.couchdb.user:bench", token=None,
                        body={"_id": "org.couchdb.user:bench", "name": "bench", "password": "bench-password-1",
                              "type": "user", "roles": []})
        assert st in (200, 201), body
        v_token = json.loads(body)["token"]
        for i, name in enumerate(internal):
            deps = {public[i]: "^1.0.0"}
            publish(wharf_reg, name, "1.0.0", deps, size=a.tarball_kb * 1024, seed=200 + i)
            publish(v_reg, name, "1.0.0", deps, size=a.tarball_kb * 1024, seed=200 + i, token=v_token)

        deps = {n: "^1.0.0" for n in public + internal}
        projects = {}
        for target in ("wharf", "verdaccio"):
            p = work / f"project-{target}"
            shutil.rmtree(p, ignore_errors=True)
            p.mkdir(parents=True)
            (p / "package.json").write_text(json.dumps({"name": "bench-app", "version": "1.0.0", "private": True,
                                                        "dependencies": deps}, indent=2))
            projects[target] = p
        regs = {"wharf": wharf_reg, "verdaccio": v_reg}
        # warm both registries (their proxies fetch and cache everything), then keep the lockfile each made
        for target in regs:
            dt = npm_install(regs[target], projects[target], work / f"cache-{target}", ci=False)
            n = len(json.loads((projects[target] / "package-lock.json").read_text())["packages"]) - 1
            log(f"(b) warm-up {target}: {dt:.2f}s ({n} packages installed)")
        locks = {t: (projects[t] / "package-lock.json").read_text() for t in regs}
        times: dict[str, dict[str, list[float]]] = {t: {"install": [], "ci": []} for t in regs}
        order = list(regs)
        for rnd in range(a.install_rounds):
            for target in (order if rnd % 2 == 0 else order[::-1]):
                for mode in ("install", "ci"):
                    lock = projects[target] / "package-lock.json"
                    if mode == "install":
                        lock.unlink(missing_ok=True)
                    else:
                        lock.write_text(locks[target])
                    dt = npm_install(regs[target], projects[target], work / f"cache-{target}", ci=mode == "ci")
                    times[target][mode].append(dt)
            log(f"(b) round {rnd + 1}: " + ", ".join(f"{t} {m} {times[t][m][-1]:.2f}s" for t in regs
                                                     for m in ("install", "ci")))
        med = {t: {m: statistics.median(v) for m, v in d.items()} for t, d in times.items()}
        return {"direct_dependencies": len(deps), "packages_installed": n, "rounds": a.install_rounds,
                "tarball_kb": a.tarball_kb, "verdaccio_version": a.verdaccio_version,
                "median_s": med, "ratio_install": round(med["wharf"]["install"] / med["verdaccio"]["install"], 3),
                "ratio_ci": round(med["wharf"]["ci"] / med["verdaccio"]["ci"], 3), "times": times}
    finally:
        for p in (verdaccio, wharf, upstream):
            if p is not None:
                p.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--wharf", required=True)
    ap.add_argument("--verdaccio", required=True)
    ap.add_argument("--verdaccio-version", default="?")
    ap.add_argument("--results", default=str(HERE.parent / "results"))
    ap.add_argument("--packages", type=int, default=2000)
    ap.add_argument("--versions", type=int, default=1, help="versions per package in (a)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=int(os.environ.get("WHARF_WORKERS", "1")))
    ap.add_argument("--install-rounds", type=int, default=5)
    ap.add_argument("--tarball-kb", type=int, default=16)
    ap.add_argument("--only", choices=("packuments", "install"), default=None)
    a = ap.parse_args()
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "loadavg_start": os.getloadavg()}
    if a.only in (None, "packuments"):
        out["packuments"] = bench_packuments(a, work)
    if a.only in (None, "install"):
        out["install"] = bench_install(a, work)
    out["loadavg_end"] = os.getloadavg()
    results = Path(a.results)
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"npm-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=2))
    print(summary(out))
    log(f"results: {path}")
    return 0


def summary(out: dict[str, Any]) -> str:
    lines = ["| benchmark | Wharf | reference | ratio | target |", "|---|---|---|---|---|"]
    p = out.get("packuments")
    if p:
        lines.append(f"| (a) abbreviated packument GET, {p['packages']} packages, c={p['concurrency']} | "
                     f"{p['wharf_rps']:,} req/s (p99 {p['wharf_p99_ms']:.2f} ms) | nginx static {p['nginx_rps']:,} req/s "
                     f"(p99 {p['nginx_p99_ms']:.2f} ms) | {p['ratio'] * 100:.1f} % of nginx | Python index: ~25 % |")
    i = out.get("install")
    if i:
        m = i["median_s"]
        for mode, label in (("install", "npm install (no lockfile)"), ("ci", "npm ci (lockfile)")):
            ratio = i["ratio_install"] if mode == "install" else i["ratio_ci"]
            lines.append(f"| (b) {label}, {i['direct_dependencies']} deps, cold npm cache, warm registry | "
                         f"{m['wharf'][mode]:.2f} s (group: hosted + proxy) | Verdaccio {i['verdaccio_version']} "
                         f"{m['verdaccio'][mode]:.2f} s | {ratio:.2f}x | <= 1.3x "
                         f"{'PASS' if ratio <= 1.3 else 'FAIL'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
