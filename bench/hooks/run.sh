#!/usr/bin/env bash
# Hooks-area costs (see bench/hooks/bench.py): allowlist / entitlement overhead on downloads (in-process) and upload
# latency with a webhook to a slow receiver (real server). Loopback only; bounded in count.
#   bash bench/hooks/run.sh                 # 5000 downloads per case, 40 uploads per case
#   BENCH_QUICK=1 bash bench/hooks/run.sh   # 1000 and 15
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true
mkdir -p "$here/results"
args=(--json "$here/results/hooks-$(date +%Y%m%d-%H%M%S).json")
if [ "${BENCH_QUICK:-0}" = 1 ]; then args+=(--requests 1000 --uploads 15); fi
exec "$root/.venv/bin/python" "$here/bench.py" "${args[@]}" "$@"
