#!/usr/bin/env bash
# Policy/quarantine overhead, in process. Usage: bash bench/policy/run.sh [--files N]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$here/results"
exec "$root/.venv/bin/python" "$here/bench.py" --json "$here/results/policy-$(date +%Y%m%d-%H%M%S).json" "$@"
