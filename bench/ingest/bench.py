"""In-process cost of recording a file: Core.ingest (gates + record + its package.created event in the same
transaction) against a bare ContentService.add, on SQLite. Usage: bench.py [--files N] [--json PATH]"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from wharf.config import Settings
from wharf.core.content import NewArtifact
from wharf.core.services import Core


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    n = args.files
    core = Core(Settings(data=Path(tempfile.mkdtemp(prefix="wharf-ingest-bench-")), vetting=False), migrate=True)
    repo = core.create_repository(name="dev", format="python", actor="bench")
    blobs = [core.blobs.put_bytes(b"file %d" % i) for i in range(2 * n * args.rounds)]
    times: dict[str, list[float]] = {"content.add": [], "ingest": []}
    i = 0
    for _ in range(args.rounds):
        for mode in times:
            start = time.perf_counter()
            for _ in range(n):
                new = NewArtifact("python", f"p{i}", "1.0", f"p{i}-1.0.tar.gz", blobs[i])
                if mode == "ingest":
                    core.ingest(repo, new, actor="bench")
                else:
                    core.content.add(repo, new, actor="bench")
                i += 1
            times[mode].append((time.perf_counter() - start) / n * 1000)
    core.close()
    result = {mode: round(statistics.median(v), 3) for mode, v in times.items()}
    result["ratio"] = round(result["ingest"] / result["content.add"], 3)
    print(f"{n} files x {args.rounds} rounds, median ms a file: content.add {result['content.add']}, "
          f"ingest {result['ingest']} (ratio {result['ratio']})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
