#!/usr/bin/env bash
# Generic repositories are tested with curl (>= 7.68 for --etag-save/--etag-compare). Quick no-op when present.
set -euo pipefail
log() { printf 'test-tools/generic: %s\n' "$*" >&2; }
if command -v curl >/dev/null 2>&1 && curl --help all 2>/dev/null | grep -q -- '--etag-compare'; then
    log "curl: $(curl --version | sed -n 1p | cut -d' ' -f1-2)"
    exit 0
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
        log "curl (>= 7.68) is missing; install it: apt-get install -y curl"; exit 1; fi
fi
log "installing curl with apt-get"
[ -n "${WHARF_APT_UPDATED:-}" ] || "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 >&2 || true
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 curl >&2
