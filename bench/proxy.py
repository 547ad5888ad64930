#!/usr/bin/env python3
"""Wharf proxy / group repositories: warm index pages and cold/warm pip installs, against peers.

Targets (issue):
  1. warm /simple/<project>/ through a Wharf proxy, and through a Wharf group with a proxy member:
     req/s >= hosted req/s / 1.2 (same pages, same Wharf instance, wrk, medians of rounds).
  2. cold `pip install` of 20 projects through a Wharf proxy <= 1.3x the time of installing them
     directly from the upstream.
  Also reported: warm pip install through the proxy vs direct, and proxpi / devpi-server (as a
  caching mirror) against the same upstream, cold and warm.

Setup
  * upstream: the shared harness's nginx-static peer serving the corpus (peers.py, own workdir);
  * Wharf "main" instance: the hosted repository `bench` loaded with the corpus (started here and
    loaded with load_corpus.py, or an already running one via --state from `wharfbench.py start`);
    in it: proxy `remote` (upstream = nginx-static), group `grp` = [bench, remote] (guard on, the
    default: names held by `bench` are never looked up upstream), group `grp-open` = [bench, remote]
    with guard off (every page is hosted + proxy merged), group `grp-proxy` = [remote];
  * warm-up: every project page crawled once through the proxy (cold: fetched from the upstream;
    timed, reported), then through every group, then once more through everything.

Page stage: wrk (c=16, --duration s, random project pages, Accept: text/html, the shared
loadgen) on hosted / proxy / groups, plus nginx-static and a warm proxpi as references; targets
interleaved round-robin (rotated each round), --rounds rounds, medians.

pip stage: the harness's pip-install scenario (run.py sc_pip_install: pip install --isolated
--no-cache-dir --no-deps --no-compile --only-binary :all: --index-url URL -t TMP, env without
PIP_*) of the same --pip-projects names run.py picks.  Per round:
  cold  direct (nginx-static) | wharf-proxy: a fresh Wharf instance on an empty data dir with a
        new proxy repository (nothing cached: no pages, no blobs) | wharf-proxy-newrepo: a new proxy
        repository in the main instance (pages not cached, but the blobs are already stored by the
        hosted repo, so files are not downloaded from the upstream: Wharf's dedup path) |
        proxpi restarted on an empty cache | devpi-server: a new mirror index
        (type=mirror, mirror_url = nginx-static) in a devpi-server without --offline-mode
  warm  the same again right after (pages and files cached), plus the hosted repository.
Before the cold runs each cold server process is warmed up (imports, connection pools) with one
untimed install of a project that is not among the measured ones, through a separate proxy
repository / mirror index (proxpi has one index: through it).

  proxy.py --corpus /tmp/peers/corpus-200x3                         # starts its own Wharf, loads the corpus
  proxy.py --corpus DIR --state /tmp/w/state.json                   # reuse a running, loaded Wharf
  proxy.py ... --rounds 3 --duration 4 --pip-rounds 3 --no-devpi --json OUT.json --markdown OUT.md

Loopback only; every load loop is bounded by time (wrk -d, hard timeouts) and count (crawls:
one pass; pip: --pip-rounds).  Only PIDs started here are stopped (PID + command line checked).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wharfbench as wb  # noqa: E402

bu, loadgen, mc = wb.import_shared()
import peers  # noqa: E402  (shared harness, on sys.path after import_shared)
import run as harness  # noqa: E402  (shared run.py: Target, ServerMeter, sc_pip_install)

HTML = "text/html"
THRESHOLDS = {"page_rps_factor": 1.2, "cold_pip_factor": 1.3}
PAGE_TARGETS = ("hosted", "proxy", "group", "group-open", "group-proxy", "nginx-static", "proxpi")
WHARF_PAGE_TARGETS = ("hosted", "proxy", "group", "group-open", "group-proxy")


def log(msg: str) -> None:
    wb.log(msg, "proxy")


class Bench:
    def __init__(self, a):
        self.a = a
        self.man = mc.load_manifest(a.corpus)
        self.projects = [p["normalized"] for p in self.man["projects"] if not p["big"]]
        self.tag = format(int(time.time()), "x")
        self.cleanups: list = []  # (label, fn), run in reverse
        self.res: dict = {"meta": {}, "setup": {}, "pages": {}, "pip": {}, "notes": []}
        self.main = None  # dict(base, token, pid, hosted)
        self.nginx = None  # peers state entry
        self.devpi = None

    # ------------------------------------------------------------------ helpers
    def note(self, msg: str) -> None:
        log("NOTE: " + msg)
        self.res["notes"].append(msg)

    def api(self, base: str, token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict | str]:
        data = json.dumps(body).encode() if body is not None else None
        st, _, raw = wb.http_request(base + path, method, data, {**wb.bearer(token), "Content-Type": "application/json"})
        try:
            return st, json.loads(raw) if raw else {}
        except ValueError:
            return st, raw[:300].decode("utf-8", "replace")

    def create(self, base: str, token: str, name: str, kind: str, config: dict | None = None) -> str:
        """Create a python repository; on a name clash (a reused server) retry with the run tag appended."""
        for candidate in (name, f"{name}-{self.tag}"):
            body = {"name": candidate, "format": "python", "kind": kind}
            if config is not None:
                body["config"] = config
            st, out = self.api(base, token, "POST", "/api/v1/repositories", body)
            if st in (200, 201):
                return candidate
            if st != 409:
                raise RuntimeError(f"create {kind} repository {candidate!r}: HTTP {st}: {out}")
        raise RuntimeError(f"repository names {name!r} and {name}-{self.tag} both taken")

    def proxy_config(self) -> dict:
        return {"upstream": {"url": self.nginx["simple_url"]}}

    def settle(self, pids: list[int], timeout: float = 15.0, threshold: float = 0.05, window: float = 0.3) -> float:
        """Wait (bounded) until the given server trees are idle."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            tree = [p for pid in pids if pid for p in bu.proc_tree(pid)]
            if not tree:
                break
            c0 = bu.cpu_seconds(tree)
            time.sleep(window)
            if (bu.cpu_seconds(tree) - c0) / window < threshold:
                break
        return round(time.time() - t0, 2)

    def crawl(self, origin: str, paths: list[str], label: str) -> dict:
        r = loadgen.fetch_all(origin, paths, self.a.concurrency, HTML, timeout=self.a.crawl_timeout)
        out = {"s": r["duration_s"], "pages": r["requests"], "expected": len(paths),
               "pages_per_s": round(r["rps"], 1), "statuses": r.get("statuses"), "errors": r["errors"]}
        ok = out["statuses"] == {"200": len(paths)} and not out["errors"]
        out["ok"] = ok
        log(f"crawl {label}: {out['pages']} pages in {out['s']}s ({out['pages_per_s']}/s) statuses={out['statuses']}"
            f"{'' if ok else ' errors=' + str(out['errors'])}")
        if not ok:
            self.note(f"crawl of {label} was not all-200: statuses={out['statuses']} errors={out['errors']}")
        return out

    # ------------------------------------------------------------------ setup
    def start_upstream(self) -> None:
        wd = os.path.join(self.a.workdir, "peers")
        peers.stop_peers(wd)  # leftovers of an aborted earlier run of ours (recorded PIDs only)
        st = peers.start_peers(self.a.corpus, ["nginx-static"], wd, self.a.venv)
        self.cleanups.append(("nginx-static", lambda: peers.stop_peers(wd)))
        self.nginx = st["peers"]["nginx-static"]
        self.res["meta"]["versions"] = st.get("versions")
        log(f"upstream nginx-static: {self.nginx['simple_url']} pid={self.nginx['pid']}")

    def start_main(self) -> None:
        a = self.a
        if a.state:
            with open(a.state) as f:
                s = json.load(f)
            self.main = {"base": s["base"].rstrip("/"), "token": s["token"], "pid": s["pid"], "hosted": a.hosted,
                         "started_here": False}
            wb.assert_loopback(self.main["base"])
            if not wb.pid_alive(s["pid"]):
                raise SystemExit(f"Wharf pid {s['pid']} from {a.state} is not running")
            log(f"reusing Wharf pid={s['pid']} at {self.main['base']} (hosted repository {a.hosted!r})")
        else:
            rd = os.path.join(a.workdir, "main")
            if os.path.isdir(rd):
                shutil.rmtree(rd)
            os.makedirs(rd)
            srv = wb.WharfServer(a.wharf, os.path.join(rd, "data"), workers=a.workers,
                                 log_path=os.path.join(rd, "wharf-server.log"))
            log(f"starting Wharf on port {srv.port} (data {srv.data})")
            srv.start()
            self.cleanups.append(("wharf main", srv.stop))
            self.main = {"base": srv.base, "token": srv.token, "pid": srv.pid, "hosted": a.hosted, "started_here": True}
            wb.create_repo(srv.base, srv.token, a.hosted)
            a.load_corpus = True
        if a.load_corpus:
            import load_corpus  # noqa: PLC0415

            log(f"loading {a.corpus} into {self.main['base']}/{a.hosted}/ (load_corpus.py, 8 threads)")
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                rc = load_corpus.main([a.corpus, "--url", f"{self.main['base']}/{a.hosted}/legacy/",
                                       "--token", self.main["token"], "--threads", "8", "--timeout", "1800", "-q"])
            try:
                rep = json.loads(buf.getvalue())
            except ValueError:
                rep = {"raw": buf.getvalue()[-500:]}
            self.res["setup"]["load"] = {k: rep.get(k) for k in ("files", "uploaded", "failed", "seconds", "files_per_s")}
            log(f"corpus load: {self.res['setup']['load']}")
            if rc != 0:
                self.note(f"corpus load incomplete: {self.res['setup']['load']}")
        info = wb.rss_report(self.main["pid"])
        self.res["meta"]["wharf_main"] = {k: self.main[k] for k in ("base", "pid", "hosted", "started_here")}
        self.res["meta"]["wharf_main"]["processes"] = info["pids"]

    def start_proxpi(self, label: str) -> dict:
        wd = os.path.join(self.a.workdir, label)
        os.makedirs(wd, exist_ok=True)
        info = peers.start_proxpi(wd, bu.free_port(), self.a.venv, self.nginx["simple_url"])
        stop = lambda: peers.stop_pid(info["pid"], info["match"])  # noqa: E731
        self.cleanups.append((label, stop))
        info["stop"] = stop
        return info

    def start_devpi(self) -> None:
        """devpi-server as a caching mirror of the upstream: no --offline-mode, no root/pypi; one
        mirror index per round (root/mirror-<tag>-rN) plus root/warmup.  Failures are recorded, not fatal."""
        a = self.a
        d = os.path.join(a.workdir, "devpi")
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        b = os.path.join(a.venv, "bin")
        serverdir, clientdir = os.path.join(d, "server"), os.path.join(d, "client")
        t0 = time.time()
        try:
            peers._run([os.path.join(b, "devpi-init"), "--serverdir", serverdir, "--no-root-pypi",
                        "--root-passwd", "bench-root"], timeout=180)
            port = bu.free_port()
            cmd = [os.path.join(b, "devpi-server"), "--serverdir", serverdir, "--host", "127.0.0.1", "--port", str(port)]
            proc = peers._spawn(cmd, os.path.join(d, "server.log"))
            self.cleanups.append(("devpi", lambda: peers.stop_pid(proc.pid, serverdir)))
            base = f"http://127.0.0.1:{port}"
            bu.wait_http_ok(base + "/+api", 120, proc, headers={"Accept": "application/json"})
            dv = [os.path.join(b, "devpi"), "--clientdir", clientdir]
            peers._run(dv + ["use", base], timeout=60)
            peers._run(dv + ["login", "root", "--password", "bench-root"], timeout=60)
            self.devpi = {"base": base, "pid": proc.pid, "dv": dv, "cmd": cmd, "log": os.path.join(d, "server.log"),
                          "version": bu.cmd_output([os.path.join(b, "devpi-server"), "--version"]).splitlines()[-1]}
            self.devpi["warmup_index"] = self.devpi_index("warmup")
            self.res["pip"]["devpi"] = {"status": "ok", "startup_s": round(time.time() - t0, 2), "cmd": cmd,
                                        "version": self.devpi["version"],
                                        "index": "devpi index -c root/NAME type=mirror mirror_url=<nginx-static>/simple/"}
            log(f"devpi mirror server: {base} pid={proc.pid}")
        except Exception as e:  # noqa: BLE001 -- devpi is optional: say why and go on
            self.devpi = None
            self.res["pip"]["devpi"] = {"status": "skipped", "reason": f"{type(e).__name__}: {e}"[:800]}
            self.note(f"devpi mirror skipped: {type(e).__name__}: {str(e)[:300]}")

    def devpi_index(self, name: str) -> str:
        peers._run(self.devpi["dv"] + ["index", "-c", f"root/{name}", "type=mirror",
                                       f"mirror_url={self.nginx['simple_url']}"], timeout=60)
        return f"{self.devpi['base']}/root/{name}/+simple/"

    def setup_repos(self) -> None:
        m = self.main
        base, tok, hosted = m["base"], m["token"], m["hosted"]
        names = {"hosted": hosted}
        names["proxy"] = self.create(base, tok, "remote", "proxy", self.proxy_config())
        names["group"] = self.create(base, tok, "grp", "group", {"members": [hosted, names["proxy"]]})
        names["group-open"] = self.create(base, tok, "grp-open", "group",
                                          {"members": [hosted, names["proxy"]], "guard": False})
        names["group-proxy"] = self.create(base, tok, "grp-proxy", "group", {"members": [names["proxy"]]})
        self.repos = names
        self.res["setup"]["repos"] = {
            "hosted": hosted,
            "proxy": {"name": names["proxy"], "config": {"upstream": {"url": "<nginx-static>/simple/"}},
                      "index_ttl": "default (600 s)"},
            "group": {"name": names["group"], "members": [hosted, names["proxy"]], "guard": True},
            "group-open": {"name": names["group-open"], "members": [hosted, names["proxy"]], "guard": False},
            "group-proxy": {"name": names["group-proxy"], "members": [names["proxy"]]},
        }
        log(f"repositories: {names}")

    # ------------------------------------------------------------------ page stage (target 1)
    def page_targets(self) -> dict:
        origin = self.main["base"]
        t = {k: {"origin": origin, "paths": [f"/{self.repos[k]}/simple/{n}/" for n in self.projects],
                 "pid": self.main["pid"]} for k in WHARF_PAGE_TARGETS}
        ng = urllib.parse.urlsplit(self.nginx["simple_url"])
        t["nginx-static"] = {"origin": f"http://{ng.netloc}", "paths": [f"/simple/{n}/" for n in self.projects],
                             "pid": self.nginx["pid"]}
        return t

    def check_pages(self, targets: dict) -> dict:
        """Same files (name + sha256 fragment) on the hosted, proxy and group pages of a sample of projects."""
        import random

        sample = random.Random(self.a.seed).sample(self.projects, min(20, len(self.projects)))
        mism, exp = {}, {p["normalized"]: {(f["filename"], f["sha256"]) for f in p["files"]} for p in self.man["projects"]}
        for name, t in targets.items():
            if name not in WHARF_PAGE_TARGETS:
                continue
            bad = 0
            for n in sample:
                path = next(p for p in t["paths"] if p.endswith(f"/simple/{n}/"))
                r = bu.http_get(t["origin"] + path, headers={"Accept": HTML})
                got = set()
                for ln in bu.parse_links(r.body) if r.status == 200 else []:
                    href = ln.get("href", "")
                    got.add((urllib.parse.unquote(href.partition("#")[0].rsplit("/", 1)[-1]),
                             href.partition("#sha256=")[2]))
                bad += got != exp[n]
            mism[name] = f"{len(sample) - bad}/{len(sample)} pages list exactly the corpus files"
            if bad:
                self.note(f"{name}: {bad}/{len(sample)} sampled pages differ from the corpus")
        return mism

    def page_stage(self) -> None:
        a = self.a
        targets = self.page_targets()
        crawls = {}
        # cold crawl through the proxy (every page fetched from the upstream), then the groups, then everything again
        self.settle([self.main["pid"]])
        crawls["proxy_cold"] = self.crawl(self.main["base"], targets["proxy"]["paths"], "proxy (cold: upstream fetches)")
        for k in ("group", "group-open", "group-proxy", "hosted"):
            crawls[k + "_first"] = self.crawl(self.main["base"], targets[k]["paths"], k)
        if "proxpi" in a.page_peers:
            px = self.start_proxpi("proxpi-pages")
            pu = urllib.parse.urlsplit(px["simple_url"])
            targets["proxpi"] = {"origin": f"http://{pu.netloc}",
                                 "paths": [f"/index/{n}/" for n in self.projects], "pid": px["pid"]}
            crawls["proxpi_cold"] = self.crawl(targets["proxpi"]["origin"], targets["proxpi"]["paths"], "proxpi (cold)")
        if "nginx-static" not in a.page_peers:
            targets.pop("nginx-static")
        for k, t in targets.items():
            crawls[k + "_warm"] = self.crawl(t["origin"], t["paths"], k + " (warm check)")
        # the cold crawl recorded every proxied release, and each queued a vetting scan: let that work finish (and
        # the scan helper end) so the rounds measure serving, not scanning
        self.res["setup"]["drain"] = wb.drain(self.main["base"], self.main["token"], self.main["pid"], timeout=600)
        log(f"background work after the crawls: {self.res['setup']['drain']}")
        warmed_at = time.time()
        self.res["setup"]["crawls"] = crawls
        self.res["setup"]["page_checks"] = self.check_pages(targets)
        order = [k for k in PAGE_TARGETS if k in targets]
        per = self.res["pages"]
        for k in order:
            per[k] = {"paths": len(targets[k]["paths"]), "example": targets[k]["paths"][0], "runs": []}
        for rnd in range(a.rounds):
            i = rnd % len(order)
            for k in order[i:] + order[:i]:
                t = targets[k]
                self.settle([t["pid"]], timeout=10)
                la = bu.loadavg()
                tree = bu.proc_tree(t["pid"])
                c0, s0 = bu.cpu_seconds(tree), _sys_cpu()
                try:
                    r = loadgen.run_load(t["origin"], t["paths"], concurrency=a.concurrency, duration=a.duration,
                                         accept=HTML, seed=a.seed + rnd, engine=a.engine)
                except Exception as e:  # noqa: BLE001
                    r = {"error": f"{type(e).__name__}: {e}"[:500]}
                tree = bu.proc_tree(t["pid"]) or tree
                cpu = bu.cpu_seconds(tree) - c0
                s1 = _sys_cpu()
                if r.get("requests"):
                    r["bytes_per_req"] = round(r.get("bytes", 0) / r["requests"], 1)
                    r["cpu_ms_per_req"] = round(cpu * 1000 / r["requests"], 4)
                    r["server_cpu_pct"] = round(100 * cpu / max(r["duration_s"], 1e-9), 1)
                r["system_busy"] = round(1 - (s1[1] - s0[1]) / (s1[0] - s0[0]), 3) if s1[0] > s0[0] else None
                r.update(round=rnd, loadavg1=la[0] if la else None)
                per[k]["runs"].append(r)
                log(f"pages r{rnd} {k}: rps={r.get('rps', 0):.0f} p50={r.get('p50_ms', 0):.2f}ms "
                    f"p99={r.get('p99_ms', 0):.2f}ms cpu/req={r.get('cpu_ms_per_req')}ms non2xx={r.get('status_4xx_5xx')}"
                    + (f" error={r['error']}" if r.get("error") else ""))
                if r.get("status_4xx_5xx") or r.get("errors"):
                    self.note(f"pages r{rnd} {k}: {r.get('status_4xx_5xx')} non-2xx, errors {r.get('errors')}")
        for k in order:
            per[k]["median"] = _medians(per[k]["runs"], ("rps", "p50_ms", "p99_ms", "cpu_ms_per_req", "server_cpu_pct",
                                                         "bytes_per_req"))
        age = time.time() - warmed_at
        self.res["setup"]["page_stage_s_after_warmup"] = round(age, 1)
        if age > 600:
            self.note(f"page stage ran {age:.0f}s after the warm-up: beyond the proxy's default index_ttl (600 s), "
                      "so some proxy pages were re-validated upstream during the measurement")
        if "proxpi" in targets:
            self.run_cleanup("proxpi-pages")

    # ------------------------------------------------------------------ pip stage (targets 2, 3)
    def pip_ns(self, names: list[str]):
        return types.SimpleNamespace(_pip_names=names, pip_python=self.a.pip_python, pip_timeout=self.a.pip_timeout,
                                     _cmds={})

    def pip(self, name: str, url: str, pid: int | None, names: list[str], rnd: int) -> dict:
        t = harness.Target(name, url, pid=pid)
        ns = self.pip_ns(names)
        try:
            r = harness.sc_pip_install(t, ns, rnd)
        except Exception as e:  # noqa: BLE001
            r = {"error": f"{type(e).__name__}: {e}"[:600]}
        self.res["pip"]["command"] = ns._cmds.get("pip-install", self.res["pip"].get("command"))
        return r

    def start_cold_wharf(self, rnd: int):
        rd = os.path.join(self.a.workdir, f"cold-r{rnd}")
        if os.path.isdir(rd):
            shutil.rmtree(rd)
        os.makedirs(rd)
        srv = wb.WharfServer(self.a.wharf, os.path.join(rd, "data"), workers=self.a.workers,
                             log_path=os.path.join(rd, "wharf-server.log"))
        srv.start()
        label = f"wharf cold r{rnd}"

        def stop():
            res = srv.stop()
            if not self.a.keep_data:
                shutil.rmtree(srv.data, ignore_errors=True)
            return res

        self.cleanups.append((label, stop))
        return srv, label

    def run_cleanup(self, label: str) -> None:
        for i in range(len(self.cleanups) - 1, -1, -1):
            if self.cleanups[i][0] == label:
                lbl, fn = self.cleanups.pop(i)
                try:
                    fn()
                except Exception as e:  # noqa: BLE001
                    log(f"cleanup {lbl}: {e}")
                return

    def pip_stage(self) -> None:
        import random

        a = self.a
        rng = random.Random(a.seed)  # the same names run.py's pip-install scenario picks with this seed
        names = rng.sample(self.projects, min(a.pip_projects, len(self.projects)))
        warm_name = next(p for p in self.projects if p not in names)
        P = self.res["pip"]
        P.update(names=names, warmup_project=warm_name, cold={}, warm={})
        direct = self.nginx["simple_url"]
        if "devpi" in a.pip_peers:
            self.start_devpi()
        # untimed: pip itself and nginx warm
        self.pip("warmup", direct, self.nginx["pid"], [warm_name], 0)
        if self.devpi:
            self.pip("warmup", self.devpi["warmup_index"], self.devpi["pid"], [warm_name], 0)
        for rnd in range(a.pip_rounds):
            # fresh servers / repositories for this round
            srv, cold_label = self.start_cold_wharf(rnd)
            warm_repo = self.create(srv.base, srv.token, "warmup", "proxy", self.proxy_config())
            self.pip("warmup", f"{srv.base}/{warm_repo}/simple/", srv.pid, [warm_name], rnd)
            cold_repo = self.create(srv.base, srv.token, f"cold-r{rnd}", "proxy", self.proxy_config())
            new_repo = self.create(self.main["base"], self.main["token"], f"newpx-{self.tag}-r{rnd}", "proxy",
                                   self.proxy_config())
            tg = {"direct": (direct, self.nginx["pid"]),
                  "wharf-proxy": (f"{srv.base}/{cold_repo}/simple/", srv.pid),
                  "wharf-proxy-newrepo": (f"{self.main['base']}/{new_repo}/simple/", self.main["pid"])}
            if "proxpi" in a.pip_peers:
                px = self.start_proxpi(f"proxpi-r{rnd}")
                self.pip("warmup", px["simple_url"], px["pid"], [warm_name], rnd)
                tg["proxpi"] = (px["simple_url"], px["pid"])
            if self.devpi:
                try:
                    tg["devpi"] = (self.devpi_index(f"mirror-{self.tag}-r{rnd}"), self.devpi["pid"])
                except Exception as e:  # noqa: BLE001
                    self.note(f"devpi mirror index for round {rnd} failed: {e}")
            all_pids = [pid for _, pid in tg.values()]
            for phase in ("cold", "warm"):
                order = list(tg) + (["wharf-hosted"] if phase == "warm" else [])
                if phase == "warm":
                    tg["wharf-hosted"] = (f"{self.main['base']}/{self.main['hosted']}/simple/", self.main["pid"])
                k = rnd % len(order)
                for name in order[k:] + order[:k]:
                    url, pid = tg[name]
                    self.settle(all_pids, timeout=15)
                    la = bu.loadavg()
                    r = self.pip(name, url, pid, names, rnd)
                    r.update(round=rnd, loadavg1=la[0] if la else None)
                    P[phase].setdefault(name, {"runs": []})["runs"].append(r)
                    log(f"pip {phase} r{rnd} {name}: {r.get('s')}s installed={r.get('installed')}/{len(names)} "
                        f"server_cpu={r.get('server_cpu_s')}s" + (f" ERROR {r['error'][-300:]}" if r.get("error") else ""))
                    if r.get("error"):
                        self.note(f"pip {phase} r{rnd} {name}: {r['error'][-300:]}")
                if phase == "cold":
                    # what the cold proxy holds now: 20 files fetched from the upstream
                    st, info = self.api(srv.base, srv.token, "GET", f"/api/v1/repositories/{cold_repo}")
                    P.setdefault("cold_proxy_repo_after", []).append(info.get("stats") if isinstance(info, dict) else info)
            if a.probe_projects:
                self.probe(rnd, srv, tg, names, warm_name)
            self.run_cleanup(cold_label)
            if "proxpi" in tg:
                self.run_cleanup(f"proxpi-r{rnd}")
        for phase in ("cold", "warm"):
            for name, d in P[phase].items():
                d["median"] = _medians(d["runs"], ("s", "server_cpu_s"))
                d["rounds_ok"] = sum(1 for r in d["runs"] if not r.get("error"))

    def probe(self, rnd: int, srv, tg: dict, names: list[str], warm_name: str) -> None:
        """Sequential single-request latencies on projects nobody has asked for yet: cold page, cold file
        (the newest wheel the page lists), then the same page and file again (warm).  New connection per request."""
        a = self.a
        pool = [p for p in self.projects if p not in names and p != warm_name]
        k = a.probe_projects
        projects = pool[(rnd * k) % max(1, len(pool)):][:k]
        urls = {"direct": tg["direct"][0]}
        urls["wharf-proxy"] = f"{srv.base}/{self.create(srv.base, srv.token, f'probe-r{rnd}', 'proxy', self.proxy_config())}/simple/"
        newp = self.create(self.main["base"], self.main["token"], f"probepx-{self.tag}-r{rnd}", "proxy", self.proxy_config())
        urls["wharf-proxy-newrepo"] = f"{self.main['base']}/{newp}/simple/"
        if "proxpi" in tg:
            urls["proxpi"] = tg["proxpi"][0]
        if "devpi" in tg:
            try:
                urls["devpi"] = self.devpi_index(f"probe-{self.tag}-r{rnd}")
            except Exception as e:  # noqa: BLE001
                self.note(f"devpi probe index failed: {e}")
        out = self.res["pip"].setdefault("probe", {})
        for name, url in urls.items():
            lat: dict = {"page_cold": [], "file_cold": [], "page_warm": [], "file_warm": []}
            bad, fails = 0, []
            for proj in projects:
                page = url + proj + "/"
                try:
                    r = bu.http_get(page, headers={"Accept": HTML})
                    lat["page_cold"].append(r.elapsed)
                    links = [ln.get("href", "") for ln in bu.parse_links(r.body)] if r.status == 200 else []
                    if not links:
                        bad += 1
                        fails.append(f"page {proj}: HTTP {r.status}")
                        continue
                    fu = urllib.parse.urljoin(page, links[-1]).partition("#")[0]
                    bu.assert_loopback(fu)
                    f1 = bu.http_get(fu)
                    lat["file_cold"].append(f1.elapsed)
                    lat["page_warm"].append(bu.http_get(page, headers={"Accept": HTML}).elapsed)
                    f2 = bu.http_get(fu)
                    lat["file_warm"].append(f2.elapsed)
                    for what, fr in (("cold", f1), ("warm", f2)):
                        if fr.status != 200:
                            bad += 1
                            fails.append(f"{what} file of {proj}: HTTP {fr.status}")
                except OSError as e:
                    bad += 1
                    fails.append(f"{proj}: {type(e).__name__}: {e}")
            d = out.setdefault(name, {"runs": []})
            d["runs"].append({"round": rnd, "projects": len(projects), "bad": bad, "failures": fails[:5],
                              **{f"{k2}_ms": round(bu.median(v) * 1000, 3) if v else None for k2, v in lat.items()}})
            log(f"probe r{rnd} {name}: " + ", ".join(f"{k2} {d['runs'][-1][k2 + '_ms']} ms" for k2 in lat)
                + (f" ({bad} failures: {fails[:3]})" if bad else ""))
        for d in out.values():
            d["median"] = _medians(d["runs"], ("page_cold_ms", "file_cold_ms", "page_warm_ms", "file_warm_ms"))

    # ------------------------------------------------------------------ summary
    def summarize(self) -> None:
        pg, P = self.res["pages"], self.res["pip"]
        f_page, f_pip = THRESHOLDS["page_rps_factor"], THRESHOLDS["cold_pip_factor"]

        def m(d, k, key):
            return ((d.get(k) or {}).get("median") or {}).get(key)

        hosted = m(pg, "hosted", "rps")
        s: dict = {"hosted_rps": hosted}
        for k in ("proxy", "group", "group-open", "group-proxy", "nginx-static", "proxpi"):
            v = m(pg, k, "rps")
            s[f"{k}_rps"] = v
            s[f"{k}_vs_hosted"] = round(v / hosted, 4) if (v and hosted) else None
        for ph in ("cold", "warm"):
            d = m(P.get(ph, {}), "direct", "s")
            s[f"{ph}_direct_s"] = d
            for k in ("wharf-proxy", "wharf-proxy-newrepo", "proxpi", "devpi", "wharf-hosted"):
                v = m(P.get(ph, {}), k, "s")
                if v is None:
                    continue
                s[f"{ph}_{k}_s"] = v
                s[f"{ph}_{k}_vs_direct"] = round(v / d, 4) if d else None
        rows = []

        def add(target, value, detail, ok):
            rows.append({"target": target, "value": value, "detail": detail,
                         "result": "n/a" if ok is None else ("PASS" if ok else "FAIL")})

        for k, label in (("proxy", "proxy"), ("group", "group [hosted, proxy] (guard on)"),
                         ("group-open", "group [hosted, proxy] guard off (merged)")):
            r = s[f"{k}_vs_hosted"]
            add(f"warm /simple/<project>/ via {label} req/s >= hosted/{f_page}", _f(r) + " x hosted",
                f"{_f(s[f'{k}_rps'])} vs hosted {_f(hosted)} req/s (need >= {1 / f_page:.3f} x)",
                None if r is None else r >= 1 / f_page)
        r = s.get("cold_wharf-proxy_vs_direct")
        add(f"cold pip install of {len(P.get('names', []))} via proxy <= {f_pip}x direct", _f(r) + " x",
            f"{_f(s.get('cold_wharf-proxy_s'))} s vs direct {_f(s.get('cold_direct_s'))} s "
            f"(fresh Wharf, empty data dir, each round)", None if r is None else r <= f_pip)
        r = s.get("warm_wharf-proxy_vs_direct")
        add("warm pip install via proxy vs direct", _f(r) + " x",
            f"{_f(s.get('warm_wharf-proxy_s'))} s vs direct {_f(s.get('warm_direct_s'))} s", None)
        rows[-1]["result"] = "info"
        self.res["summary"] = s
        self.res["rows"] = rows
        self.res["thresholds"] = THRESHOLDS

    # ------------------------------------------------------------------ driver
    def run(self) -> dict:
        a = self.a
        self.res["meta"].update({
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv, "machine": bu.machine_info(),
            "loadavg_start": bu.loadavg(), "params": {k: v for k, v in vars(a).items()},
            "engine": a.engine, "corpus": {k: self.man[k] for k in ("seed", "n_projects", "n_versions", "n_files")},
            "git": _git_info(),
        })
        try:
            self.start_upstream()
            self.start_main()
            self.setup_repos()
            if not a.skip_pages:
                self.page_stage()
            if not a.skip_pip:
                self.pip_stage()
        except BaseException as e:
            self.res["error"] = f"{type(e).__name__}: {e}"[:1000]
            log(f"ERROR: {self.res['error']}")
            if not isinstance(e, Exception):
                raise
        finally:
            for lbl, fn in reversed(self.cleanups):
                try:
                    fn()
                except Exception as e:  # noqa: BLE001
                    log(f"cleanup {lbl}: {e}")
            self.cleanups.clear()
            if not a.keep_data:  # caches of the peers (the logs stay)
                for sub in ("devpi/server", "peers/nginx/static", "main/data"):
                    shutil.rmtree(os.path.join(a.workdir, sub), ignore_errors=True)
                for d in os.listdir(a.workdir) if os.path.isdir(a.workdir) else []:
                    if d.startswith("proxpi-"):
                        shutil.rmtree(os.path.join(a.workdir, d, "proxpi", "cache"), ignore_errors=True)
            self.res["meta"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self.res["meta"]["loadavg_end"] = bu.loadavg()
        self.summarize()
        return self.res


# ---------------------------------------------------------------------- rendering
def _git_info() -> dict:
    """Commit and uncommitted source files of the Wharf tree measured (an editable install runs the working tree)."""
    def git(*args):
        try:
            r = subprocess.run(["git", "-C", wb.repo_root(), *args], capture_output=True, text=True, timeout=10)
            return r.stdout.strip() if r.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            return None
    dirty = git("status", "--porcelain", "--", "src")
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "src_uncommitted": [ln[3:] for ln in dirty.splitlines()] if dirty else []}


