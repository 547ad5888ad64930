#!/usr/bin/env bash
# Make sure the machine has what the tests need:
#   - PostgreSQL server binaries (via scripts/ensure-postgres.sh)
#   - the `openssl` command-line tool
#   - nginx (Debian's nginx-light), in front of Wharf in tests/e2e/test_accel_redirect.py
#   - each format's clients and tools: every scripts/test-tools.d/*.sh (npm, Maven plugins, ...)
# A quick no-op when everything is already there.  Installs with apt-get as root
# (or with password-less sudo); otherwise says what is missing and exits non-zero.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'ensure-test-tools: %s\n' "$*" >&2; }

apt_pkgs=()
command -v openssl >/dev/null 2>&1 || apt_pkgs+=(openssl)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_pkgs+=(nginx-light)

if [ "${#apt_pkgs[@]}" -gt 0 ]; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            SUDO=(sudo -n)
        else
            log "missing: ${apt_pkgs[*]}; not root and no password-less sudo, so they cannot be installed."
            log "Install them yourself, e.g. as root: apt-get update && apt-get install -y ${apt_pkgs[*]}"
            exit 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "missing: ${apt_pkgs[*]}, and apt-get is not available: install them by hand"
        exit 1
    fi
    log "installing ${apt_pkgs[*]} with apt-get"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 >&2 ||
        log "apt-get update failed; trying the install with the package lists at hand"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${apt_pkgs[@]}" >&2
    export WHARF_APT_UPDATED=1 # ensure-postgres.sh need not update the lists again
fi

pg_bin=$(bash "$here/ensure-postgres.sh")
log "postgresql: $pg_bin ($("$pg_bin/postgres" --version 2>/dev/null || echo '?'))"
log "openssl: $(command -v openssl) ($(openssl version 2>/dev/null || echo '?'))"
log "nginx: $(command -v nginx || echo /usr/sbin/nginx) ($( (nginx -v || /usr/sbin/nginx -v) 2>&1 | head -1))"

for part in "$here"/test-tools.d/*.sh; do
    [ -e "$part" ] || continue
    log "running $(basename "$part")"
    bash "$part"
done
