#!/usr/bin/env bash
# Generic-files benchmark (Wharf vs nginx on the same files). Usage: bash bench/generic/run.sh [--quick] [--workers N]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
for tool in wrk nginx curl; do command -v "$tool" >/dev/null || { echo "bench/generic needs $tool (apt-get install -y $tool)" >&2; exit 1; }; done
mkdir -p "$here/results"
exec "$root/.venv/bin/python" "$here/bench.py" --json "$here/results/generic-$(date +%Y%m%d-%H%M%S).json" "$@"
