#!/usr/bin/env bash
# Fails, listing them, when processes the test suite starts are still running after it: a
# platform, pool, gateway or controller binary, moto, a registry, a function's process (its
# server.py, a Lambda handler). Only processes younger than SINCE (Unix seconds, when the suite
# started) count, so a `scripts/up.sh` running beside the suite is never blamed. A process on
# its way out gets a few seconds to go.
set -euo pipefail
since="${1:?usage: leftovers.sh SINCE_UNIX_SECONDS}"
pattern='moto_server|server\.py|target/(debug|release)/(faas|faas-runtime|faas-gateway|faas-controller|lambda-rust|lambda-stream|lambda-concurrent)( |$)|docker-registry|awslambdaric'

leftovers() {
    local age=$(($(date +%s) - since + 1))
    ps -eo pid=,etimes=,args= | awk -v age="$age" -v re="$pattern" \
        '$2 <= age && $3 !~ /(^|\/)(awk|ps)$/ && $0 ~ re'
}

left=""
for _ in $(seq 1 20); do
    left="$(leftovers)"
    [ -z "$left" ] && exit 0
    sleep 0.5
done
echo "error: the tests left these processes running (pid, seconds, command):" >&2
echo "$left" >&2
exit 1
