#!/usr/bin/env bash
# Policy/quarantine overhead: in process (bench.py), and what deciding on a proxy fetch costs its first client through
# a real server (proxy.py). Usage: bash bench/policy/run.sh [--files N]   (BENCH_QUICK=1: smaller proxy run)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true
mkdir -p "$here/results"
stamp=$(date +%Y%m%d-%H%M%S)
"$root/.venv/bin/python" "$here/bench.py" --json "$here/results/policy-$stamp.json" "$@"
proxy_args=()
if [ "${BENCH_QUICK:-0}" = 1 ]; then proxy_args+=(--files 6 --size 1048576); fi
"$root/.venv/bin/python" "$here/proxy.py" --json "$here/results/policy-proxy-$stamp.json" "${proxy_args[@]}"
