#!/usr/bin/env bash
# The timing-dependent tests, run again and again on a machine kept busy: flakes show up here
# before they show up in CI. Each round runs every test binary below once (each binary's tests
# in parallel, as the suite runs them) while stress-ng keeps every CPU busy; a table of
# failures by test comes at the end, and each failing round's output is kept.
#
#   bash scripts/stress.sh [ROUNDS]           # default 20
#
# Environment: STRESS_CPUS (stress-ng workers; default: one per CPU), STRESS_LOAD (percent
# each worker keeps its CPU busy; default 100), STRESS_OUT (default target/stress).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-20}"
out="${STRESS_OUT:-$PWD/target/stress}"
cpus="${STRESS_CPUS:-$(nproc)}"
load="${STRESS_LOAD:-100}"
command -v stress-ng >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq stress-ng; }
command -v stress-ng >/dev/null || { echo "stress-ng is missing (apt-get install stress-ng)" >&2; exit 1; }

# Package, test binary, filter: the tests that order events in time (restarts, drains,
# in-flight calls, visibility timeouts, watch events, load spreading).
suites=(
  "faas-e2e local cron::"
  "faas-e2e local lifecycle::"
  "faas-e2e local hostile::"
  "faas-e2e local sqs::"
  "faas-sqs sqs -"
  "faas-gateway cluster -"
  "faas-gateway async_calls -"
)
mkdir -p "$out"
rm -f "$out"/round-*.txt
echo "stress: building the test binaries (no load yet)"
for s in "${suites[@]}"; do
  read -r package binary _ <<<"$s"
  cargo test -q -p "$package" --test "$binary" --locked --no-run
done

stress-ng --cpu "$cpus" --cpu-load "$load" --quiet &
stress_pid=$!
trap 'kill "$stress_pid" 2>/dev/null; wait "$stress_pid" 2>/dev/null || true' EXIT
echo "stress: $rounds rounds under stress-ng --cpu $cpus --cpu-load $load"
declare -A failed=()
for round in $(seq 1 "$rounds"); do
  for s in "${suites[@]}"; do
    read -r package binary filter <<<"$s"
    args=()
    [ "$filter" != - ] && args=("$filter")
    log="$out/round-$round-$package-$binary.txt"
    start=$(date +%s)
    if cargo test -q -p "$package" --test "$binary" --locked -- "${args[@]}" >"$log" 2>&1; then
      rm -f "$log"
      result=ok
    else
      result=FAILED
      while read -r name; do
        failed["$name"]=$((${failed["$name"]:-0} + 1))
      done < <(awk '/^failures:$/ {f=1; next} f && /^    [a-z_:]+$/ {print $1} /^test result:/ {f=0}' "$log" | sort -u)
    fi
    echo "round $round/$rounds $package/$binary ${filter/-/all}: $result ($(($(date +%s) - start)) s)"
  done
done
echo
if [ "${#failed[@]}" = 0 ]; then
  echo "stress: no test failed in $rounds rounds"
else
  echo "stress: failures in $rounds rounds (test: times); outputs in $out/round-*.txt"
  for name in "${!failed[@]}"; do echo "  $name: ${failed[$name]}"; done | sort
  exit 1
fi
