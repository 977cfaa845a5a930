#!/usr/bin/env bash
# Time to the first 200 of a new function in `faas up` (local mode).
#
# Each run (RUNS=5 by default) uses fresh state dirs and measures, with the action, the clock
# and a poller that asks every millisecond on one keep-alive connection all in
# benches/first_request.py:
#   new_manifest_cold     a manifest written into the watched folder of a running faas up whose
#                         state dir is empty: detection + compilation + first request
#   new_manifest_loaded   a second function name over the same, already loaded artifact
#   deploy_api_cold       a deploy through the management API (PUT /system/functions/NAME with
#                         the manifest and the artifact, as `faas deploy` sends them) to another
#                         faas up with an empty state dir: upload + compilation + first request
#   new_manifest_disk     after a restart with the same state dir and an emptied folder, a new
#                         manifest over the artifact compiled by the first process (disk cache)
#   start_cold            process start to the first 200 of a function already in the folder,
#                         empty state dir (compilation at startup)
#   start_warm            the same with the state dir of a previous run (disk cache)
# A manifest is written under a hidden name and renamed, so the watcher never sees it half
# written, after a random pause of up to one watch interval, so that it lands at a random
# point of the poll's cycle: change notifications wake the watcher at once, and when they do
# not arrive (a filesystem without them) the figures show the poll.
#
# Environment: RUNS=5, SKIP_BUILD=1 (use what is built), TIMEOUT=60 (seconds per wait),
#              WATCH_INTERVAL=1 (faas up's --watch-interval, its default).
set -euo pipefail

BENCH=first-request
# shellcheck source=benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RUNS="${RUNS:-5}"
export TIMEOUT="${TIMEOUT:-60}"
WATCH_INTERVAL="${WATCH_INTERVAL:-1}"
TIMED="$ROOT/benches/first_request.py"

# Starts faas up on folder $1 with state dir $2 and waits for the first 200 of URL path $3
# (sets PID, PORT, LOG, and MS: the milliseconds from the process start).
start_timed() {
    PORT="$(free_port)"
    LOG="$WORK/faas-$RANDOM.log"
    local out
    out="$(python3 "$TIMED" start "$LOG" "http://127.0.0.1:$PORT$3" -- \
        "$FAAS" up "$1" --listen "127.0.0.1:$PORT" --no-build --state "$2" \
        --watch-interval "$WATCH_INTERVAL")" || { cat "$LOG" >&2; exit 1; }
    PID="${out#* }"
    PIDS+=("$PID")
    MS="${out% *}"
}

stop_faas() {
    kill "$PID" 2>/dev/null || true
    # Not this shell's child (the timing helper started it): wait for it to be gone.
    while kill -0 "$PID" 2>/dev/null; do sleep 0.01; done
}

# Artifact loads of the running process by outcome, from /metrics.
loads() {
    curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics" |
        awk '/^faas_artifact_loads_total/ { sub(/^faas_artifact_loads_total/, ""); printf "%s ", $0 }'
}

# Time for a manifest written into the watched folder $1 to serve function $2, written after
# a random pause of up to one watch interval (see the top).
new_manifest() {
    local dir="$1" name="$2"
    sleep "$(awk -v r="$RANDOM" -v i="$WATCH_INTERVAL" 'BEGIN { printf "%.3f", r / 32768 * i }')"
    python3 "$TIMED" write "$dir" "$name" "$HELLO" "http://127.0.0.1:$PORT/function/$name/"
}

# --- builds -------------------------------------------------------------------------------
build_or_reuse
[[ -f "$HELLO" ]] || { log "no hello.wasm (run bash examples/build.sh)"; exit 1; }
log "artifact: $HELLO ($(wc -c <"$HELLO" | tr -d ' ') bytes), watch interval ${WATCH_INTERVAL}s"

declare -a COLD LOADED API DISK START_COLD START_WARM
for run in $(seq 1 "$RUNS"); do
    state="$WORK/state-$run"
    watched="$WORK/watched-$run"
    mkdir -p "$state" "$watched" "$state-api" "$watched-api"

    # Through the management API, to a faas up with an empty state dir.
    start_timed "$watched-api" "$state-api" /readyz
    API+=("$(python3 "$TIMED" deploy "http://127.0.0.1:$PORT" api "$HELLO" "http://127.0.0.1:$PORT/function/api/")")
    log "run $run: deploy through the API ${API[-1]} ms; loads: $(loads)"
    stop_faas

    # A running faas up with an empty folder and an empty state dir.
    start_timed "$watched" "$state" /readyz
    COLD+=("$(new_manifest "$watched" cold)")
    LOADED+=("$(new_manifest "$watched" second)")
    log "run $run: new manifest cold ${COLD[-1]} ms, same artifact loaded ${LOADED[-1]} ms; loads: $(loads)"
    stop_faas

    # Restart with the same state dir and an emptied folder: the artifact is on disk only.
    mkdir -p "$watched-empty"
    start_timed "$watched-empty" "$state" /readyz
    DISK+=("$(new_manifest "$watched-empty" from-disk)")
    log "run $run: new manifest, artifact in the disk cache ${DISK[-1]} ms; loads: $(loads)"
    stop_faas

    # Process start to the first 200, empty state dir.
    mkdir -p "$state-fresh"
    start_timed "$watched" "$state-fresh" /function/cold/
    START_COLD+=("$MS")
    log "run $run: process start to first 200, empty state ${START_COLD[-1]} ms; loads: $(loads)"
    stop_faas

    # Process start to the first 200, the same state dir as the first process.
    start_timed "$watched" "$state" /function/cold/
    START_WARM+=("$MS")
    log "run $run: process start to first 200, disk cache ${START_WARM[-1]} ms; loads: $(loads)"
    stop_faas
done

# Median of the arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) printf "%.1f", v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

echo
echo "first-request: $RUNS runs, watch interval ${WATCH_INTERVAL}s, polling every 1 ms, $(nproc) CPUs"
printf '%-22s %10s  %s\n' measurement median_ms "runs (ms)"
printf '%-22s %10s  %s\n' new_manifest_cold "$(median "${COLD[@]}")" "${COLD[*]}"
printf '%-22s %10s  %s\n' new_manifest_loaded "$(median "${LOADED[@]}")" "${LOADED[*]}"
printf '%-22s %10s  %s\n' deploy_api_cold "$(median "${API[@]}")" "${API[*]}"
printf '%-22s %10s  %s\n' new_manifest_disk "$(median "${DISK[@]}")" "${DISK[*]}"
printf '%-22s %10s  %s\n' start_cold "$(median "${START_COLD[@]}")" "${START_COLD[*]}"
printf '%-22s %10s  %s\n' start_warm "$(median "${START_WARM[@]}")" "${START_WARM[*]}"
