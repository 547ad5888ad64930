#!/usr/bin/env bash
# Wharf end-to-end benchmark (called by `make bench`).  See bench/README.md.
#
#   bash bench/run.sh                 # full run: 2000x5 corpus, 100k-project scaling (~2 h 15 min)
#   BENCH_QUICK=1 bash bench/run.sh   # smoke test: 200x3 corpus, short runs (~2-3 min)
#
# Env knobs:
#   BENCH_QUICK=1          small corpus / short durations
#   WHARF_WORKERS=N        passed to `wharf serve --workers N`
#   WHARF_SHARED_BENCH     shared harness dir (default: <repo>/../shared/bench)
#   WHARF_BIN              wharf executable (default: <repo>/.venv/bin/wharf)
#   PEERS_VENV             peers venv (default /tmp/peers/venv; made by install_peers.sh if missing)
#   BENCH_WORK             scratch dir for Wharf data + peers (default /tmp/wharf-bench)
#   BENCH_SKIP_PEERS=1     skip the run.py peer comparison
#   BENCH_CEILING=0        do not measure the bare server stack (ceiling.py) beside Wharf in run.py
#   BENCH_FRONT=0          do not measure Wharf behind nginx (contrib/nginx/wharf.conf, target wharf-nginx)
#   BENCH_SKIP_SCALING=1   skip scaling.py
#   BENCH_PROXY=0|1        proxy/group stage (proxy.py) on the loaded Wharf; default 1 in the full run, 0 in quick
#   BENCH_RESULTS=DIR      where results go (default bench/results)
#   BENCH_KEEP_DATA=1      keep Wharf's data dir under $BENCH_WORK after the run
#   BENCH_STRICT=1         exit 1 if any target FAILs or is not measured
#   BENCH_RUN_ARGS / BENCH_SCALING_ARGS / BENCH_PROXY_ARGS   extra args appended to run.py / scaling.py / proxy.py
# Everything runs on 127.0.0.1; every load loop is bounded in time and count.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/.." && pwd))"
SHARED="${WHARF_SHARED_BENCH:-$ROOT/../shared/bench}"
SHARED="$(cd "$SHARED" && pwd)"
PEERS_VENV="${PEERS_VENV:-/tmp/peers/venv}"
PY="$PEERS_VENV/bin/python"
WHARF="${WHARF_BIN:-$ROOT/.venv/bin/wharf}"
WHARF_PY="$(dirname "$WHARF")/python"   # the interpreter of Wharf's virtualenv (ceiling.py needs granian)
QUICK="${BENCH_QUICK:-0}"
WORK="${BENCH_WORK:-/tmp/wharf-bench}"
RESULTS="${BENCH_RESULTS:-$HERE/results}"
TS="$(date +%Y%m%d-%H%M%S)"
export WHARF_SHARED_BENCH="$SHARED"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true
export NO_PROXY=127.0.0.1,localhost,::1 no_proxy=127.0.0.1,localhost,::1

say() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[ -f "$SHARED/run.py" ] || { echo "shared harness not found at $SHARED (set WHARF_SHARED_BENCH)" >&2; exit 2; }
[ -x "$WHARF" ] || { echo "wharf executable not found at $WHARF (set WHARF_BIN)" >&2; exit 2; }
"$WHARF" serve --help >/dev/null 2>&1 || { echo "'$WHARF serve --help' fails: is the server installed?" >&2; exit 2; }

if [ "$QUICK" = 1 ]; then
  MODE=quick
  N=200; M=3
  RUN_ARGS=(--rounds 1 --duration 2 --sample-pages 30 --large-count 5 --pip-projects 20 --pip-rounds 1
            --upload-count 50 --upload-rounds 1 --settle-timeout 20)
  SCALE_ARGS=(--small 200 --large 2000 --versions 200 --samples 10 --fixed-pages 200 --duration 2 --rounds 1 --grow-timeout 120)
  PROXY_ARGS=(--rounds 3 --duration 3 --pip-rounds 3 --pip-projects 20)
  PROXY_DEFAULT=0
else
  MODE=full
  N=2000; M=5
  RUN_ARGS=(--rounds 3 --duration 10 --large-count 20 --pip-projects 20 --pip-rounds 3
            --upload-count 200 --upload-rounds 3)
  # the 100k catalog is measured at rest, as the 1k one: its ~99,000 scans take ~50 min after the growth
  SCALE_ARGS=(--small 1000 --large 100000 --versions 2000 --samples 20 --duration 5 --grow-timeout 2400
              --large-settle 3600)
  PROXY_ARGS=(--rounds 3 --duration 4 --pip-rounds 3 --pip-projects 20)
  PROXY_DEFAULT=1
