#!/usr/bin/env bash
# Time to the first 200 of a new function in `faas up` (local mode, watch interval 0.2 s).
#
# Each run (RUNS=5 by default) uses a fresh state dir and measures, with `date +%s%N` and a
# curl polling loop (10 ms sleep, bounded):
#   new_manifest_cold     a manifest written into the watched folder of a running faas up whose
#                         state dir is empty: detection + compilation + first request
#   new_manifest_loaded   a second function name over the same, already loaded artifact
#   new_manifest_disk     after a restart with the same state dir and an emptied folder, a new
#                         manifest over the artifact compiled by the first process (disk cache)
#   start_cold            process start to the first 200 of a function already in the folder,
#                         empty state dir (compilation at startup)
#   start_warm            the same with the state dir of a previous run (disk cache)
# A manifest is written under a hidden name and renamed, so the watcher never sees it half
# written, at a random point of the watcher's cycle: detection alone costs up to one watch
# interval (0.2 s, 0.1 s on average), so the new_manifest_* figures vary by that much.
#
# Environment: RUNS=5, SKIP_BUILD=1 (use what is built), TIMEOUT=60 (seconds per wait).
set -euo pipefail

BENCH=first-request
# shellcheck source=benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RUNS="${RUNS:-5}"
TIMEOUT="${TIMEOUT:-60}"
WATCH_INTERVAL=0.2

# Writes the manifest of function $2 into folder $1, atomically.
write_manifest() {
    local dir="$1" name="$2"
    cat >"$dir/.$name.yaml.tmp" <<EOF
apiVersion: faas.dev/v1alpha1
kind: Function
metadata: {name: $name}
spec:
  runtime:
    wasm:
      source: $HELLO
  timeout: 10s
  memory: 64Mi
EOF
    mv "$dir/.$name.yaml.tmp" "$dir/$name.yaml"
}

# Starts faas up on folder $1 with state dir $2 (sets PID, PORT, LOG); does not wait.
start_faas() {
    PORT="$(free_port)"
    LOG="$WORK/faas-$RANDOM.log"
    "$FAAS" up "$1" --listen "127.0.0.1:$PORT" --no-build --state "$2" \
        --watch-interval "$WATCH_INTERVAL" >"$LOG" 2>&1 &
    PID=$!
    PIDS+=("$PID")
}

stop_faas() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
}

# Polls $1 every 10 ms until it answers 200; prints the time since $2 (ns) in milliseconds.
until_200() {
    local url="$1" since="$2" deadline code
    deadline=$(($(now_ns) + TIMEOUT * 1000000000))
    while :; do
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)"
        if [[ "$code" == 200 ]]; then
            awk -v ns="$(($(now_ns) - since))" 'BEGIN { printf "%.1f\n", ns / 1e6 }'
            return 0
        fi
        if ! kill -0 "$PID" 2>/dev/null; then
            cat "$LOG" >&2
            log "faas up exited while waiting for $url"
            return 1
        fi
        if (($(now_ns) > deadline)); then
            cat "$LOG" >&2
            log "no 200 from $url within ${TIMEOUT}s (last status $code)"
            return 1
        fi
        sleep 0.01
    done
}

wait_ready() {
    until_200 "http://127.0.0.1:$PORT/readyz" "$(now_ns)" >/dev/null
}

# Artifact loads of the running process by outcome, from /metrics.
loads() {
    curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics" |
        awk '/^faas_artifact_loads_total/ { sub(/^faas_artifact_loads_total/, ""); printf "%s ", $0 }'
}

# Time for a manifest written into the watched folder $1 to serve function $2. The write comes
# after a random pause of up to one watch interval: otherwise it would always land at the same
# point of the watcher's cycle (right after the sync that served the previous step) and every
# figure would include a full interval instead of half of one on average.
new_manifest() {
    local dir="$1" name="$2" started
    sleep "$(awk -v r="$RANDOM" -v i="$WATCH_INTERVAL" 'BEGIN { printf "%.3f", r / 32768 * i }')"
    started="$(now_ns)"
    write_manifest "$dir" "$name"
    until_200 "http://127.0.0.1:$PORT/function/$name/" "$started"
}

# --- builds -------------------------------------------------------------------------------
build_or_reuse
[[ -f "$HELLO" ]] || { log "no hello.wasm (run bash examples/build.sh)"; exit 1; }
log "artifact: $HELLO ($(wc -c <"$HELLO" | tr -d ' ') bytes), watch interval ${WATCH_INTERVAL}s"

declare -a COLD LOADED DISK START_COLD START_WARM
for run in $(seq 1 "$RUNS"); do
    state="$WORK/state-$run"
    watched="$WORK/watched-$run"
    mkdir -p "$state" "$watched"

    # A running faas up with an empty folder and an empty state dir.
    start_faas "$watched" "$state"
    wait_ready
    COLD+=("$(new_manifest "$watched" cold)")
    LOADED+=("$(new_manifest "$watched" second)")
    log "run $run: new manifest cold ${COLD[-1]} ms, same artifact loaded ${LOADED[-1]} ms; loads: $(loads)"
    stop_faas

    # Restart with the same state dir and an emptied folder: the artifact is on disk only.
    mkdir -p "$watched-empty"
    start_faas "$watched-empty" "$state"
    wait_ready
    DISK+=("$(new_manifest "$watched-empty" from-disk)")
    log "run $run: new manifest, artifact in the disk cache ${DISK[-1]} ms; loads: $(loads)"
    stop_faas

    # Process start to the first 200, empty state dir.
    mkdir -p "$state-fresh"
    started="$(now_ns)"
    start_faas "$watched" "$state-fresh"
    START_COLD+=("$(until_200 "http://127.0.0.1:$PORT/function/cold/" "$started")")
    log "run $run: process start to first 200, empty state ${START_COLD[-1]} ms; loads: $(loads)"
    stop_faas

    # Process start to the first 200, the same state dir as the first process.
    started="$(now_ns)"
    start_faas "$watched" "$state"
    START_WARM+=("$(until_200 "http://127.0.0.1:$PORT/function/cold/" "$started")")
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
echo "first-request: $RUNS runs, watch interval ${WATCH_INTERVAL}s, curl polling every 10 ms, $(nproc) CPUs"
printf '%-22s %10s  %s\n' measurement median_ms "runs (ms)"
printf '%-22s %10s  %s\n' new_manifest_cold "$(median "${COLD[@]}")" "${COLD[*]}"
printf '%-22s %10s  %s\n' new_manifest_loaded "$(median "${LOADED[@]}")" "${LOADED[*]}"
printf '%-22s %10s  %s\n' new_manifest_disk "$(median "${DISK[@]}")" "${DISK[*]}"
printf '%-22s %10s  %s\n' start_cold "$(median "${START_COLD[@]}")" "${START_COLD[*]}"
printf '%-22s %10s  %s\n' start_warm "$(median "${START_WARM[@]}")" "${START_WARM[*]}"
