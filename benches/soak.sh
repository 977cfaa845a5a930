#!/usr/bin/env bash
# Soak: one `faas up` under mixed load for 30 minutes (HTTP on every kind of function, cron
# every second, an SQS stream on moto, async calls with callbacks, a redeploy every 10 s and a
# broken deploy every minute), sampled every 10 s; checks at the end that nothing was lost,
# doubled or left behind and that RSS, fds and threads stayed flat. benches/soak.py says
# exactly what it does and checks. Loopback only.
#
#   bash benches/soak.sh
#
# Environment: SOAK_SECONDS=1800 SOAK_RATE=20 (calls/s per function) SOAK_SQS_RATE=20
#              SOAK_OUT=target/soak (samples.csv, summary.json, soak.png, faas.log)
#              SKIP_BUILD=1 (use what is built)
set -euo pipefail

BENCH=soak
# shellcheck source=benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_or_reuse
# What the soak drives: moto (SQS), awslambdaric (the Lambda handlers), matplotlib (the plot).
command -v moto_server >/dev/null || python3 -m pip install --quiet 'moto[server]>=5.1,<6'
python3 -c 'import awslambdaric' 2>/dev/null || python3 -m pip install --quiet 'awslambdaric>=3,<5'
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet 'matplotlib>=3.8,<4'

OUT="${SOAK_OUT:-$ROOT/target/soak}"
log "output in $OUT"
python3 "$ROOT/benches/soak.py" --faas "$FAAS" --hello "$HELLO" --echo-cgi "$ECHO_CGI" \
    --seconds "${SOAK_SECONDS:-1800}" --rate "${SOAK_RATE:-20}" --sqs-rate "${SOAK_SQS_RATE:-20}" \
    --out "$OUT"
