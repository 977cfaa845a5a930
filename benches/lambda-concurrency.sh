#!/usr/bin/env bash
# Memory of Lambda handler processes per N concurrent invocations: one process per
# invocation (classic Lambda, the default) against one process serving N at once
# (`perProcessConcurrency: N`, Lambda Managed Instances' AWS_LAMBDA_MAX_CONCURRENCY), same
# handler (examples/lambda-rust's lambda-concurrent, lambda_runtime::run_concurrent), same
# run. While N invocations sleep in each function, the resident memory (RSS) of every handler
# process of that function is summed from /proc. Loopback only.
#
#   bash benches/lambda-concurrency.sh
#
# Environment:
#   LEVELS="1 4 8 16"   concurrent invocations to measure
#   SKIP_BUILD=1        do not run the cargo builds (use what is already built)
#   FAAS_BIN=PATH       the faas binary (default target/release/faas; a debug build measures
#                       the same handlers' memory)
set -euo pipefail

BENCH=lambda-concurrency
# shellcheck source=benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
LEVELS="${LEVELS:-1 4 8 16}"
HANDLER="$ROOT/examples/target/debug/lambda-concurrent"
FAAS="${FAAS_BIN:-$FAAS}"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "cargo build --release -p faas-cli; examples: cargo build -p lambda-rust"
    [[ -n "${FAAS_BIN:-}" ]] || cargo build --release -p faas-cli
    (cd "$ROOT/examples" && cargo build --locked -p lambda-rust)
fi
[[ -x "$FAAS" && -x "$HANDLER" ]] || { log "faas or $HANDLER is missing (run without SKIP_BUILD=1)"; exit 1; }

printf '| concurrent invocations | processes (classic) | RSS classic (MiB) | processes (shared) | RSS shared (MiB) | saved |\n'
printf '|---|---|---|---|---|---|\n'
for n in $LEVELS; do
    dir="$WORK/functions-$n"
    mkdir -p "$dir"
    for name in classic shared; do
        extra=""
        [[ "$name" == shared ]] && extra="      perProcessConcurrency: $n"$'\n'
        cat >"$dir/$name.yaml" <<YAML
apiVersion: faas.dev/v1alpha1
kind: Function
metadata: {name: $name}
spec:
  runtime:
    container:
      command: [$HANDLER]
      mode: lambda
$extra  concurrency: $n
  timeout: 60s
YAML
    done
    port="$(free_port)"
    "$FAAS" up "$dir" --listen "127.0.0.1:$port" --state "$WORK/state-$n" >"$WORK/up-$n.log" 2>&1 &
    up=$!
    PIDS+=("$up")
    wait_for_200 "http://127.0.0.1:$port/healthz" 30 "$up" || { cat "$WORK/up-$n.log" >&2; exit 1; }
    row="$(python3 - "$port" "$n" <<'PY'
import concurrent.futures, json, os, sys, time, urllib.request
port, n = sys.argv[1], int(sys.argv[2])

def invoke(function):
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations"
    body = json.dumps({"sleepMs": 4000}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=60) as r:
        return json.load(r)["pid"]

def handlers(function):
    """(pid, RSS KiB) of every process whose environment names `function`."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            if f"AWS_LAMBDA_FUNCTION_NAME={function}".encode() not in env:
                continue
            status = open(f"/proc/{pid}/status").read()
            rss = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:"))
            out.append((int(pid), rss))
        except (OSError, StopIteration):
            pass
    return out

cells = []
for function in ("classic", "shared"):
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        calls = [pool.submit(invoke, function) for _ in range(n)]
        time.sleep(2.0)  # all N are in their handlers now
        procs = handlers(function)
        served = {c.result() for c in calls}
    cells.append((len(served), sum(rss for _, rss in procs) / 1024))
(cp, cr), (sp, sr) = cells
print(f"| {n} | {cp} | {cr:.1f} | {sp} | {sr:.1f} | {cr - sr:.1f} MiB ({(1 - sr / cr) * 100:.0f}%) |")
PY
)"
    echo "$row"
    stop "$up"
done
