#!/usr/bin/env bash
# Upload flood: waves of UPLOADS (200) concurrent SIZE_MIB (6) MiB uploads to one function of
# `faas up --body-budget BUDGET` (512Mi), small GETs to another function beside them, and the
# server's RSS sampled every 20 ms (benches/upload_flood.py). Prints how the uploads were
# answered (200, or 503 BodyBudgetExhausted), the RSS baseline and peak, and the small
# requests' statuses and latency.
#
# The upload function is, by default, a WASI CGI module that answers without reading its body
# (UPLOAD_GUEST=sink), so the figure is what the gateway itself holds; UPLOAD_GUEST=hello
# uses the hello component, which (like every faas-sdk function) also copies the whole body
# into its own linear memory: that copy is bounded by the function's memory limit and
# concurrency, not by the body budget.
#
# Environment: UPLOADS=200 SIZE_MIB=6 ROUNDS=3 BUDGET=512Mi CONCURRENCY=256 (the upload
# function's), UPLOAD_GUEST=sink|hello, SKIP_BUILD=1 (use what is built), FAAS_BIN (default
# target/release/faas).
set -euo pipefail

BENCH=upload-flood
# shellcheck source=benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
UPLOADS="${UPLOADS:-200}"
SIZE_MIB="${SIZE_MIB:-6}"
ROUNDS="${ROUNDS:-3}"
BUDGET="${BUDGET:-512Mi}"
CONCURRENCY="${CONCURRENCY:-256}"
UPLOAD_GUEST="${UPLOAD_GUEST:-sink}"

FAAS="${FAAS_BIN:-$FAAS}"
build_or_reuse

mkdir -p "$WORK/functions"
case "$UPLOAD_GUEST" in
    sink) python3 "$ROOT/benches/upload_flood.py" --write-sink "$WORK/sink.wasm"; UPLOAD_WASM="$WORK/sink.wasm" ;;
    hello) UPLOAD_WASM="$HELLO" ;;
    *) log "UPLOAD_GUEST must be sink or hello"; exit 1 ;;
esac
# `upload` takes the uploads (up to 8 MiB each, CONCURRENCY at a time); `ping` the small
# requests, with its own concurrency slots, as another team's function would.
for name in upload ping; do
    if [[ "$name" == upload ]]; then wasm="$UPLOAD_WASM"; else wasm="$HELLO"; fi
    cat >"$WORK/functions/$name.yaml" <<YAML
apiVersion: faas.dev/v1alpha1
kind: Function
metadata: {name: $name}
spec:
  runtime:
    wasm:
      source: $wasm
  timeout: 60s
  memory: 64Mi
  concurrency: $CONCURRENCY
  http: {maxBodySize: 8Mi}
YAML
done

PORT="$(free_port)"
"$FAAS" up "$WORK/functions" --listen "127.0.0.1:$PORT" --no-build --state "$WORK/state" \
    --body-budget "$BUDGET" >"$WORK/faas.log" 2>&1 &
PID=$!
PIDS+=("$PID")
wait_for_200 "http://127.0.0.1:$PORT/function/ping/" 120 "$PID"

log "$ROUNDS wave(s) of $UPLOADS concurrent ${SIZE_MIB} MiB uploads, body budget $BUDGET"
timeout 900 python3 "$ROOT/benches/upload_flood.py" \
    --base "http://127.0.0.1:$PORT" \
    --upload-path /function/upload/ \
    --small-path /function/ping/ \
    --pid "$PID" \
    --uploads "$UPLOADS" \
    --size $((SIZE_MIB << 20)) \
    --rounds "$ROUNDS" | tee "$WORK/result.txt"
refused="$(curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" |
    awk '/^faas_rejected_total\{function="upload",reason="body_budget"\}/ {print $2}')"
log "the server counted ${refused:-0} refusal(s) for the budget (faas_rejected_total)"
stop "$PID"
