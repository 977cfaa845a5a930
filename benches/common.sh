# Shared prologue of the benchmark scripts; source it after setting BENCH (the script's name,
# used in log lines and the temp dir). Defines ROOT, FAAS, HELLO, ECHO_CGI, WORK, PIDS (killed
# and waited for on exit, with WORK removed), log, seconds_of, free_port and now_ns.
# shellcheck shell=bash

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT="$PWD"
FAAS="$ROOT/target/release/faas"
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

# A loopback port nothing listens on.
free_port() {
    local port _
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
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
