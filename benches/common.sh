# Shared prologue of the benchmark scripts; source it after setting BENCH (the script's name,
# used in log lines and the temp dir). Defines ROOT, FAAS, HELLO, ECHO_CGI, WORK, PIDS (killed
# and waited for on exit, with WORK removed), log, seconds_of, free_port, now_ns,
# wait_for_200, start_faas, wasm_function, status_kib, to_ms, run_wrk (needs DURATION, WARMUP,
# THREADS, CONNECTIONS) and stop.
# shellcheck shell=bash

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT="$PWD"
# FAAS may name another build (e.g. a copy of the previous one, to compare in one run).
FAAS="${FAAS:-$ROOT/target/release/faas}"
HELLO="$ROOT/examples/target/wasm32-wasip2/release/hello.wasm"
ECHO_CGI="$ROOT/examples/target/wasm32-wasip1/release/echo-cgi.wasm"
export ROOT FAAS HELLO ECHO_CGI

WORK="$(mktemp -d "${TMPDIR:-/tmp}/faas-$BENCH.XXXXXX")"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s: %s\n' "$BENCH" "$*" >&2; }

# Seconds in a wrk duration ("10s", "2m", "1h", "30").
seconds_of() {
    local d="$1"
    case "$d" in
        *h) echo $((${d%h} * 3600)) ;;
        *m) echo $((${d%m} * 60)) ;;
        *s) echo "${d%s}" ;;
        *) echo "$d" ;;
    esac
}

# A loopback port nothing listens on, below the ephemeral range (32768-60999), which a bench
# holding thousands of client connections may otherwise have in use.
free_port() {
    local port _
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    log "no free port found"
    return 1
}

now_ns() { date +%s%N; }

# Builds faas (release) and the guests, unless SKIP_BUILD=1. Guests that were not built (or
# whose build failed, so what is in examples/target may be stale) come from the copies
# committed in tests/fixtures/. Exits when the faas binary is missing.
build_or_reuse() {
    if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
        log "cargo build --release -p faas-cli"
        cargo build --release -p faas-cli
        log "bash examples/build.sh"
        if ! bash examples/build.sh; then
            log "building the guests failed; using the committed tests/fixtures/ instead"
            HELLO="$ROOT/tests/fixtures/hello.wasm"
            ECHO_CGI="$ROOT/tests/fixtures/echo-cgi.wasm"
        fi
    fi
    [[ -x "$FAAS" ]] || { log "$FAAS is missing (run without SKIP_BUILD=1)"; exit 1; }
    [[ -f "$HELLO" ]] || HELLO="$ROOT/tests/fixtures/hello.wasm"
    [[ -f "$ECHO_CGI" ]] || ECHO_CGI="$ROOT/tests/fixtures/echo-cgi.wasm"
}

# Polls URL until it answers 200, at most $2 seconds; fails early if process $3 died.
wait_for_200() {
    local url="$1" limit="$2" pid="$3" deadline
    deadline=$(($(date +%s) + limit))
    while (($(date +%s) < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "server (pid $pid) exited before answering $url"
            return 1
        fi
        if [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)" == 200 ]]; then
            return 0
        fi
        sleep 0.05
    done
    log "no 200 from $url within ${limit}s"
    return 1
}

# Starts `faas up` on $WORK/functions (state in $WORK/state, log in $WORK/faas.log) on a free
# loopback port and waits until /readyz and then each PATH given answer 200; sets PORT, BASE
# and FAAS_PID (stopped on exit). Prints the log and exits when it does not get there.
start_faas() {
    PORT="$(free_port)"
    BASE="http://127.0.0.1:$PORT"
    log "starting faas up on 127.0.0.1:$PORT"
    "$FAAS" up "$WORK/functions" --listen "127.0.0.1:$PORT" --no-build --state "$WORK/state" \
        >"$WORK/faas.log" 2>&1 &
    FAAS_PID=$!
    PIDS+=("$FAAS_PID")
    local path ok=1
    wait_for_200 "$BASE/readyz" 120 "$FAAS_PID" || ok=0
    for path in "$@"; do
        ((ok)) && { wait_for_200 "$BASE$path" 30 "$FAAS_PID" || ok=0; }
    done
    if ((!ok)); then
        cat "$WORK/faas.log" >&2
        exit 1
    fi
}

# Writes $WORK/functions/NAME.yaml: a WASM function of SOURCE, with EXTRA (lines of its spec,
# indented two spaces) after its runtime.
wasm_function() {
    local name="$1" source="$2" extra="${3:-}"
    mkdir -p "$WORK/functions"
    printf 'apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: %s}\nspec:\n  runtime:\n    wasm:\n      source: %s\n%s' \
        "$name" "$source" "$extra" >"$WORK/functions/$name.yaml"
}

# Field FIELD (VmRSS, VmHWM) of process PID's /proc status, in KiB.
status_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$2/status"; }

# Latency as printed by wrk (850.00us, 1.20ms, 2.00s) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n = n / 1000
        else if (v ~ /ms$/) n = n
        else if (v ~ /m$/) n = n * 60000
        else if (v ~ /s$/) n = n * 1000
        printf "%.3f", n
    }'
}

# Runs wrk against URL (warm-up, then the measured run, whose output is echoed to stderr and
# kept as $WORK/wrk-LABEL.txt); prints "req_per_sec p50_ms p99_ms non2xx socket_errors".
run_wrk() {
    local url="$1" out="$WORK/wrk-$2.txt" limit
    if [[ "$WARMUP" != 0 && "$WARMUP" != 0s ]]; then
        limit=$(($(seconds_of "$WARMUP") + 30))
        timeout "$limit" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$url" >/dev/null
    fi
    limit=$(($(seconds_of "$DURATION") + 30))
    timeout "$limit" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url" >"$out"
    sed 's/^/    /' "$out" >&2
    local rps p50 p99 non2xx errors
    rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
    p50="$(awk '$1 == "50%" {print $2}' "$out")"
    p99="$(awk '$1 == "99%" {print $2}' "$out")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")"
    errors="$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' "$out")"
    echo "${rps:-0} $(to_ms "${p50:-0}") $(to_ms "${p99:-0}") ${non2xx:-0} ${errors:-none}"
}

stop() {
    local pid="$1"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
