#!/usr/bin/env bash
# Cargo index-serving benchmark (Wharf vs nginx serving the same index files). See bench/cargo/README.md.
#   bash bench/cargo/run.sh                      # 2000 crates x 3 versions, 10 s per run, 1 and 2 workers
#   BENCH_QUICK=1 bash bench/cargo/run.sh        # 200 crates x 2 versions, 3 s per run, 1 worker
# Extra arguments go to index_bench.py (e.g. --connections 64). Loopback only; every run is bounded in time.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true
for tool in nginx wrk; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light wrk >&2
        else
            echo "bench/cargo: $tool is missing (apt-get install nginx-light wrk)" >&2
            exit 2
        fi
    fi
done
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    exec "$PY" "$HERE/index_bench.py" --crates 200 --versions 2 --duration 3 --workers 1 "$@"
fi
exec "$PY" "$HERE/index_bench.py" --crates 2000 --versions 3 --duration 10 --workers 1,2 "$@"
