#!/usr/bin/env bash
# Cargo tests need a real cargo and rustc with sparse-registry support (cargo >= 1.68).
# Looks in PATH and in rustup's default place; when none is found, installs Debian's cargo and checks its version
# (Debian 12's is too old for sparse registries: then it says how to get a newer one and fails).
# Quick and idempotent when a usable cargo is there.
set -euo pipefail
log() { printf 'test-tools(cargo): %s\n' "$*" >&2; }

find_cargo() {
    local c
    for c in "$(command -v cargo 2>/dev/null || true)" "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" /root/.cargo/bin/cargo \
             /usr/local/cargo/bin/cargo; do
        if [ -n "$c" ] && [ -x "$c" ] && "$c" --version >/dev/null 2>&1; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

usable() {  # cargo >= 1.68 (sparse registries stable)
    local v
    v=$("$1" --version | awk '{print $2}')
    [ "$(printf '%s\n1.68.0\n' "${v%%-*}" | sort -V | sed -n 1p)" = "1.68.0" ]
}

if cargo=$(find_cargo) && usable "$cargo"; then
    log "cargo: $cargo ($("$cargo" --version))"
    exit 0
fi

if [ -z "${cargo:-}" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    log "no cargo found; installing Debian's cargo"
    if [ -z "${WHARF_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 >&2 || true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 cargo >&2
    cargo=$(find_cargo) || true
    if [ -n "$cargo" ] && usable "$cargo"; then
        log "cargo: $cargo ($("$cargo" --version))"
        exit 0
    fi
fi
log "no cargo >= 1.68 found (${cargo:+found $("$cargo" --version)}); the cargo tests need one."
log "Install Rust with rustup (cargo in PATH or ~/.cargo/bin), then re-run make test."
exit 1
