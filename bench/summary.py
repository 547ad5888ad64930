#!/usr/bin/env python3
"""PASS/FAIL table of Wharf's performance targets from a run.py results JSON (peers comparison),
a scaling.py results JSON and a proxy.py results JSON (proxy / group repositories).

    summary.py --run bench/results/X.json --scaling bench/results/Y.json [--proxy bench/results/proxy-Z.json]
               [--target wharf] [--json OUT.json] [--markdown OUT.md] [--redact SECRET] [--strict]

--redact replaces a string (the throwaway bench token run.py records in argv) in the run JSON.
--strict: exit status 1 if any target FAILs or could not be measured.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def med(run: dict, scenario: str, target: str, key: str):
    return (((run.get("scenarios") or {}).get(scenario) or {}).get(target) or {}).get("median", {}).get(key)


def errors_of(run: dict, target: str) -> list[str]:
    out = []
    for sc, per in (run.get("scenarios") or {}).items():
        for r in (per.get(target) or {}).get("runs", []):
            if r.get("error"):
                out.append(f"{sc} r{r.get('round')}: {str(r['error'])[:300]}")
            elif r.get("status_4xx_5xx"):
                out.append(f"{sc} r{r.get('round')}: {r['status_4xx_5xx']} non-2xx responses")
    return out


def ratio(a, b):
    return a / b if (a is not None and b not in (None, 0)) else None


def fmt(v, nd=4):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{nd}g}"
    return str(v)


def build(run: dict | None, sc: dict | None, t: str) -> list[dict]:
    rows = []

    def add(target, measured, detail, ok):
        rows.append({"target": target, "value": measured, "detail": detail,
                     "result": "n/a" if ok is None else ("PASS" if ok else "FAIL")})

    run = run or {}
    ng, dv, pp = "nginx-static", "devpi", "pypiserver"
    # 1. /simple/<project>/ req/s
    w, n, d = med(run, "simple-project", t, "rps"), med(run, "simple-project", ng, "rps"), med(run, "simple-project", dv, "rps")
    r1, r2 = ratio(w, n), ratio(w, d)
    add("/simple/<project>/ req/s >= 40% of nginx", fmt(r1 and r1 * 100) + " %",
        f"{fmt(w)} vs nginx {fmt(n)} req/s", None if r1 is None else r1 >= 0.40)
    add("/simple/<project>/ req/s >= 10x devpi", fmt(r2) + " x", f"{fmt(w)} vs devpi {fmt(d)} req/s",
        None if r2 is None else r2 >= 10)
    # 2. small downloads
    w, n = med(run, "download-small", t, "rps"), med(run, "download-small", ng, "rps")
    r = ratio(w, n)
    add("small-file download req/s >= 40% of nginx", fmt(r and r * 100) + " %", f"{fmt(w)} vs nginx {fmt(n)} req/s",
        None if r is None else r >= 0.40)
    # 3. 50 MB download
    w, n = med(run, "download-large", t, "mb_s"), med(run, "download-large", ng, "mb_s")
    r = ratio(w, n)
    add("50 MB download MB/s >= 90% of nginx", fmt(r and r * 100) + " %", f"{fmt(w)} vs nginx {fmt(n)} MB/s",
        None if r is None else r >= 0.90)
    rss = med(run, "download-large", t, "peak_rss_mb")
    empty = ((sc or {}).get("rss_empty") or {})
    ctx = (f"; an idle empty Wharf is {fmt(empty.get('rss_mb_total'))} MB over {empty.get('pids')} processes, "
           f"main process {fmt(empty.get('rss_mb_main'))} MB" if empty.get("rss_mb_total") else "")
    add("  ... with Wharf peak RSS < 100 MB", fmt(rss) + " MB", "VmHWM of the server process tree (reset first)" + ctx,
        None if rss is None else rss < 100)
    # 3b. the same Wharf behind nginx (contrib/nginx/wharf.conf: nginx sends the files Wharf allows), when measured
    fr = "wharf-nginx"
    w = med(run, "download-large", fr, "mb_s")
    if w is not None:
        r = ratio(w, n)
        add("  50 MB download behind nginx (X-Accel-Redirect) >= 90% of nginx", fmt(r and r * 100) + " %",
            f"{fmt(w)} vs nginx {fmt(n)} MB/s; Wharf's peak RSS meanwhile "
            f"{fmt(med(run, 'download-large', fr, 'peak_rss_mb'))} MB", None if r is None else r >= 0.90)
        for scen, key, what in (("simple-project", "rps", "/simple/<project>/ req/s"),
                                ("download-small", "rps", "small-file download req/s")):
            b, nn = med(run, scen, fr, key), med(run, scen, ng, key)
            rows.append({"target": f"  {what} behind nginx", "value": fmt((ratio(b, nn) or 0) * 100) + " %",
                         "detail": f"{fmt(b)} vs nginx {fmt(nn)} req/s (direct: {fmt(med(run, scen, t, key))})",
                         "result": "info"})
    # 4. twine upload
    w, p = med(run, "upload", t, "files_per_s"), med(run, "upload", pp, "files_per_s")
    r = ratio(w, p)
    nfiles = med(run, "upload", t, "files")
    add(f"twine upload of {fmt(nfiles)} wheels >= 3x pypiserver files/s", fmt(r) + " x",
        f"{fmt(w)} vs pypiserver {fmt(p)} files/s", None if r is None else r >= 3)
    # 5. pip install
    w, n = med(run, "pip-install", t, "s"), med(run, "pip-install", ng, "s")
    r = ratio(w, n)
    npip = ((run.get("meta") or {}).get("params") or {}).get("pip_projects")
    add(f"pip install of {fmt(npip)} projects <= 1.1x nginx-static time", fmt(r) + " x",
        f"{fmt(w)} s vs nginx {fmt(n)} s", None if r is None else r <= 1.1)
    # the serving stack's own ceiling (ceiling.py, target granian-bare), when the run measured it: info rows
    cb = "granian-bare"
    for scen, key, what in (("simple-project", "rps", "/simple/<project>/ req/s"),
                            ("download-small", "rps", "small-file download req/s"),
                            ("download-large", "mb_s", "50 MB download MB/s")):
        b, w, n = med(run, scen, cb, key), med(run, scen, t, key), med(run, scen, ng, key)
        if b is not None:
            rows.append({"target": f"  {what}: Wharf vs the bare server stack (ceiling.py)",
                         "value": fmt(ratio(w, b)) + " x",
                         "detail": f"{fmt(w)} vs {fmt(b)}; the bare stack is {fmt((ratio(b, n) or 0) * 100)} % of nginx",
                         "result": "info"})
    # scaling
    s = (sc or {}).get("summary") or {}
    g = s.get("p50_growth")
    add(f"p50 at {fmt(s.get('large_projects'))} projects <= 1.5x p50 at {fmt(s.get('small_projects'))}",
        fmt(g) + " x", f"{fmt(s.get('p50_large_ms'))} ms vs {fmt(s.get('p50_small_ms'))} ms (c=1, same warm pages)",
        None if g is None else g <= 1.5)
    rl = s.get("rss_large_mb")
    grown = (f"; right after the growth, with {fmt(s.get('grown_tasks'))} scans queued, "
             f"{fmt(s.get('rss_grown_mb'))} MB (task helper + scanner {fmt(s.get('rss_grown_helpers_mb'))} MB)"
             if s.get("rss_grown_mb") is not None else "")
    add(f"RSS < 200 MB at {fmt(s.get('large_projects'))} projects", fmt(rl) + " MB",
        "process tree" + (f", of it {fmt(s.get('rss_large_helpers_mb'))} MB task helper + scanner (still working on "
                          f"{fmt(s.get('large_tasks_left'))} queued scans)" if s.get("large_tasks_left") else
                          " at rest (the growth's scans done)")
        + f"; largest single process {fmt(s.get('rss_large_mb_max_process'))} MB" + grown, None if rl is None else rl < 200)
    mv = s.get("many_versions_p50_ms")
    add(f"{fmt(s.get('many_versions'))}-version page p50 < 20 ms", fmt(mv) + " ms", "c=1, HTML",
        None if mv is None else mv < 20)
    ur = s.get("upload_ratio")
    add("upload into it <= 1.5x upload into new project", fmt(ur) + " x",
        f"{fmt(s.get('upload_many_ms'))} ms vs {fmt(s.get('upload_new_ms'))} ms (medians)", None if ur is None else ur <= 1.5)
    return rows


def proxy_rows(px: dict | None) -> list[dict]:
    """Rows for the proxy / group targets from a proxy.py results JSON (thresholds recorded in it)."""
    if px is None:
        return []
    s = px.get("summary") or {}
    th = {"page_rps_factor": 1.2, "cold_pip_factor": 1.3, **(px.get("thresholds") or {})}
    fp, fc = th["page_rps_factor"], th["cold_pip_factor"]
    rows = []

    def add(target, measured, detail, ok):
        rows.append({"target": target, "value": measured, "detail": detail,
                     "result": "n/a" if ok is None else ("PASS" if ok else "FAIL")})

    hosted = s.get("hosted_rps")
    for k, label in (("proxy", "proxy"), ("group", "group [hosted, proxy]"),
                     ("group-open", "group [hosted, proxy], guard off")):
        r = s.get(f"{k}_vs_hosted")
        add(f"warm /simple/<project>/ via {label} >= hosted/{fp:g} req/s", fmt(r) + " x",
            f"{fmt(s.get(f'{k}_rps'))} vs hosted {fmt(hosted)} req/s", None if r is None else r >= 1 / fp)
    npip = len((px.get("pip") or {}).get("names") or []) or "?"
    r = s.get("cold_wharf-proxy_vs_direct")
    extra = ", ".join(f"{lbl} {fmt(s.get(f'cold_{k}_vs_direct'))} x" for k, lbl in
                      (("proxpi", "proxpi"), ("devpi", "devpi"), ("wharf-proxy-newrepo", "new proxy repo, blobs stored"))
                      if s.get(f"cold_{k}_vs_direct") is not None)
    add(f"cold pip install of {npip} via proxy <= {fc:g}x direct", fmt(r) + " x",
        f"{fmt(s.get('cold_wharf-proxy_s'))} s vs direct {fmt(s.get('cold_direct_s'))} s" + (f" ({extra})" if extra else ""),
        None if r is None else r <= fc)
    r = s.get("warm_wharf-proxy_vs_direct")
    add(f"  warm pip install of {npip} via proxy vs direct", fmt(r) + " x",
        f"{fmt(s.get('warm_wharf-proxy_s'))} s vs direct {fmt(s.get('warm_direct_s'))} s", None)
    rows[-1]["result"] = "info"  # no target: not counted as unmeasured
    return rows


def render_text(rows) -> str:
    head = ("target", "measured", "result", "detail")
    w = [max(len(str(r[k])) for r in rows + [dict(zip(("target", "value", "result", "detail"), head))])
         for k in ("target", "value", "result", "detail")]
    out = [f"{head[0].ljust(w[0])}  {head[1].rjust(w[1])}  {head[2].ljust(6)}  {head[3]}", "-" * (sum(w) + 12)]
    out += [f"{r['target'].ljust(w[0])}  {r['value'].rjust(w[1])}  {r['result'].ljust(6)}  {r['detail']}" for r in rows]
    return "\n".join(out)


def render_md(rows) -> str:
    out = ["| target | measured | result | detail |", "|---|---|---|---|"]
    out += [f"| {r['target']} | {r['value']} | **{r['result']}** | {r['detail']} |" for r in rows]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="run.py results JSON")
    ap.add_argument("--scaling", help="scaling.py results JSON")
    ap.add_argument("--load", help="load_corpus.py report JSON (shown as info)")
    ap.add_argument("--proxy", help="proxy.py results JSON (proxy / group targets)")
    ap.add_argument("--drain", help="wharfbench.py drain report JSON (the wait for the load's background work)")
    ap.add_argument("--target", default="wharf", help="name of our target in the run JSON")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    ap.add_argument("--redact", action="append", default=[], help="string to scrub from the run JSON (in place)")
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args(argv)

    def load(p):
        if not p or not os.path.exists(p):
            return None
        with open(p) as f:
            txt = f.read()
        if a.redact:
            new = txt
            for s in a.redact:
                if s:
                    new = new.replace(s, "<redacted>")
            if new != txt:
                with open(p, "w") as f:
                    f.write(new)
                txt = new
        return json.loads(txt)

    run, sc, ld, px, dr = load(a.run), load(a.scaling), load(a.load), load(a.proxy), load(a.drain)
    # --proxy given but no results: its targets show as not measured
    rows = build(run, sc, a.target) + proxy_rows(px if px is not None else ({} if a.proxy else None))
    notes = []
    if run is None:
        notes.append("no run.py results (peer comparison missing)")
    else:
        notes += [f"{a.target}: {e}" for e in errors_of(run, a.target)]
        chk = ((run.get("targets") or {}).get(a.target) or {}).get("checks") or {}
        if chk:
            notes.append(f"{a.target} checks: " + ", ".join(
                f"{k}={chk.get(k)}" for k in ("pep691_json", "requires_python_attr", "pep658_metadata_attr",
                                              "sha256_links", "sha256_wrong", "range_requests",
                                              "non_normalized_name", "missing_project", "no_accept_header_status",
                                              "files_missing_in_sample", "root_missing") if k in chk))
        corpus = (run.get("meta") or {}).get("corpus") or {}
        notes.append(f"corpus: {corpus.get('n_projects')} projects x {corpus.get('n_versions')} versions, "
                     f"{corpus.get('n_files')} files; engine={(run.get('meta') or {}).get('engine')}; "
                     f"nproc={((run.get('meta') or {}).get('machine') or {}).get('nproc')}; "
                     f"loadavg {(run.get('meta') or {}).get('loadavg_start')} -> {(run.get('meta') or {}).get('loadavg_end')}")
    if sc is None:
        notes.append("no scaling.py results")
    else:
        if sc.get("large_note"):
            notes.append("scaling: " + sc["large_note"])
        if sc.get("error"):
            notes.append("scaling error: " + sc["error"])
    if ld:
        notes.append(f"corpus load into Wharf: {ld.get('uploaded')}/{ld.get('files')} files in {ld.get('seconds')} s "
                     f"= {ld.get('files_per_s')} files/s on {ld.get('threads')} threads "
                     f"(p50 {(ld.get('latency_ms') or {}).get('p50')} ms, {ld.get('failed')} failed, {ld.get('retries')} retries)")
    if dr:
        notes.append(f"before measuring: {dr.get('tasks_at_start')} background tasks (vetting scans) from the load took "
                     f"{dr.get('tasks_s')} s to finish ({dr.get('tasks_left')} left); scan helpers "
                     f"{(dr.get('scan_helpers') or {}).get('before')} -> {(dr.get('scan_helpers') or {}).get('after')} "
                     f"after {dr.get('total_s')} s")
    if sc:
        for size in ("small", "large"):
            d = sc.get(f"drain_{size}") or {}
            if d:
                notes.append(f"scaling ({size}): waited {d.get('tasks_s')} s for {d.get('tasks_at_start')} background "
                             f"tasks ({d.get('tasks_left')} left)")
    if px is not None:
        pm = px.get("meta") or {}
        notes.append(f"proxy.py: loadavg {pm.get('loadavg_start')} -> {pm.get('loadavg_end')}; "
                     f"{(pm.get('params') or {}).get('rounds')} page rounds, {(pm.get('params') or {}).get('pip_rounds')} pip rounds; "
                     f"devpi mirror: {((px.get('pip') or {}).get('devpi') or {}).get('status', 'not run')}")
        if px.get("error"):
            notes.append("proxy.py error: " + px["error"])
        notes += ["proxy.py: " + n for n in px.get("notes", [])]
    elif a.proxy:
        notes.append("no proxy.py results")
    text = render_text(rows)
    print("\n== Wharf performance targets ==\n")
    print(text)
    if notes:
        print("\n" + "\n".join("  * " + n for n in notes))
    n_pass = sum(r["result"] == "PASS" for r in rows)
    n_fail = sum(r["result"] == "FAIL" for r in rows)
    n_na = sum(r["result"] == "n/a" for r in rows)
    print(f"\n{n_pass} PASS, {n_fail} FAIL, {n_na} not measured")
    out = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run_json": a.run, "scaling_json": a.scaling,
           "load_json": a.load, "proxy_json": a.proxy, "rows": rows, "notes": notes, "pass": n_pass, "fail": n_fail, "na": n_na}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("## Wharf performance targets\n\n" + render_md(rows) + "\n\n"
                    + "\n".join("* " + n for n in notes) + "\n")
    return 1 if a.strict and (n_fail or n_na) else 0


if __name__ == "__main__":
    sys.exit(main())
