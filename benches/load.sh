#!/usr/bin/env bash
# HTTP load test of `faas up` serving the hello component, compared with `wasmtime serve`
# serving the same .wasm (same wrk parameters, one server at a time, loopback only).
#
#   bash benches/load.sh              # faas up, then wasmtime serve if a wasmtime binary is found
#   bash benches/load.sh --density    # runs benches/density.sh instead
#
# Environment:
#   DURATION=10s        wrk measurement duration (per server)
#   WARMUP=2s           wrk warm-up run before each measurement (discarded); 0 to skip
#   THREADS=2 CONNECTIONS=64
#   WASMTIME=/path      wasmtime binary (else /tmp/wasmtime-cli/bin/wasmtime, else PATH)
#   SKIP_BUILD=1        do not run the cargo builds (use what is already built)
set -euo pipefail

if [[ "${1:-}" == "--density" ]]; then
    shift
    exec bash "$(dirname "${BASH_SOURCE[0]}")/density.sh" "$@"
fi
if [[ $# -gt 0 ]]; then
    echo "usage: $0 [--density]" >&2
    exit 2
fi

BENCH=load
# shellcheck source=benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"

# --- builds -------------------------------------------------------------------------------
build_or_reuse
[[ -f "$HELLO" ]] || { log "no hello.wasm (run bash examples/build.sh)"; exit 1; }
command -v wrk >/dev/null || { log "wrk is not installed"; exit 1; }
log "artifact: $HELLO ($(wc -c <"$HELLO" | tr -d ' ') bytes)"

# --- faas up ------------------------------------------------------------------------------
mkdir -p "$WORK/state"
wasm_function hello "$HELLO" $'  timeout: 10s\n  memory: 64Mi\n  concurrency: 100\n'

start_faas /function/hello/
URL="http://127.0.0.1:$PORT/function/hello/"
log "faas answers: $(curl -s --max-time 2 "$URL")"
log "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $URL"
RESULT="$(run_wrk "$URL" faas)"
read -r OURS_RPS OURS_P50 OURS_P99 OURS_NON2XX OURS_ERRORS <<<"$RESULT"
OURS_RSS="$(status_kib VmRSS "$FAAS_PID" 2>/dev/null || echo 0)"
stop "$FAAS_PID"

# --- wasmtime serve -----------------------------------------------------------------------
WASMTIME_BIN="${WASMTIME:-}"
if [[ -z "$WASMTIME_BIN" && -x /tmp/wasmtime-cli/bin/wasmtime ]]; then
    WASMTIME_BIN=/tmp/wasmtime-cli/bin/wasmtime
fi
if [[ -z "$WASMTIME_BIN" ]]; then
    WASMTIME_BIN="$(command -v wasmtime || true)"
fi

THEIRS_RPS=""
if [[ -n "$WASMTIME_BIN" && -x "$WASMTIME_BIN" ]]; then
    PORT2="$(free_port)"
    log "$("$WASMTIME_BIN" --version)"
    log "starting $WASMTIME_BIN serve -S cli --addr 127.0.0.1:$PORT2 $HELLO"
    "$WASMTIME_BIN" serve -S cli --addr "127.0.0.1:$PORT2" "$HELLO" >"$WORK/wasmtime.log" 2>&1 &
    WT_PID=$!
    PIDS+=("$WT_PID")
    URL2="http://127.0.0.1:$PORT2/function/hello/"
    if ! wait_for_200 "$URL2" 120 "$WT_PID"; then
        cat "$WORK/wasmtime.log" >&2
        exit 1
    fi
    log "wasmtime answers: $(curl -s --max-time 2 "$URL2")"
    log "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $URL2"
    RESULT="$(run_wrk "$URL2" wasmtime)"
    read -r THEIRS_RPS THEIRS_P50 THEIRS_P99 THEIRS_NON2XX THEIRS_ERRORS <<<"$RESULT"
    THEIRS_RSS="$(awk '/^VmRSS:/ {print $2}' "/proc/$WT_PID/status" 2>/dev/null || echo 0)"
    stop "$WT_PID"
else
    log "wasmtime not found: the wasmtime serve comparison is skipped."
    log "install it with: cargo install wasmtime-cli@48.0.8 --locked"
    log "(or point WASMTIME at a wasmtime binary)"
fi

# --- report -------------------------------------------------------------------------------
echo
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up $WARMUP), $(nproc) CPUs"
printf '%-16s %12s %10s %10s %10s %8s  %s\n' server req/s p50_ms p99_ms rss_kib non2xx socket_errors
printf '%-16s %12s %10s %10s %10s %8s  %s\n' "faas up" "$OURS_RPS" "$OURS_P50" "$OURS_P99" \
    "$OURS_RSS" "$OURS_NON2XX" "$OURS_ERRORS"
if [[ -n "$THEIRS_RPS" ]]; then
    printf '%-16s %12s %10s %10s %10s %8s  %s\n' "wasmtime serve" "$THEIRS_RPS" "$THEIRS_P50" \
        "$THEIRS_P99" "$THEIRS_RSS" "$THEIRS_NON2XX" "$THEIRS_ERRORS"
    awk -v a="$OURS_RPS" -v b="$THEIRS_RPS" -v c="$OURS_P50" -v d="$THEIRS_P50" \
        -v e="$OURS_P99" -v f="$THEIRS_P99" 'BEGIN {
        printf "ratio ours/wasmtime: req/s %.2f, p50 %.2f, p99 %.2f\n",
            (b > 0 ? a / b : 0), (d > 0 ? c / d : 0), (f > 0 ? e / f : 0)
    }'
else
    echo "wasmtime serve: skipped (no wasmtime binary; cargo install wasmtime-cli@48.0.8 --locked)"
fi
if [[ "$OURS_NON2XX" != 0 || "${THEIRS_NON2XX:-0}" != 0 ]]; then
    echo "warning: some responses were not 2xx/3xx; see the wrk output above" >&2
fi
