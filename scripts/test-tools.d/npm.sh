#!/usr/bin/env bash
# What the npm tests need: node + npm 11 (the real client) and a pinned pnpm for the cross-client check.
# pnpm goes into .cache/npm-tools/pnpm-$PNPM_VERSION of this checkout (no global install). Idempotent: a quick
# no-op when everything is there. Uses the machine's own npm configuration (registry, proxy, CA) to install.
set -euo pipefail

PNPM_VERSION=10.34.9
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
log() { printf 'test-tools/npm: %s\n' "$*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing nodejs and npm with apt-get"
        [ -n "${WHARF_APT_UPDATED:-}" ] || DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 nodejs npm >&2
    else
        log "node and npm are missing: install Node.js (20+) with npm 11"
        exit 1
    fi
fi
npm_major=$(npm --version 2>/dev/null | cut -d. -f1)
if [ "${npm_major:-0}" -lt 10 ]; then
    log "npm $(npm --version) is older than the tests expect; installing npm 11 globally"
    npm install -g --no-audit --no-fund npm@11 >&2
fi

dest="$root/.cache/npm-tools/pnpm-$PNPM_VERSION"
if [ ! -x "$dest/node_modules/.bin/pnpm" ]; then
    log "installing pnpm $PNPM_VERSION into $dest"
    rm -rf "$dest.tmp"
    mkdir -p "$dest.tmp"
    npm install --prefix "$dest.tmp" --no-audit --no-fund --no-save --loglevel=error "pnpm@$PNPM_VERSION" >&2
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
    printf "*\n" > "$root/.cache/.gitignore"  # nothing under .cache/ is part of the repository
fi
log "node $(node --version), npm $(npm --version), pnpm $("$dest/node_modules/.bin/pnpm" --version)"
