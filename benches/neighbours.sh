#!/usr/bin/env bash
# Trap isolation: what a function whose guest traps on every request costs the functions
# beside it. One `faas up` serves the hello component and the hostile guest as two
# functions; hello is loaded with wrk, one run after another, with the same parameters each
# time: alone once, then beside ok and beside traps ROUNDS times each:
#   alone          hello only
#   beside ok      hello while NEIGHBOUR_CONNECTIONS connections call the hostile guest's
#                  `ok` mode (a well-behaved neighbour)
#   beside traps   hello while the same connections call its `panic` mode (a trap each)
# The figure is hello's req/s beside traps over beside ok: what traps cost beyond the CPU
# any busy neighbour takes on the same cores (goal >= 0.95). One pair of runs varies by
# several percent on a shared 2-core machine, as much as the effect, so ROUNDS pairs are
# run, in alternating order (ok then traps, traps then ok) so that a drift of the machine
# favours neither, and the median of the pairs' ratios is the figure. Loopback only.
#
#   bash benches/neighbours.sh
#
# Environment: DURATION=10s WARMUP=2s THREADS=1 CONNECTIONS=32 NEIGHBOUR_CONNECTIONS=8
#              ROUNDS=5 SKIP_BUILD=1 (use what is built)
set -euo pipefail

BENCH=neighbours
# shellcheck source=benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
THREADS="${THREADS:-1}"
CONNECTIONS="${CONNECTIONS:-32}"
NEIGHBOUR_CONNECTIONS="${NEIGHBOUR_CONNECTIONS:-8}"
ROUNDS="${ROUNDS:-5}"

build_or_reuse
HOSTILE="$ROOT/examples/target/wasm32-wasip2/release/hostile.wasm"
[[ -f "$HOSTILE" ]] || HOSTILE="$ROOT/tests/fixtures/hostile.wasm"
command -v wrk >/dev/null || { log "wrk is not installed (apt-get install wrk)"; exit 1; }

mkdir -p "$WORK/functions" "$WORK/state"
for fn in hello:"$HELLO" hostile:"$HOSTILE"; do
    wasm_function "${fn%%:*}" "${fn#*:}" $'  timeout: 10s\n  memory: 64Mi\n  concurrency: 100\n'
done

start_faas /function/hello/ /function/hostile/ok
status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE/function/hostile/panic")"
[[ "$status" == 500 ]] || { log "the panic mode answered $status, not 500"; exit 1; }

# hello under wrk while NAME's neighbour load (MODE of the hostile guest) runs for the whole
# warm-up and measurement; prints hello's figures and the neighbour's req/s and non-2xx.
measure() {
    local name="$1" mode="$2" neighbour_pid="" secs out
    out="$WORK/neighbour-$name.txt"
    if [[ -n "$mode" ]]; then
        secs=$(($(seconds_of "$WARMUP") + $(seconds_of "$DURATION") + 2))
        timeout $((secs + 30)) wrk -t1 -c"$NEIGHBOUR_CONNECTIONS" -d"${secs}s" \
            "$BASE/function/hostile/$mode" >"$out" &
        neighbour_pid=$!
        sleep 1
    fi
    local result
    result="$(run_wrk "$BASE/function/hello/" "$name")"
    local n_rps=- n_non2xx=-
    if [[ -n "$neighbour_pid" ]]; then
        wait "$neighbour_pid" || true
        n_rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
        n_non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")"
    fi
    echo "$result ${n_rps:-0} ${n_non2xx:-0}"
}

log "hello alone"
read -r A_RPS A_P50 A_P99 A_NON2XX _ _ _ <<<"$(measure alone "")"
rows=()
ratios=()
non2xx="$A_NON2XX"
for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then order="ok panic"; else order="panic ok"; fi
    for mode in $order; do
        log "round $round/$ROUNDS: hello beside the neighbour's $mode mode"
        read -r rps _ _ n2xx _ n_rps _ <<<"$(measure "$mode-$round" "$mode")"
        non2xx=$((non2xx + n2xx))
        if [[ "$mode" == ok ]]; then B_RPS="$rps" B_N_RPS="$n_rps"; else C_RPS="$rps" C_N_RPS="$n_rps"; fi
    done
    ratio="$(awk -v b="$B_RPS" -v c="$C_RPS" 'BEGIN { printf "%.3f", (b > 0 ? c / b : 0) }')"
    ratios+=("$ratio")
    rows+=("$(printf '%-6s %10s %14s %10s %14s %10s' "$round" "$B_RPS" "$B_N_RPS" "$C_RPS" "$C_N_RPS" "$ratio")")
done
TRAPS="$(grep -c 'invocation failed' "$WORK/faas.log" || true)"
stop "$FAAS_PID"

echo
echo "neighbours: hello under wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP); neighbour wrk -t1 -c$NEIGHBOUR_CONNECTIONS; $ROUNDS rounds; $(nproc) CPUs"
echo "hello alone: $A_RPS req/s (p50 $A_P50 ms, p99 $A_P99 ms)"
printf '%-6s %10s %14s %10s %14s %10s\n' round ok_rps ok_neighbour traps_rps traps_neighbour traps/ok
printf '%s\n' "${rows[@]}"
mapfile -t sorted < <(printf '%s\n' "${ratios[@]}" | sort -n)
MEDIAN="$(printf '%s\n' "${sorted[@]}" | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')"
echo "hello req/s beside traps / beside ok, median of $ROUNDS: $MEDIAN (goal >= 0.95); min ${sorted[0]}, max ${sorted[-1]}"
echo "failure lines in the platform log: $TRAPS"
if [[ "$non2xx" != 0 ]]; then
    echo "warning: hello answered $non2xx non-2xx; see the wrk output above" >&2
fi
