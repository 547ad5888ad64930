"""Import N generated OSV records (an ``all.zip`` as the OSV dumps ship them) into a fresh Wharf, time it, import
the same zip again (incremental: everything unchanged), then change one advisory and count how many stored package
versions are re-evaluated (only those of the package it names)."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from wharf.config import Settings
from wharf.core.content import NewArtifact
from wharf.core.services import Core

VECTORS = ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N",
           "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N"]
ECOSYSTEMS = [("PyPI", "py-pkg-{}"), ("npm", "js-pkg-{}"), ("crates.io", "rs_pkg_{}"), ("Maven", "org.example:lib-{}")]


def make_record(i: int, rng: random.Random, modified: str = "2026-01-01T00:00:00Z") -> dict:
    eco, pattern = ECOSYSTEMS[i % len(ECOSYSTEMS)]
    name = pattern.format(i % 20000)  # several advisories per package, as in real data
    fixed = f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
    return {"schema_version": "1.6.0", "id": f"BENCH-{i:07d}", "modified": modified,
            "published": "2025-06-01T00:00:00Z", "aliases": [f"CVE-2026-{i:07d}"],
            "summary": f"generated issue {i}", "details": "A generated advisory for the import benchmark. " * 3,
            "severity": [{"type": "CVSS_V4" if VECTORS[i % 4].startswith("CVSS:4") else "CVSS_V3", "score": VECTORS[i % 4]}],
            "affected": [{"package": {"ecosystem": eco, "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
            "references": [{"type": "ADVISORY", "url": f"http://127.0.0.1/advisories/BENCH-{i:07d}"}]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--packages", type=int, default=300, help="stored Python package names (3 versions each)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wharf-bench-advisories-"))
    rng = random.Random(7)
    zpath = tmp / "all.zip"
    t0 = time.perf_counter()
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(args.records):
            zf.writestr(f"BENCH-{i:07d}.json", json.dumps(make_record(i, rng)))
    print(f"generated {args.records} records ({zpath.stat().st_size / 1e6:.1f} MB zip) in {time.perf_counter() - t0:.1f} s")

    settings = Settings(data=tmp / "data", access_log=False, vetting=True,
                        database_url=os.environ.get("WHARF_DATABASE_URL") or None)
    core = Core(settings, migrate=True)
    try:
        repo = core.create_repository(name="py", format="python", kind="hosted", private=False, config={}, actor="bench")
        for p in range(args.packages):
            for v in ("0.1.0", "5.0.0", "99.0.0"):
                blob = core.blobs.put_bytes(f"py-pkg-{p}-{v}".encode())
                core.ingest(repo, NewArtifact(format="python", name=f"py-pkg-{p}", version=v,
                                              filename=f"py_pkg_{p}-{v}.tar.gz", blob=blob), actor="bench")
        core.tasks.drain(core, timeout=600)  # the first scans of what is stored
        stored = args.packages * 3

        t0 = time.perf_counter()
        first = core.advisories.import_source(zpath)
        elapsed = time.perf_counter() - t0
        print(f"import of {first.added} records: {elapsed:.1f} s ({first.added / elapsed:,.0f} records/s); "
              f"{first.packages_touched} package names touched, {first.reevaluated} of {stored} stored versions "
              f"re-evaluated, {first.changed_results} results changed")
        verdict = "PASS" if elapsed < 60 else "FAIL"
        print(f"target: 100,000 records in under 60 s -> {verdict} ({args.records} records here)")

        t0 = time.perf_counter()
        again = core.advisories.import_source(zpath)
        print(f"re-import of the same zip: {again.unchanged} unchanged, {again.reevaluated} re-evaluated, "
              f"{time.perf_counter() - t0:.1f} s")

        # one advisory changes: only the stored versions of the package it names are re-evaluated
        changed = make_record(0, random.Random(1), modified="2026-06-01T00:00:00Z")
        changed["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"fixed": "6.0.0"}]
        one = tmp / "one.zip"
        with zipfile.ZipFile(one, "w") as zf:
            zf.writestr("BENCH-0000000.json", json.dumps(changed))
        t0 = time.perf_counter()
        rep = core.advisories.import_source(one)
        print(f"one advisory changed ({changed['affected'][0]['package']['name']}): {rep.reevaluated} of {stored} "
              f"stored package versions re-evaluated, {rep.changed_results} results changed "
              f"(scan.completed events), {time.perf_counter() - t0:.2f} s")
        return 0 if verdict == "PASS" or args.records != 100_000 else 1
    finally:
        core.close()


if __name__ == "__main__":
    sys.exit(main())
