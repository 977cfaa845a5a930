#!/usr/bin/env bash
# Density test of `faas up`: one process serving 1,000 Function manifests, compared with the
# same process serving a single function.
#
# The 1,000 functions (names are the manifest file names):
#   h-0000 ... : 945 functions over the one hello.wasm artifact (compiled once, shared)
#   e-0 ... e-4:   5 functions over echo-cgi.wasm (a second shared artifact, a core module)
#   d-000 ... d-049: 50 functions, each over its own distinct artifact: hello.wasm with a custom
#                section "faas-bench" appended (different bytes, so a different sha256 and a
#                separate compilation and pre-instance)
#
# Reported for each run: time from process start to the `faas: listening on` line (every
# function loaded), VmRSS after ready, VmRSS and VmHWM after a wrk run against one function,
# and that run's req/s; then the ratios 1,000 functions / 1 function. The 1,000-function
# process is started twice: with an empty state dir (cold: 52 compilations) and again with the
# same state dir (warm: every artifact comes from the disk cache).
#
# Environment: DURATION=10s WARMUP=2s THREADS=2 CONNECTIONS=64 WATCH_INTERVAL=1 (seconds,
# the default of faas up) READY_TIMEOUT=600 (seconds) SKIP_BUILD=1 (use what is built).
set -euo pipefail

BENCH=density
# shellcheck source=benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
WATCH_INTERVAL="${WATCH_INTERVAL:-1}"
READY_TIMEOUT="${READY_TIMEOUT:-600}"
TOTAL=1000
DISTINCT=50
ECHO_FUNCTIONS=5
SHARED=$((TOTAL - DISTINCT - ECHO_FUNCTIONS))

# The unsigned LEB128 encoding of $1, as printf escapes.
leb128() {
    local n="$1" byte out=""
    while :; do
        byte=$((n & 0x7f))
        n=$((n >> 7))
        ((n)) && byte=$((byte | 0x80))
        out+="$(printf '\\x%02x' "$byte")"
        ((n)) || break
    done
    printf '%s' "$out"
}

# Number of bytes of the LEB128 encoding of $1.
leb128_len() {
    local n="$1" len=1
    while ((n >= 128)); do
        n=$((n >> 7))
        len=$((len + 1))
    done
    echo "$len"
}

