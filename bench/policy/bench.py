"""What policies and quarantine cost on the write and read paths, in process (no HTTP):

- ingest (upload) of N files with no policy, then with 10 enabled upload policies (CEL evaluated per file, each
  decision logged): per-file time and the ratio;
- ContentService.files of a 2,000-file repository with nothing quarantined vs 100 versions quarantined (the index
  renderers' read);
- converting a decision's inputs to a CEL context (once per decision) and one CEL evaluation.

Target (checked at the end, exit 1 if missed): 10 policies add less than 3x to an upload's in-process time, and the
quarantine overlay less than 1.5x to a files() read."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from wharf.config import Settings
from wharf.core.content import NewArtifact
from wharf.core.policy import compile_expression, default_inputs
from wharf.core.services import Core


def _ingest(core: Core, repo, prefix: str, n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        data = f"{prefix}-{i}".encode()
        core.ingest(repo, NewArtifact("python", f"{prefix}{i % 50}", f"1.{i}", f"{prefix}{i % 50}-1.{i}-py3-none-any.whl",
                                      core.blobs.put_bytes(data)), actor="bench")
    return (time.perf_counter() - t) / n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        core = Core(Settings(data=Path(d) / "data", vetting=False), migrate=True)
        repo = core.create_repository(name="bench", format="python", actor="bench")
        _ingest(core, repo, "warm", 20)
        base = _ingest(core, repo, "a", args.files)
        for i in range(10):
            core.policy.create({"name": f"p{i}", "events": ["upload"], "action": "deny", "message": "no",
                                "expression": f'vulnerabilities.max_severity == "critical" && name == "never{i}" '
                                              f'|| license.startsWith("GPL-{i}.") && !("exempt" in tags)'}, actor="b")
        with_policies = _ingest(core, repo, "b", args.files)

        files_plain = min(_timed(lambda: core.content.files(repo.id)) for _ in range(15))
        for i in range(100):
            core.policy.quarantine.add(repo, f"a{i % 50}", f"1.{i}", reason="bench", actor="bench")
        core.content.files(repo.id)  # the overlay is loaded once after a change (then cached per process)
        files_quarantined = min(_timed(lambda: core.content.files(repo.id)) for _ in range(15))

        import cel

        program = compile_expression('vulnerabilities.max_severity == "critical" || license.startsWith("GPL")')
        inputs = default_inputs()
        n = 2000
        t = time.perf_counter()
        for _ in range(n):
            ctx = cel.Context(inputs)
        convert_us = (time.perf_counter() - t) / n * 1e6
        t = time.perf_counter()
        for _ in range(n * 10):
            program.execute(ctx)
        cel_us = (time.perf_counter() - t) / (n * 10) * 1e6
        core.close()

    result = {"upload_ms": base * 1000, "upload_10_policies_ms": with_policies * 1000,
              "policy_overhead_ratio": with_policies / base, "files_ms": files_plain * 1000,
              "files_100_quarantined_ms": files_quarantined * 1000, "quarantine_read_ratio": files_quarantined / files_plain,
              "cel_inputs_to_context_us": convert_us, "cel_eval_us": cel_us, "files": args.files}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["policy_overhead_ratio"] < 3.0 and result["quarantine_read_ratio"] < 1.5
    print("targets:", "met" if ok else "MISSED")
    return 0 if ok else 1


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())
