#!/usr/bin/env bash
# In-process cost of Core.ingest (gates + record + event in one transaction) vs a bare record. Usage: bash bench/ingest/run.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$here/results"
exec "$root/.venv/bin/python" "$here/bench.py" --json "$here/results/ingest-$(date +%Y%m%d-%H%M%S).json" "$@"