def _sys_cpu():
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    return sum(vals), vals[3] + vals[4]


def _medians(runs: list[dict], keys) -> dict:
    ok = [r for r in runs if not r.get("error")]
    return {k: bu.median([r.get(k) for r in ok if isinstance(r.get(k), (int, float))]) for k in keys}


def _f(v, nd=4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{nd}g}"
    return str(v)


def render(res: dict) -> tuple[str, str]:
    """(text, markdown)"""
    meta, pg, P = res["meta"], res.get("pages", {}), res.get("pip", {})
    s = res.get("summary", {})
    hosted = s.get("hosted_rps")
    lines_t, lines_m = [], []
    head = (f"nproc={meta.get('machine', {}).get('nproc')} loadavg {meta.get('loadavg_start')} -> "
            f"{meta.get('loadavg_end')}; corpus {meta.get('corpus', {}).get('n_projects')} projects x "
            f"{meta.get('corpus', {}).get('n_versions')} versions; engine={meta.get('params', {}).get('engine')}, "
            f"c={meta.get('params', {}).get('concurrency')}, {meta.get('params', {}).get('duration')} s per run, "
            f"{meta.get('params', {}).get('rounds')} rounds (pip: {meta.get('params', {}).get('pip_rounds')})")
    g = meta.get("git") or {}
    if g.get("commit"):
        head += f"; wharf {g['commit']}" + (f" + uncommitted {', '.join(g['src_uncommitted'])}" if g.get("src_uncommitted") else "")
    lines_t += [head, ""]
    lines_m += ["## Wharf proxy / group benchmark", "", head, ""]
    # pages
    rows = []
    for k in PAGE_TARGETS:
        if k not in pg:
            continue
        md = pg[k].get("median", {})
        rps = md.get("rps")
        rows.append([k, pg[k].get("example", ""), _f(rps), _f(rps / hosted, 3) + "x" if (rps and hosted) else "-",
                     _f(md.get("p50_ms"), 3), _f(md.get("p99_ms"), 3), _f(md.get("cpu_ms_per_req"), 3),
                     _f(md.get("bytes_per_req"), 4),
                     " / ".join(_f(r.get("rps")) for r in pg[k]["runs"])])
    ph = ["target", "path", "req/s", "vs hosted", "p50 ms", "p99 ms", "server CPU ms/req", "bytes/resp", "rounds req/s"]
    lines_t += ["warm /simple/<project>/ (median of rounds)", _table_text(ph, rows), ""]
    lines_m += ["### Warm `/simple/<project>/` (wrk, medians)", "", _table_md(ph, rows), ""]
    cr = (res.get("setup") or {}).get("crawls") or {}
    if cr.get("proxy_cold"):
        c = cr["proxy_cold"]
        extra = f"; proxpi cold crawl {c2['s']} s" if (c2 := cr.get("proxpi_cold")) else ""
        t = (f"cold crawl through the proxy (every page fetched upstream, c=16): {c['pages']} pages in {c['s']} s = "
             f"{c['pages_per_s']} pages/s{extra}")
        lines_t += [t, ""]
        lines_m += [t, ""]
    # pip
    for phase in ("cold", "warm"):
        d = P.get(phase) or {}
        if not d:
            continue
        base = ((d.get("direct") or {}).get("median") or {}).get("s")
        rows = []
        for k, v in d.items():
            sec = v.get("median", {}).get("s")
            rows.append([k, _f(sec), _f(sec / base, 3) + "x" if (sec and base) else "-",
                         _f(v.get("median", {}).get("server_cpu_s"), 3), f"{v.get('rounds_ok')}/{len(v['runs'])}",
                         " / ".join(_f(r.get("s")) for r in v["runs"])])
        ph = ["target", "seconds", "vs direct", "server CPU s", "ok rounds", "rounds s"]
        title = f"{phase} pip install of {len(P.get('names', []))} projects (median of rounds)"
        lines_t += [title, _table_text(ph, rows), ""]
        lines_m += [f"### {title[0].upper() + title[1:]}", "", _table_md(ph, rows), ""]
    pr = P.get("probe") or {}
    if pr:
        rows = [[k, *(_f(v.get("median", {}).get(x), 3) for x in ("page_cold_ms", "file_cold_ms", "page_warm_ms",
                                                                    "file_warm_ms"))] for k, v in pr.items()]
        ph = ["target", "page cold ms", "file cold ms", "page warm ms", "file warm ms"]
        title = "sequential single requests on untouched projects (median of per-round medians)"
        lines_t += [title, _table_text(ph, rows), ""]
        lines_m += [f"### {title[0].upper() + title[1:]}", "", _table_md(ph, rows), ""]
    dv = P.get("devpi")
    if dv and dv.get("status") != "ok":
        lines_t.append(f"devpi: {dv.get('status')}: {dv.get('reason')}")
        lines_m.append(f"* devpi: {dv.get('status')}: {dv.get('reason')}")
    # PASS/FAIL
    rows = [[r["target"], r["value"], r["result"], r["detail"]] for r in res.get("rows", [])]
    ph = ["target", "measured", "result", "detail"]
    lines_t += ["", "== proxy / group targets ==", _table_text(ph, rows)]
    lines_m += ["### Targets", "", _table_md(ph, rows), ""]
    notes = list(res.get("notes", []))
    if res.get("error"):
        notes.insert(0, "ERROR: " + res["error"])
    if notes:
        lines_t += [""] + ["  * " + n for n in notes]
        lines_m += [""] + ["* " + n for n in notes]
    return "\n".join(lines_t), "\n".join(lines_m) + "\n"


