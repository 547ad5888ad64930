#!/usr/bin/env python3
"""Upload every file of a corpus directory into a Wharf repository via the legacy (twine) API.

    load_corpus.py CORPUS --url http://127.0.0.1:PORT/bench/legacy/ --token TOKEN [--threads 8]

CORPUS is a make_corpus.py directory (CORPUS/packages/*.whl + manifest.json) or any directory
of wheels / sdists.  With a manifest, name, version and sha256 come from it; the core metadata
(summary, requires_python, requires_dist, ...) is read from each wheel's METADATA, as twine does.

Uploads run on a thread pool with one keep-alive connection per thread.  The files of one
project go through one worker in version order (no two concurrent uploads into the same
project, like a real release pipeline) unless --interleave is given.  Failed uploads (5xx or
connection errors) are retried up to --retries times; every failure and retry is reported.
Bounded by --timeout seconds overall.  Loopback URLs only.

Prints a JSON report (files, bytes, seconds, files/s, MB/s, latency percentiles, statuses,
retries, errors) and writes it to --json if given.  Exit status 1 if any file failed.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wharfbench as wb  # noqa: E402


def corpus_groups(corpus: str) -> list[list[dict]]:
    """Files grouped per project: [[{path, filename, sha256?, size}], ...]."""
    pkgdir = os.path.join(corpus, "packages")
    if not os.path.isdir(pkgdir):
        pkgdir = corpus
    man_path = os.path.join(corpus, "manifest.json")
    groups: list[list[dict]] = []
    if os.path.exists(man_path):
        with open(man_path) as f:
            man = json.load(f)
        for p in man["projects"]:
            groups.append([{"path": os.path.join(pkgdir, fi["filename"]), "filename": fi["filename"],
                            "sha256": fi.get("sha256"), "size": fi.get("size")} for fi in p["files"]])
        return groups
    by_project: dict[str, list[dict]] = collections.OrderedDict()
    for fn in sorted(os.listdir(pkgdir)):
        if not fn.endswith((".whl", ".tar.gz", ".zip")):
            continue
        proj = fn.split("-", 1)[0].lower().replace("_", "-").replace(".", "-")
        by_project.setdefault(proj, []).append({"path": os.path.join(pkgdir, fn), "filename": fn})
    return list(by_project.values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--url", required=True, help="legacy upload URL, e.g. http://127.0.0.1:8000/bench/legacy/")
    ap.add_argument("--token", help="API token (sent as HTTP basic __token__:TOKEN, like twine)")
    ap.add_argument("--auth", help="USER:PASS for HTTP basic instead of --token")
    ap.add_argument("--bearer", action="store_true", help="send the token as 'Authorization: Bearer' instead")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--interleave", action="store_true",
                    help="shuffle all files (concurrent uploads into the same project can happen)")
    ap.add_argument("--limit", type=int, default=0, help="upload at most N files (0 = all)")
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1800, help="overall bound in seconds")
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--quiet", "-q", action="store_true")
    a = ap.parse_args(argv)

    wb.assert_loopback(a.url)
    if a.auth:
        u, _, p = a.auth.partition(":")
        auth = wb.basic(u, p)
    elif a.token:
        auth = wb.bearer(a.token) if a.bearer else wb.basic("__token__", a.token)
    else:
        raise SystemExit("need --token or --auth")

    groups = corpus_groups(a.corpus)
    if a.interleave:
        flat = [f for g in groups for f in g]
        random.Random(1).shuffle(flat)
        groups = [[f] for f in flat]
    if a.limit:
        out, n = [], 0
        for g in groups:
            if n >= a.limit:
                break
            out.append(g[: a.limit - n])
            n += len(out[-1])
        groups = out
    n_files = sum(len(g) for g in groups)
    up = wb.Uploader(a.url, auth)
    lock = threading.Lock()
    stats = {"ok": 0, "failed": 0, "retries": 0, "bytes": 0, "done": 0}
    statuses: collections.Counter = collections.Counter()
    lat: list[float] = []
    errors: list[str] = []
    retry_errors: list[str] = []
    t_start = time.perf_counter()
    deadline = t_start + a.timeout
    stop = threading.Event()

    def do_group(g: list[dict]) -> None:
        for f in g:
            if stop.is_set() or time.perf_counter() > deadline:
                stop.set()
                return
            with open(f["path"], "rb") as fh:
                data = fh.read()
            res = None
            for attempt in range(a.retries + 1):
                res = up.upload(f["filename"], data, sha256=f.get("sha256"))
                with lock:
                    statuses[res["status"]] += 1
                if res["status"] == 200 or res["status"] == 201:
                    break
                retryable = res["status"] == 0 or res["status"] >= 500 or res["status"] == 429
                if not retryable or attempt == a.retries or time.perf_counter() > deadline:
                    break
                with lock:
                    stats["retries"] += 1
                    if len(retry_errors) < 10:
                        retry_errors.append(f"{f['filename']}: HTTP {res['status']} {res.get('error', '')[:200]}")
                time.sleep(0.05 * (attempt + 1))
            with lock:
                stats["done"] += 1
                if res["status"] in (200, 201):
                    stats["ok"] += 1
                    stats["bytes"] += len(data)
                    lat.append(res["s"])
                else:
                    stats["failed"] += 1
                    if len(errors) < 20:
                        errors.append(f"{f['filename']}: HTTP {res['status']} {res.get('error', '')[:200]}")

    last_print = time.time()
    with cf.ThreadPoolExecutor(max_workers=a.threads) as ex:
        futs = [ex.submit(do_group, g) for g in groups]
        pending = set(futs)
        while pending:
            done, pending = cf.wait(pending, timeout=2.0)
            for fu in done:
                if fu.exception():
                    stop.set()
                    errors.append(f"worker crashed: {fu.exception()!r}")
            if not a.quiet and time.time() - last_print > 10:
                last_print = time.time()
                el = time.perf_counter() - t_start
                wb.log(f"{stats['done']}/{n_files} files, {stats['done'] / el:.0f} files/s, "
                       f"{stats['failed']} failed, {stats['retries']} retries", "load-corpus")
            if time.perf_counter() > deadline + 60:  # workers are stuck in a request; give up
                stop.set()
                break
    dt = time.perf_counter() - t_start
    lat.sort()

    def pct(q):
        return round(lat[min(len(lat) - 1, int(q / 100 * (len(lat) - 1) + 0.5))] * 1000, 2) if lat else None

    rep = {
        "corpus": os.path.abspath(a.corpus), "url": a.url, "threads": a.threads,
        "order": "interleaved" if a.interleave else "per-project sequential",
        "files": n_files, "uploaded": stats["ok"], "failed": stats["failed"], "retries": stats["retries"],
        "not_attempted": n_files - stats["done"], "timed_out": stop.is_set(),
        "bytes": stats["bytes"], "seconds": round(dt, 3),
        "files_per_s": round(stats["ok"] / dt, 1) if dt else None,
        "mb_per_s": round(stats["bytes"] / dt / 1e6, 2) if dt else None,
        "latency_ms": {"p50": pct(50), "p90": pct(90), "p99": pct(99), "max": round(lat[-1] * 1000, 1) if lat else None},
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "retried_errors": retry_errors,
    }
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(rep, f, indent=1)
    print(json.dumps(rep, indent=1))
    wb.log(f"uploaded {stats['ok']}/{n_files} files in {dt:.1f}s = {rep['files_per_s']} files/s "
           f"({stats['failed']} failed, {stats['retries']} retries)", "load-corpus")
    return 0 if stats["ok"] == n_files else 1


if __name__ == "__main__":
    sys.exit(main())