fi
BENCH_PROXY="${BENCH_PROXY:-$PROXY_DEFAULT}"
CORPUS="${BENCH_CORPUS:-/tmp/peers/corpus-${N}x${M}}"
NAME="wharf-${MODE}-${TS}"
mkdir -p "$RESULTS" "$WORK"

# ---- 1. peers + corpus
if [ ! -x "$PY" ]; then
  say "installing peers into $PEERS_VENV (shared install_peers.sh)"
  bash "$SHARED/install_peers.sh" "$PEERS_VENV"
fi
if ! command -v wrk >/dev/null; then say "wrk not installed: load runs use the shared python client (slower)"; fi
if [ ! -f "$CORPUS/manifest.json" ]; then
  say "making corpus $CORPUS (${N} projects x ${M} versions + 50 MiB wheel)"
  "$PY" "$SHARED/make_corpus.py" "$CORPUS" -n "$N" -m "$M" --big-mb 50 -q
fi

# ---- 2. Wharf on a fresh data dir
RUNDIR="$WORK/$NAME"
mkdir -p "$RUNDIR"
STATE="$RUNDIR/wharf-state.json"
WORKERS_ARGS=()
[ -n "${WHARF_WORKERS:-}" ] && WORKERS_ARGS=(--workers "$WHARF_WORKERS")
STARTED=0
cleanup() {
  if [ -n "${CPID:-}" ]; then kill "$CPID" 2>/dev/null || true; fi
  if [ "${FRONT_STARTED:-0}" = 1 ]; then "$PY" "$HERE/front.py" stop --workdir "$RUNDIR/front" || true; fi
  if [ "$STARTED" = 1 ] && [ -f "$STATE" ]; then "$PY" "$HERE/wharfbench.py" stop --state "$STATE" || true; fi
  if [ "${PEERS_STARTED:-0}" = 1 ]; then "$PY" "$SHARED/peers.py" stop --workdir "$WORK/peers" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting Wharf ($WHARF) data=$RUNDIR/data ${WORKERS_ARGS[*]:-}"
WHARF_ACCEL_REDIRECT=/-/accel/ "$PY" "$HERE/wharfbench.py" start --wharf "$WHARF" --data "$RUNDIR/data" --state "$STATE" \
  --log "$RUNDIR/wharf-server.log" --repo bench "${WORKERS_ARGS[@]}"
STARTED=1
read -r WPID PORT TOKEN < <("$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["pid"], s["port"], s["token"])' "$STATE")
BASE="http://127.0.0.1:$PORT"
say "Wharf pid=$WPID at $BASE"

# ---- 3. load the corpus
say "loading $CORPUS into $BASE/bench/"
LOAD_JSON="$RESULTS/$NAME-load.json"
if ! "$PY" "$HERE/load_corpus.py" "$CORPUS" --url "$BASE/bench/legacy/" --token "$TOKEN" --threads 8 \
      --timeout 1800 --json "$LOAD_JSON" -q >/dev/null; then
  say "WARNING: corpus load incomplete (see $LOAD_JSON); continuing"
fi

# ---- 3b. let the background work the load queued (a vetting scan per file) finish first: measurements are of the
#          steady-state server; the drain time goes into the results
say "waiting for the load's background work (vetting scans) to finish"
"$PY" "$HERE/wharfbench.py" drain --state "$STATE" --timeout 1200 --json "$RESULTS/$NAME-drain.json" \
  || say "WARNING: background work not drained; measurements include it"

# ---- 4. peer comparison (shared run.py)
RUN_JSON="$RESULTS/$NAME.json"
if [ "${BENCH_SKIP_PEERS:-0}" != 1 ]; then
  # stop leftovers of an aborted earlier run of ours (only PIDs recorded in our own workdir)
  "$PY" "$SHARED/peers.py" stop --workdir "$WORK/peers" >/dev/null 2>&1 || true
  PEERS_STARTED=1
  # the serving stack's ceiling: a bare ASGI app on the same server options, pages and files from memory
  CEIL_ARGS=()
  if [ "${BENCH_CEILING:-1}" = 1 ]; then
    CPORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$WHARF_PY" "$HERE/ceiling.py" --corpus "$CORPUS" --port "$CPORT" --workdir "$RUNDIR/ceiling" \
        >"$RUNDIR/ceiling.log" 2>&1 &
    CPID=$!
    for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$CPORT/health" >/dev/null 2>&1 && break; sleep 0.5; done
    CEIL_ARGS=(--target "granian-bare=http://127.0.0.1:$CPORT/simple/" --pid "granian-bare=$CPID")
  fi
  # the same Wharf behind nginx configured by contrib/nginx/wharf.conf (downloads sent by nginx: X-Accel-Redirect)
  FRONT_ARGS=()
  if [ "${BENCH_FRONT:-1}" = 1 ]; then
    read -r _FPID FPORT < <("$PY" "$HERE/front.py" start --upstream "127.0.0.1:$PORT" --pages "$RUNDIR/data/pages" \
                                --workdir "$RUNDIR/front")
    FRONT_STARTED=1
    FRONT_ARGS=(--target "wharf-nginx=http://127.0.0.1:$FPORT/bench/simple/" --pid "wharf-nginx=$WPID")
  fi
  say "run.py: nginx-static, pypiserver, devpi vs wharf${FRONT_ARGS[*]:+, wharf-nginx}${CPID:+ and granian-bare}"
  # shellcheck disable=SC2086
  "$PY" "$SHARED/run.py" --corpus "$CORPUS" --start nginx-static,pypiserver,devpi \
      --workdir "$WORK/peers" --venv "$PEERS_VENV" \
      --target "wharf=$BASE/bench/simple/" --upload "wharf=$BASE/bench/legacy/" \
      --auth "wharf=__token__:$TOKEN" --pid "wharf=$WPID" "${CEIL_ARGS[@]}" "${FRONT_ARGS[@]}" \
      "${RUN_ARGS[@]}" --json "$RUN_JSON" --markdown "$RESULTS/$NAME.md" ${BENCH_RUN_ARGS:-} \
    || say "WARNING: run.py exited with an error"
  if [ -n "${CPID:-}" ]; then kill "$CPID" 2>/dev/null || true; wait "$CPID" 2>/dev/null || true; CPID=; fi
  if [ "${FRONT_STARTED:-0}" = 1 ]; then "$PY" "$HERE/front.py" stop --workdir "$RUNDIR/front"; FRONT_STARTED=0; fi
  PEERS_STARTED=0
  # the throwaway token is recorded in run.py's argv: scrub it
  [ -f "$RUN_JSON" ] && sed -i "s/$TOKEN/<redacted>/g" "$RUN_JSON"
fi
# ---- 4b. proxy / group repositories (proxy.py: its own nginx-static upstream, proxpi, devpi mirror and
#          fresh Wharf instances for the cold pip rounds; the hosted repo of this Wharf is the reference)
PROXY_JSON="$RESULTS/proxy-${MODE}-${TS}.json"
PROXY_SUMMARY=()
if [ "$BENCH_PROXY" = 1 ]; then
  PROXY_SUMMARY=(--proxy "$PROXY_JSON")
  say "proxy.py ${PROXY_ARGS[*]}"
  # shellcheck disable=SC2086
  "$PY" "$HERE/proxy.py" --corpus "$CORPUS" --state "$STATE" --hosted bench --wharf "$WHARF" "${WORKERS_ARGS[@]}" \
      --workdir "$WORK/proxy" --venv "$PEERS_VENV" "${PROXY_ARGS[@]}" \
      --json "$PROXY_JSON" --markdown "$RESULTS/proxy-${MODE}-${TS}.md" ${BENCH_PROXY_ARGS:-} \
    || say "WARNING: proxy.py reported an error"
fi
"$PY" "$HERE/wharfbench.py" stop --state "$STATE"
STARTED=0
# the server log stays in $RUNDIR; the data dir (corpus copy + database) goes unless asked to keep it
[ "${BENCH_KEEP_DATA:-0}" = 1 ] || rm -rf "$RUNDIR/data"

# ---- 5. scaling (its own fresh Wharf)
SCALE_JSON="$RESULTS/$NAME-scaling.json"
if [ "${BENCH_SKIP_SCALING:-0}" != 1 ]; then
  say "scaling.py ${SCALE_ARGS[*]}"
  # shellcheck disable=SC2086
  "$PY" "$HERE/scaling.py" --wharf "$WHARF" "${WORKERS_ARGS[@]}" "${SCALE_ARGS[@]}" --json "$SCALE_JSON" \
      ${BENCH_SCALING_ARGS:-} || say "WARNING: scaling.py reported an error"
fi

# ---- 6. summary
STRICT=()
[ "${BENCH_STRICT:-0}" = 1 ] && STRICT=(--strict)
rc=0
"$PY" "$HERE/summary.py" --run "$RUN_JSON" --scaling "$SCALE_JSON" --load "$LOAD_JSON" "${PROXY_SUMMARY[@]}" \
    --drain "$RESULTS/$NAME-drain.json" \
    --json "$RESULTS/$NAME-summary.json" --markdown "$RESULTS/$NAME-summary.md" "${STRICT[@]}" || rc=$?
say "results: $RESULTS/$NAME{.json,.md,-load.json,-scaling.json,-summary.json,-summary.md}"
[ "$BENCH_PROXY" = 1 ] && say "proxy/group: $RESULTS/proxy-${MODE}-${TS}{.json,.md}"
exit $rc
