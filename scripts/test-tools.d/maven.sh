#!/usr/bin/env bash
# What the Maven tests need from outside, fetched once:
#   - `mvn` and a JDK (Debian's `maven` package) if missing;
#   - the pinned Maven plugins of tests/e2e/maven/plugins.txt, with everything they load, in a dedicated local
#     repository ($WHARF_M2_CACHE, default ~/.cache/wharf-m2/repository). The tests copy it per test and run mvn
#     with a mirror of everything pointing at Wharf, so they never reach a public repository.
# Fetching uses the machine's own Maven set-up (its global settings.xml and default remote repository).
# Idempotent: a no-op (well under a second) when the cache matches plugins.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
plugins="$root/tests/e2e/maven/plugins.txt"
cache="${WHARF_M2_CACHE:-$HOME/.cache/wharf-m2}"
log() { printf 'test-tools/maven: %s\n' "$*" >&2; }

if ! command -v mvn >/dev/null 2>&1; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            SUDO=(sudo -n)
        else
            log "mvn is missing; not root and no password-less sudo: install it yourself (apt-get install -y maven)"
            exit 1
        fi
    fi
    log "installing maven with apt-get"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 maven >&2 || {
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=600 >&2
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 maven >&2
    }
fi

# the stamp names what the cache was built for: the plugin list and this script
stamp=$(cat "$plugins" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
if [ -f "$cache/.stamp" ] && [ "$(cat "$cache/.stamp")" = "$stamp" ] && [ -d "$cache/repository" ]; then
    log "plugins cached in $cache ($(mvn -v 2>/dev/null | sed -n 1p | sed 's/\x1b\[[0-9;]*m//g'))"
    exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A project that runs every lifecycle step and goal the tests run, so each plugin and what it loads at run time
# (compiler back-end, surefire providers, deploy transport) lands in the cache.
plugin_xml=""
while read -r coord version; do
    case "$coord" in ''|'#'*) continue ;; esac
    plugin_xml+="<plugin><groupId>${coord%%:*}</groupId><artifactId>${coord#*:}</artifactId><version>$version</version></plugin>"
done <"$plugins"

write_project() { # dir version
    mkdir -p "$1/src/main/java/org/wharf/prefetch"
    cat >"$1/pom.xml" <<EOF
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.wharf.prefetch</groupId>
  <artifactId>prefetch</artifactId>
  <version>$2</version>
  <packaging>jar</packaging>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <maven.compiler.release>17</maven.compiler.release>
  </properties>
  <build><plugins>$plugin_xml</plugins></build>
</project>
EOF
    echo 'package org.wharf.prefetch; public class Prefetch { public static int one() { return 1; } }' \
        >"$1/src/main/java/org/wharf/prefetch/Prefetch.java"
}

printf '<settings/>\n' >"$work/settings.xml"
mvn_() { mvn -B -ntp -s "$work/settings.xml" -Dmaven.repo.local="$cache/repository.new" "$@" >"$work/mvn.log" 2>&1 || {
    tail -40 "$work/mvn.log" >&2; log "mvn $* failed (full log above)"; exit 1; }; }

rm -rf "$cache/repository.new"
[ -d "$cache/repository" ] && cp -a "$cache/repository" "$cache/repository.new"
log "fetching the pinned Maven plugins into $cache (once)"
for version in 1.0 1.0-SNAPSHOT; do
    write_project "$work/p-$version" "$version"
    (cd "$work/p-$version" && mvn_ clean deploy "-DaltDeploymentRepository=prefetch::file://$work/deployed" &&
        mvn_ dependency:resolve dependency:tree)
done
# our own test artifacts must never come from the cache
rm -rf "$cache/repository.new/org/wharf/prefetch"
rm -rf "$cache/repository"
mv "$cache/repository.new" "$cache/repository"
echo "$stamp" >"$cache/.stamp"
log "plugins cached in $cache ($(du -sh "$cache/repository" | cut -f1))"