# Copies wasm $1 to $2 with a custom section (id 0, size, name length, name, payload) appended.
# Name and payload must be ASCII.
append_custom_section() {
    local src="$1" dst="$2" name="$3" payload="$4"
    local content_len=$(($(leb128_len ${#name}) + ${#name} + ${#payload}))
    {
        cat "$src"
        # shellcheck disable=SC2059 # the format is made of our own escapes
        printf "\\x00$(leb128 "$content_len")$(leb128 ${#name})"
        printf '%s%s' "$name" "$payload"
    } >"$dst"
}

manifest() {
    local name="$1" source="$2"
    cat <<EOF
apiVersion: faas.dev/v1alpha1
kind: Function
metadata: {name: $name}
spec:
  runtime:
    wasm:
      source: $source
  timeout: 10s
  memory: 64Mi
  concurrency: 100
EOF
}

# Starts faas up on manifests dir $1 with state dir $2; sets PID, PORT, LOG and READY_MS
# (process start to the `faas: listening on` line).
start_faas() {
    local dir="$1" state="$2" started deadline
    PORT="$(free_port)"
    LOG="$WORK/faas-$(basename "$dir")-$RANDOM.log"
    started="$(now_ns)"
    "$FAAS" up "$dir" --listen "127.0.0.1:$PORT" --no-build --state "$state" \
        --watch-interval "$WATCH_INTERVAL" >"$LOG" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    deadline=$(($(date +%s) + READY_TIMEOUT))
    while ! grep -q '^faas: listening on' "$LOG"; do
        if ! kill -0 "$PID" 2>/dev/null; then
            cat "$LOG" >&2
            log "faas up exited before becoming ready"
            return 1
        fi
        if (($(date +%s) >= deadline)); then
            log "faas up not ready within ${READY_TIMEOUT}s"
            return 1
        fi
        sleep 0.01
    done
    READY_MS=$((($(now_ns) - started) / 1000000))
}

stop_faas() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
}

# wrk against function $1 of the running faas; sets RPS, P50 and P99 (as printed by wrk).
load() {
    local url="http://127.0.0.1:$PORT/function/$1/" out="$WORK/wrk-$1-$RANDOM.txt" code
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true)"
    [[ "$code" == 200 ]] || { log "$url answered $code"; return 1; }
    if [[ "$WARMUP" != 0 && "$WARMUP" != 0s ]]; then
        timeout $(($(seconds_of "$WARMUP") + 30)) \
            wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$url" >/dev/null
    fi
    timeout $(($(seconds_of "$DURATION") + 30)) \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url" >"$out"
    sed 's/^/    /' "$out" >&2
    RPS="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
    P50="$(awk '$1 == "50%" {print $2}' "$out")"
    P99="$(awk '$1 == "99%" {print $2}' "$out")"
    NON2XX="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")"
    NON2XX="${NON2XX:-0}"
}

# --- builds -------------------------------------------------------------------------------
build_or_reuse
for f in "$HELLO" "$ECHO_CGI"; do
    [[ -f "$f" ]] || { log "missing $f (run bash examples/build.sh)"; exit 1; }
done
command -v wrk >/dev/null || { log "wrk is not installed"; exit 1; }

# --- manifests ----------------------------------------------------------------------------
mkdir -p "$WORK/single" "$WORK/many" "$WORK/artifacts" "$WORK/state-single" "$WORK/state-many"
manifest hello "$HELLO" >"$WORK/single/hello.yaml"
for i in $(seq 0 $((DISTINCT - 1))); do
    name="$(printf 'd-%03d' "$i")"
    append_custom_section "$HELLO" "$WORK/artifacts/$name.wasm" faas-bench "artifact-$i"
    manifest "$name" "$WORK/artifacts/$name.wasm" >"$WORK/many/$name.yaml"
done
for i in $(seq 0 $((ECHO_FUNCTIONS - 1))); do
    manifest "e-$i" "$ECHO_CGI" >"$WORK/many/e-$i.yaml"
done
for i in $(seq 0 $((SHARED - 1))); do
    name="$(printf 'h-%04d' "$i")"
    manifest "$name" "$HELLO" >"$WORK/many/$name.yaml"
done
manifests=$(find "$WORK/many" -name '*.yaml' | wc -l)
distinct_sha=$(sha256sum "$WORK"/artifacts/*.wasm "$HELLO" "$ECHO_CGI" | awk '{print $1}' | sort -u | wc -l)
log "$manifests manifests; $distinct_sha distinct artifacts ($DISTINCT with a custom section)"
log "hello.wasm $(wc -c <"$HELLO" | tr -d ' ') bytes, d-000.wasm $(wc -c <"$WORK/artifacts/d-000.wasm" | tr -d ' ') bytes"

# --- one function -------------------------------------------------------------------------
log "faas up with 1 function"
start_faas "$WORK/single" "$WORK/state-single"
S_READY_MS=$READY_MS
sleep 1
S_RSS_READY=$(status_kib VmRSS "$PID")
load hello
S_RPS=$RPS S_P50=$P50 S_P99=$P99 S_NON2XX=$NON2XX
S_RSS_LOADED=$(status_kib VmRSS "$PID")
S_HWM=$(status_kib VmHWM "$PID")
stop_faas

# --- 1,000 functions, cold ----------------------------------------------------------------
log "faas up with $TOTAL functions, empty state dir (cold)"
start_faas "$WORK/many" "$WORK/state-many"
M_READY_MS=$READY_MS
grep -E '^faas: [0-9]+ function\(s\) ready' "$LOG" >&2 || true
ready_line="$(grep -E '^faas: [0-9]+ function\(s\) ready' "$LOG" || true)"
if [[ "$ready_line" != "faas: $TOTAL function(s) ready, 0 degraded, 0 not ready" ]]; then
    grep 'NOT READY' "$LOG" | head -5 >&2 || true
    log "expected every function ready; got: $ready_line"
    exit 1
fi
for name in d-000 d-049 e-0; do
    body="$(curl -s --max-time 5 "http://127.0.0.1:$PORT/function/$name/")"
    log "$name answers: $(head -c 60 <<<"$body" | tr '\n' ' ')"
done
cached=$(find "$WORK/state-many" -name '*.cwasm' | wc -l)
log "compiled artifacts in the disk cache: $cached"
sleep 1
M_RSS_READY=$(status_kib VmRSS "$PID")
load h-0000
M_RPS=$RPS M_P50=$P50 M_P99=$P99 M_NON2XX=$NON2XX
M_RSS_LOADED=$(status_kib VmRSS "$PID")
M_HWM=$(status_kib VmHWM "$PID")
stop_faas

# --- 1,000 functions, warm (disk cache) ---------------------------------------------------
log "faas up with $TOTAL functions, same state dir (warm: artifacts from the disk cache)"
start_faas "$WORK/many" "$WORK/state-many"
W_READY_MS=$READY_MS
grep -E '^faas: [0-9]+ function\(s\) ready' "$LOG" >&2 || true
sleep 1
W_RSS_READY=$(status_kib VmRSS "$PID")
W_HWM=$(status_kib VmHWM "$PID")
stop_faas

# --- report -------------------------------------------------------------------------------
echo
echo "density: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up $WARMUP), watch interval ${WATCH_INTERVAL}s, $(nproc) CPUs"
printf '%-26s %14s %14s %14s %12s %12s %10s %10s %7s\n' run time_to_ready_ms rss_ready_kib \
    rss_loaded_kib hwm_kib req/s p50 p99 non2xx
printf '%-26s %14s %14s %14s %12s %12s %10s %10s %7s\n' "1 function" "$S_READY_MS" \
    "$S_RSS_READY" "$S_RSS_LOADED" "$S_HWM" "$S_RPS" "$S_P50" "$S_P99" "$S_NON2XX"
printf '%-26s %14s %14s %14s %12s %12s %10s %10s %7s\n' "$TOTAL functions (cold)" \
    "$M_READY_MS" "$M_RSS_READY" "$M_RSS_LOADED" "$M_HWM" "$M_RPS" "$M_P50" "$M_P99" "$M_NON2XX"
printf '%-26s %14s %14s %14s %12s %12s %10s %10s %7s\n' "$TOTAL functions (warm)" \
    "$W_READY_MS" "$W_RSS_READY" - "$W_HWM" - - - -
awk -v sr="$S_RSS_READY" -v mr="$M_RSS_READY" -v wr="$W_RSS_READY" -v sl="$S_RSS_LOADED" \
    -v ml="$M_RSS_LOADED" -v sq="$S_RPS" -v mq="$M_RPS" -v n="$TOTAL" 'BEGIN {
    printf "ratio %d/1: RSS after ready %.2f (cold) %.2f (warm), RSS after load %.2f, req/s %.2f\n",
        n, mr / sr, wr / sr, ml / sl, mq / sq
    printf "extra RSS per function (cold, after ready): %.1f KiB\n", (mr - sr) / (n - 1)
}'
