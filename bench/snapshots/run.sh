#!/usr/bin/env bash
# Snapshot views vs the live tree. Usage: bash bench/snapshots/run.sh [--packages N] [--seconds S]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
command -v wrk >/dev/null || { echo "bench/snapshots needs wrk (apt-get install -y wrk)" >&2; exit 1; }
mkdir -p "$here/results"
exec "$root/.venv/bin/python" "$here/bench.py" --json "$here/results/snapshots-$(date +%Y%m%d-%H%M%S).json" "$@"
