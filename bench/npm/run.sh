#!/usr/bin/env bash
# npm benchmarks in one command (see bench/npm/README.md):
#   bash bench/npm/run.sh                  # (a) packuments vs nginx, (b) npm install: Wharf group vs Verdaccio
#   BENCH_QUICK=1 bash bench/npm/run.sh    # smaller and shorter (~3 min)
# Extra arguments go to npmbench.py (e.g. --only install, --packages 500, --workers 2).
# Installs what it needs when missing: nginx-light and wrk (apt, as root), Verdaccio (pinned, from the npm registry,
# into .cache/npm-bench/ of this checkout). Loopback only; every load loop is bounded in time and count.
set -euo pipefail

VERDACCIO_VERSION=6.5.0
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${WHARF_PYTHON:-$ROOT/.venv/bin/python}"
WHARF="${WHARF_BIN:-$ROOT/.venv/bin/wharf}"
WORK="${BENCH_WORK:-/tmp/wharf-bench-npm}"
CACHE="$ROOT/.cache/npm-bench"
if [ -z "${WHARF_SHARED_BENCH:-}" ]; then  # beside the checkout (main) or two levels up (a worktree)
    for d in "$ROOT/../shared/bench" "$ROOT/../../shared/bench"; do
        [ -f "$d/loadgen.py" ] && WHARF_SHARED_BENCH="$(cd "$d" && pwd)" && break
    done
fi
export WHARF_SHARED_BENCH="${WHARF_SHARED_BENCH:-$ROOT/../shared/bench}"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
say() { printf '[bench/npm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[ -x "$WHARF" ] || { say "wharf not found at $WHARF: run 'make venv' first (or set WHARF_BIN)"; exit 2; }
[ -f "$WHARF_SHARED_BENCH/loadgen.py" ] || { say "shared harness not found at $WHARF_SHARED_BENCH"; exit 2; }
command -v npm >/dev/null || { say "npm is missing (scripts/test-tools.d/npm.sh installs it)"; exit 2; }

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { say "missing ${missing[*]}: install them (apt-get install ${missing[*]})"; exit 2; }
    say "installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi

VDIR="$CACHE/verdaccio-$VERDACCIO_VERSION"
if [ ! -x "$VDIR/node_modules/.bin/verdaccio" ]; then
    say "installing verdaccio $VERDACCIO_VERSION into $VDIR"
    rm -rf "$VDIR.tmp" && mkdir -p "$VDIR.tmp"
    # verdaccio asks for node-fetch@cjs (a dist-tag for the 2.x line) which not every registry mirror carries
    cat > "$VDIR.tmp/package.json" <<JSON
{"name": "verdaccio-bench", "private": true, "dependencies": {"verdaccio": "$VERDACCIO_VERSION"},
 "overrides": {"node-fetch": "2.7.0"}}
JSON
    (cd "$VDIR.tmp" && npm install --no-audit --no-fund --loglevel=error >&2)
    rm -rf "$VDIR" && mv "$VDIR.tmp" "$VDIR"
    printf '*\n' > "$ROOT/.cache/.gitignore"
fi

ARGS=()
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    ARGS=(--packages 500 --rounds 1 --duration 3 --install-rounds 2)
fi
say "wharf: $WHARF; verdaccio $VERDACCIO_VERSION; work dir $WORK"
exec "$PY" "$HERE/npmbench.py" --work "$WORK" --wharf "$WHARF" --verdaccio "$VDIR/node_modules/.bin/verdaccio" \
    --verdaccio-version "$VERDACCIO_VERSION" --results "$ROOT/bench/results" "${ARGS[@]}" "$@"
