#!/usr/bin/env bash
# Idle connections: what each costs `faas up` in memory, and whether holding many changes the
# hot path. One `faas up` serves hello; after a wrk run (the baseline, which also warms the
# allocator), IDLE connections are opened and held (benches/idle_connections.py): first
# keep-alive connections that made one request each (what a load balancer keeps between
# requests), then, in a second `faas up` (the first one's freed memory would hide the cost),
# connections that send nothing. For each: VmRSS and fds of faas before and while they are
# held, the difference per connection, and hello's req/s under wrk while they are held over
# the baseline's. FAAS=path measures another build. Loopback only.
#
#   bash benches/idle-connections.sh
#
# Environment: IDLE=10000 DURATION=10s WARMUP=2s THREADS=1 CONNECTIONS=32
#              SKIP_BUILD=1 (use what is built)
set -euo pipefail

BENCH=idle-connections
# shellcheck source=benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
IDLE="${IDLE:-10000}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
THREADS="${THREADS:-1}"
CONNECTIONS="${CONNECTIONS:-32}"
command -v wrk >/dev/null || { log "wrk is not installed (apt-get install wrk)"; exit 1; }
# Both ends of every held connection are on this machine: faas and the holder each need an
# fd per connection (and faas a few hundred more).
if (($(ulimit -n) < IDLE + 1000)); then
    ulimit -n $((IDLE + 1000)) 2>/dev/null || { log "ulimit -n $(ulimit -n) is too low for IDLE=$IDLE"; exit 1; }
fi

build_or_reuse
mkdir -p "$WORK/state"
wasm_function hello "$HELLO"
start_faas /function/hello/

fds() { find "/proc/$FAAS_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
ROW='%-22s %12s %12s %10s %10s %10s %8s %8s %8s %12s\n'

log "baseline: hello under wrk, no idle connections"
read -r BASE_RPS BASE_P50 BASE_P99 _ _ <<<"$(run_wrk "$BASE/function/hello/" baseline)"
sleep 1

# Holds IDLE connections of MODE and measures; prints the table's row LABEL.
held() {
    local label="$1" mode="$2" ready="$WORK/ready-$2" holder rss0 rss1 fd1 rps p50 p99 closed
    rss0="$(status_kib VmRSS "$FAAS_PID")"
    python3 "$ROOT/benches/idle_connections.py" --port "$PORT" --count "$IDLE" --mode "$mode" \
        --ready-file "$ready" >"$WORK/holder-$mode.txt" 2>&1 &
    holder=$!
    PIDS+=("$holder")
    local waited=0
    until [[ -s "$ready" ]]; do
        kill -0 "$holder" 2>/dev/null || { cat "$WORK/holder-$mode.txt" >&2; exit 1; }
        sleep 0.2
        waited=$((waited + 1))
        ((waited < 600)) || { log "the holder did not open $IDLE connections within 120 s"; exit 1; }
    done
    sleep 2
    rss1="$(status_kib VmRSS "$FAAS_PID")"
    fd1="$(fds)"
    log "$mode: $IDLE connections held; hello under wrk"
    read -r rps p50 p99 _ _ <<<"$(run_wrk "$BASE/function/hello/" "$mode")"
    kill -TERM "$holder"
    wait "$holder" || true
    closed="$(awk '/^held/ {print $NF}' "$WORK/holder-$mode.txt")"
    # shellcheck disable=SC2059 # the row's format, shared by every row
    printf "$ROW" "$label" "$rss0" "$rss1" \
        "$(awk -v a="$rss0" -v b="$rss1" -v n="$IDLE" 'BEGIN { printf "%.2f", (b - a) / n }')" \
        "$fd1" "$rps" "$p50" "$p99" \
        "$(awk -v r="$rps" -v base="$BASE_RPS" 'BEGIN { printf "%.3f", (base > 0 ? r / base : 0) }')" \
        "${closed:-?}"
    sleep 2
}

# `held` runs in a subshell: its exit does not end the script, an empty row does.
KEEP_ALIVE="$(held keep-alive after-request)"
[[ -n "$KEEP_ALIVE" ]] || { log "holding keep-alive connections failed"; exit 1; }
stop "$FAAS_PID"
start_faas /function/hello/
run_wrk "$BASE/function/hello/" warm-up >/dev/null
sleep 1
SILENT="$(held silent silent)"
[[ -n "$SILENT" ]] || { log "holding silent connections failed"; exit 1; }
stop "$FAAS_PID"

echo
echo "idle connections: $FAAS; IDLE=$IDLE; hello under wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP); $(nproc) CPUs"
# shellcheck disable=SC2059
printf "$ROW" case rss_before_KiB rss_held_KiB KiB/conn fds_held req/s p50_ms p99_ms rps_ratio closed_early
# shellcheck disable=SC2059
printf "$ROW" "no idle connections" - - - - "$BASE_RPS" "$BASE_P50" "$BASE_P99" 1.000 -
printf '%s\n' "$KEEP_ALIVE" "$SILENT"
