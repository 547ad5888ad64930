#!/usr/bin/env bash
# Upload throughput with vetting on vs off (target: on within 1.2x of off). Usage: bash bench/vetting/run.sh [--quick]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$here/results"
cd "$root"
exec "$root/.venv/bin/python" "$here/bench.py" --json "$here/results/vetting-$(date +%Y%m%d-%H%M%S).json" "$@"
