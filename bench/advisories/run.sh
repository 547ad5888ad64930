#!/usr/bin/env bash
# Advisory import and re-evaluation benchmark (in-process Core, SQLite by default; WHARF_DATABASE_URL for PostgreSQL).
#   bash bench/advisories/run.sh                  # 100,000 generated OSV records (target: import < 60 s)
#   BENCH_QUICK=1 bash bench/advisories/run.sh    # 10,000 records
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    exec "$PY" "$HERE/bench.py" --records 10000 "$@"
fi
exec "$PY" "$HERE/bench.py" --records 100000 "$@"