def _table_text(head, rows) -> str:
    w = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    out = ["  ".join(str(h).ljust(w[i]) for i, h in enumerate(head)), "  ".join("-" * x for x in w)]
    out += ["  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    return "\n".join(out)


def _table_md(head, rows) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def _on_term(*_):
    raise SystemExit(143)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="make_corpus.py directory (the upstream serves it; `bench` holds it)")
    ap.add_argument("--state", help="state.json of a running Wharf (wharfbench.py start) whose hosted repo holds the corpus")
    ap.add_argument("--load-corpus", action="store_true", help="with --state: load the corpus into the hosted repo first")
    ap.add_argument("--hosted", default="bench", help="hosted repository name")
    ap.add_argument("--wharf", default=os.path.join(wb.repo_root(), ".venv", "bin", "wharf"))
    ap.add_argument("--workers", type=int, default=int(os.environ.get("WHARF_WORKERS") or 0) or None)
    ap.add_argument("--workdir", default="/tmp/wharf-bench/proxy", help="scratch dir (peers, cold Wharf data dirs)")
    ap.add_argument("--venv", default="/tmp/peers/venv", help="peers venv (proxpi, devpi)")
    ap.add_argument("--keep-data", action="store_true",
                    help="keep the cold instances' data dirs and the peers' caches (logs are always kept)")
    ap.add_argument("--rounds", type=int, default=3, help="page load rounds (median)")
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--engine", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--crawl-timeout", type=float, default=300)
    ap.add_argument("--page-peers", default="nginx-static,proxpi", help="references in the page stage ('' = none)")
    ap.add_argument("--pip-peers", default="proxpi,devpi", help="caching peers in the pip stage ('' = none)")
    ap.add_argument("--no-devpi", action="store_true", help="same as leaving devpi out of --pip-peers")
    ap.add_argument("--pip-projects", type=int, default=20)
    ap.add_argument("--pip-rounds", type=int, default=3)
    ap.add_argument("--pip-timeout", type=float, default=300)
    ap.add_argument("--probe-projects", type=int, default=10,
                    help="per pip round: sequential cold/warm page + file latencies on N untouched projects (0 = off)")
    ap.add_argument("--pip-python", default=sys.executable, help="python whose pip is timed (as run.py)")
    ap.add_argument("--skip-pages", action="store_true")
    ap.add_argument("--skip-pip", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="default bench/results/proxy-<time>.json")
    ap.add_argument("--markdown", help="default: the JSON path with .md")
    a = ap.parse_args(argv)
    a.corpus = os.path.abspath(a.corpus)
    if not os.path.exists(os.path.join(a.corpus, "manifest.json")):
        raise SystemExit(f"{a.corpus}/manifest.json not found (make it with the shared make_corpus.py)")
    if a.engine == "auto":
        a.engine = "wrk" if loadgen.wrk_path() else "python"
    a.page_peers = [x for x in a.page_peers.split(",") if x]
    a.pip_peers = [x for x in a.pip_peers.split(",") if x and not (a.no_devpi and x == "devpi")]
    if a.rounds < 1 or a.pip_rounds < 1:
        raise SystemExit("--rounds and --pip-rounds must be >= 1")
    os.makedirs(a.workdir, exist_ok=True)
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        os.environ.pop(k, None)  # Wharf's upstream client honours them: keep its traffic on loopback
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
    # SIGTERM -> SystemExit so the finally blocks stop what we started
    signal.signal(signal.SIGTERM, _on_term)

    out = a.json or os.path.join(wb.HERE, "results", f"proxy-{time.strftime('%Y%m%d-%H%M%S')}.json")
    md = a.markdown or (out[:-5] if out.endswith(".json") else out) + ".md"
    b = Bench(a)
    res = b.run()
    text, mdtext = render(res)
    print("\n" + text)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1, default=str)
    with open(md, "w") as f:
        f.write(mdtext)
    log(f"wrote {out} and {md}")
    return 1 if res.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
