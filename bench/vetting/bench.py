"""Upload throughput with vetting on vs off: twine uploads the same wheels to a fresh Wharf server started with
WHARF_VETTING=1 and with WHARF_VETTING=0 (scans run in background tasks, so uploads should not wait for them).

Reports files/s per mode (best of the rounds), the on/off time ratio (target <= 1.2) and, with vetting on, how long
the scan backlog took to drain after the last upload. Loopback only."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.support.artifacts import make_wheel  # noqa: E402
from tests.support.net import free_port  # noqa: E402

BIN = Path(sys.executable).parent
TOKEN = "bench_vetting_token"
MODULE = "\n".join(f"def f{i}(x):\n    return x * {i} + len(str(x))\n" for i in range(300))  # ~12 KB of code


def make_corpus(folder: Path, n: int) -> list[Path]:
    extra = {f"pkg/mod{j}.py": MODULE.encode() for j in range(4)}
    return [make_wheel(folder, f"bench-pkg-{i}", "1.0", module_code=MODULE,
                       extra_files={k.replace("pkg/", f"bench_pkg_{i}/"): v for k, v in extra.items()})
            for i in range(n)]


def start(data: Path, vetting: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
    env.update(WHARF_BOOTSTRAP_TOKEN=TOKEN, WHARF_VETTING="1" if vetting else "0", WHARF_ACCESS_LOG="0")
    proc = subprocess.Popen([str(BIN / "wharf"), "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        proc.kill()
        raise SystemExit("wharf did not start")
    r = httpx.post(url + "/api/v1/repositories", json={"name": "bench", "format": "python"},
                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    r.raise_for_status()
    return proc, url


def upload(url: str, files: list[Path], parallel: int) -> float:
    chunks = [files[i::parallel] for i in range(parallel)]
    cmd = [str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
           f"{url}/bench/legacy/", "-u", "__token__", "-p", TOKEN]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWINE_", "PIP_"))}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(lambda c: subprocess.run(cmd + [str(p) for p in c], env=env, capture_output=True), chunks))
    elapsed = time.perf_counter() - t0
    for r in results:
        if r.returncode != 0:
            raise SystemExit(f"twine failed: {r.stdout.decode()[-2000:]} {r.stderr.decode()[-2000:]}")
    return elapsed


def drain(url: str, timeout: float = 600) -> float:
    t0 = time.perf_counter()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    while time.perf_counter() - t0 < timeout:
        tasks = httpx.get(url + "/api/v1/tasks", headers=headers, timeout=30).json()
        if not [t for t in tasks if t["state"] in ("queued", "running")]:
            return time.perf_counter() - t0
        time.sleep(0.2)
    return float("nan")


def run_mode(corpus: list[Path], vetting: bool, parallel: int, tmp: Path, tag: str) -> dict[str, float]:
    proc, url = start(tmp / f"data-{tag}", vetting)
    try:
        elapsed = upload(url, corpus, parallel)
        backlog = drain(url) if vetting else 0.0
        scanned = None
        if vetting:
            ov = httpx.get(url + "/api/v1/security/overview?repository=bench",
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60).json()
            scanned = ov["versions"]["scanned"]
    finally:
        proc.terminate()
        proc.wait(30)
    return {"seconds": elapsed, "files_per_s": len(corpus) / elapsed, "backlog_drain_s": backlog, "scanned": scanned}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.quick:
        args.files, args.rounds = 60, 1
    with tempfile.TemporaryDirectory(prefix="wharf-bench-vetting-") as d:
        tmp = Path(d)
        (tmp / "corpus").mkdir()
        corpus = make_corpus(tmp / "corpus", args.files)
        size = sum(p.stat().st_size for p in corpus)
        runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        for r in range(args.rounds):
            for mode in ("off", "on"):
                res = run_mode(corpus, mode == "on", args.parallel, tmp, f"{mode}{r}")
                runs[mode].append(res)
                print(f"round {r + 1} vetting {mode:3}: {res['seconds']:.2f} s, {res['files_per_s']:.1f} files/s"
                      + (f", scan backlog drained {res['backlog_drain_s']:.1f} s after, {res['scanned']} scanned"
                         if mode == "on" else ""), flush=True)
    best = {m: min(runs[m], key=lambda x: x["seconds"]) for m in runs}
    ratio = best["on"]["seconds"] / best["off"]["seconds"]
    verdict = "OK" if ratio <= 1.2 else "OVER TARGET"
    print(f"\n{args.files} wheels ({size / len(corpus) / 1024:.0f} KiB each), {args.parallel} parallel twine processes")
    print(f"vetting off: {best['off']['files_per_s']:.1f} files/s; vetting on: {best['on']['files_per_s']:.1f} files/s")
    print(f"on/off upload time ratio: {ratio:.3f} (target <= 1.2): {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps({"files": args.files, "parallel": args.parallel, "runs": runs,
                                               "ratio": ratio, "target": 1.2}, indent=2))


if __name__ == "__main__":
    main()
