#!/usr/bin/env bash
# HTTP load through the gateway to a container function in `mode: http`, next to the same
# server called directly: the gateway's proxying cost (added p50/p99, throughput ratio).
# The server is the example itself (examples/container-http/server.py, Python's threading
# HTTP server); both runs use the same wrk parameters, one after the other, loopback only.
#
#   bash benches/process-load.sh
#
# Environment:
#   DURATION=10s WARMUP=2s THREADS=2 CONNECTIONS=16
#   SKIP_BUILD=1        do not run the cargo builds (use what is already built)
set -euo pipefail

BENCH=process-load
# shellcheck source=benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-16}"
SERVER="$ROOT/examples/container-http/server.py"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "cargo build --release -p faas-cli"
    cargo build --release -p faas-cli
fi
[[ -x "$FAAS" ]] || { log "$FAAS is missing (run without SKIP_BUILD=1)"; exit 1; }
command -v wrk >/dev/null || { log "wrk is not installed (apt-get install wrk)"; exit 1; }

# --- direct -------------------------------------------------------------------------------
PORT="$(free_port)"
log "starting $SERVER on 127.0.0.1:$PORT"
PORT="$PORT" GREETING=direct python3 "$SERVER" >"$WORK/direct.log" 2>&1 &
DIRECT_PID=$!
PIDS+=("$DIRECT_PID")
wait_for_200 "http://127.0.0.1:$PORT/" 30 "$DIRECT_PID" || { cat "$WORK/direct.log" >&2; exit 1; }
read -r D_RPS D_P50 D_P99 D_NON2XX D_ERRORS <<<"$(run_wrk "http://127.0.0.1:$PORT/items" direct)"
stop "$DIRECT_PID"

# --- through faas up ----------------------------------------------------------------------
mkdir -p "$WORK/functions" "$WORK/state"
APP_PORT="$(free_port)"
cat >"$WORK/functions/web.yaml" <<YAML
apiVersion: faas.dev/v1alpha1
kind: Function
metadata: {name: web}
spec:
  runtime:
    container:
      command: [python3, $SERVER]
      port: $APP_PORT
      mode: http
  timeout: 10s
  concurrency: 100
  env: {GREETING: gateway}
YAML
GW_PORT="$(free_port)"
"$FAAS" up "$WORK/functions" --listen "127.0.0.1:$GW_PORT" --no-build --state "$WORK/state" \
    >"$WORK/faas.log" 2>&1 &
FAAS_PID=$!
PIDS+=("$FAAS_PID")
URL="http://127.0.0.1:$GW_PORT/function/web/items"
if ! wait_for_200 "$URL" 60 "$FAAS_PID"; then
    cat "$WORK/faas.log" >&2
    exit 1
fi
log "through the gateway: $(curl -s --max-time 2 "$URL")"
read -r G_RPS G_P50 G_P99 G_NON2XX G_ERRORS <<<"$(run_wrk "$URL" gateway)"
stop "$FAAS_PID"

# --- report -------------------------------------------------------------------------------
echo
echo "process-load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up $WARMUP), $(nproc) CPUs"
printf '%-22s %12s %10s %10s %8s  %s\n' path req/s p50_ms p99_ms non2xx socket_errors
printf '%-22s %12s %10s %10s %8s  %s\n' "direct" "$D_RPS" "$D_P50" "$D_P99" "$D_NON2XX" "$D_ERRORS"
printf '%-22s %12s %10s %10s %8s  %s\n' "faas up -> mode http" "$G_RPS" "$G_P50" "$G_P99" \
    "$G_NON2XX" "$G_ERRORS"
awk -v a="$G_RPS" -v b="$D_RPS" -v c="$G_P50" -v d="$D_P50" -v e="$G_P99" -v f="$D_P99" 'BEGIN {
    printf "gateway/direct: req/s %.2f; added p50 %.0f us, added p99 %.0f us\n",
        (b > 0 ? a / b : 0), (c - d) * 1000, (e - f) * 1000
}'
