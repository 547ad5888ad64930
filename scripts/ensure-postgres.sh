#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl, postgres) are on this machine.
#
# Idempotent: when they are already there this only prints their directory.
# Otherwise (as root, or with password-less sudo) it installs Debian's `postgresql`
# package with apt-get, without letting apt start the system cluster (tests start
# private clusters of their own on free ports, so the system one is never used).
#
# stdout: the bin directory (e.g. /usr/lib/postgresql/15/bin), nothing else.
# stderr: progress and errors.  Exit status non-zero when the binaries cannot be had.
#
# Environment:
#   WHARF_PG_BIN        use this bin directory (must hold initdb and pg_ctl)
#   WHARF_APT_UPDATED=1 skip `apt-get update` (a caller already ran it)
set -euo pipefail

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }

has_server_bins() {
    [ -n "${1:-}" ] && [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ]
}

find_bin_dir() {
    local d p
    if [ -n "${WHARF_PG_BIN:-}" ]; then
        if has_server_bins "$WHARF_PG_BIN"; then
            printf '%s\n' "$WHARF_PG_BIN"
            return 0
        fi
        log "WHARF_PG_BIN=$WHARF_PG_BIN does not hold initdb, pg_ctl and postgres"
    fi
    # On PATH (here /usr/local/bin/pg_ctl may be a symlink into /usr/lib/postgresql/N/bin):
    # resolve it so initdb and postgres come from the same installation.
    if p=$(command -v pg_ctl 2>/dev/null); then
        d=$(dirname "$(readlink -f "$p")")
        if has_server_bins "$d"; then
            printf '%s\n' "$d"
            return 0
        fi
    fi
    # Debian's layout; newest major version first.
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4 -rn); do
        if has_server_bins "$d"; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

# initdb refuses to run as root: tests run it as the `postgres` user the package creates.
ensure_pg_user() {
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        log "creating system user postgres"
        useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres >&2 || true
    fi
}

if bin_dir=$(find_bin_dir); then
    ensure_pg_user
    printf '%s\n' "$bin_dir"
    exit 0
fi

# --- not found: install -------------------------------------------------------
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        log "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH nor in /usr/lib/postgresql/*/bin,"
        log "and this user ($(id -un)) is not root and has no password-less sudo, so they cannot be installed."
        log "Install them yourself, e.g. as root: apt-get update && apt-get install -y postgresql"
        log "or point WHARF_PG_BIN at a directory holding initdb and pg_ctl."
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    log "PostgreSQL server binaries not found and apt-get is not available: install PostgreSQL by hand"
    log "or point WHARF_PG_BIN at a directory holding initdb and pg_ctl."
    exit 1
fi

# Keep apt from starting the system cluster it creates: a policy-rc.d that denies
# every service start (exit 101), only for the time of this install and only if the
# machine has none of its own (Debian container images often ship one already).
POLICY=/usr/sbin/policy-rc.d
policy_added=0
cleanup() {
    if [ "$policy_added" = 1 ]; then
        "${SUDO[@]}" rm -f "$POLICY" || true
    fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# added by wharf scripts/ensure-postgres.sh for the time of an install\nexit 101\n' |
        "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 0755 "$POLICY"
    policy_added=1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=600
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

if [ "${WHARF_APT_UPDATED:-0}" != 1 ]; then
    log "running apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 >&2 ||
        log "apt-get update failed; trying the install with the package lists at hand"
fi
log "installing postgresql with apt-get"
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" postgresql >&2; then
    log "apt-get install failed; retrying once after apt-get update"
    sleep 5
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 >&2 || true
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" postgresql >&2
fi

# If apt did start the system cluster anyway (no policy-rc.d honoured, systemd
# running, ...), stop it: it is not used, and stopping it frees port 5432 and memory.
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
        if [ "$status" = online ]; then
            log "stopping system cluster $ver/$name started by the package install"
            "${SUDO[@]}" pg_ctlcluster "$ver" "$name" stop >&2 || true
        fi
    done || true
fi

if bin_dir=$(find_bin_dir); then
    ensure_pg_user
    printf '%s\n' "$bin_dir"
    exit 0
fi
log "postgresql was installed but initdb/pg_ctl are still not found"
exit 1
