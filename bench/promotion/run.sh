#!/usr/bin/env bash
# Promotion benchmark: bulk copy by reference vs uploading the same files again. Usage: bash bench/promotion/run.sh [--files N]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$here/results"
exec "$root/.venv/bin/python" "$here/bench.py" --json "$here/results/promotion-$(date +%Y%m%d-%H%M%S).json" "$@"
