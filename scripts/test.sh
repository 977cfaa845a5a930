#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite. `.ci/run` calls exactly this.
set -euo pipefail
# Incremental caches double the size of target/ and buy nothing on a one-shot CI build.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cd "$(dirname "$0")/.."
# Every part this script can install is required: a test that would skip for want of one fails
# instead (tests/src/skip.rs). Set FAAS_REQUIRE_ALL=0 to let such tests skip on a bare machine.
export FAAS_REQUIRE_ALL="${FAAS_REQUIRE_ALL:-1}"
# Every skip, deliberate or not, is written here and printed at the end, pass or fail.
mkdir -p target
export FAAS_SKIP_LOG="$PWD/target/faas-skips.txt"
: >"$FAAS_SKIP_LOG"
print_skips() {
  if [ -s "$FAAS_SKIP_LOG" ]; then
    echo "== tests that did not run here ($(wc -l <"$FAAS_SKIP_LOG")):"
    sort "$FAAS_SKIP_LOG"
  else
    echo "== every test ran (no skips)"
  fi
}
trap print_skips EXIT

# Tools the network-namespace test uses (it skips, saying so, when they are missing).
if ! command -v ip >/dev/null || ! command -v curl >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq iproute2 curl) || echo "warning: could not install iproute2/curl"
  fi
fi

# The OCI tests push to and pull from a real registry: Debian's docker-registry (the CNCF
# distribution registry), which the tests start on loopback ports themselves (tests/src/registry.rs).
if ! command -v docker-registry >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq docker-registry) || echo "warning: could not install docker-registry"
  else
    echo "warning: docker-registry is missing and cannot be installed here; the OCI tests will fail"
  fi
fi

# The image test (tests/tests/images.rs) builds the three images of docker/ FROM scratch with
# Debian's buildah (vfs storage in a temporary folder, no container is run).
if ! command -v buildah >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq buildah) || echo "warning: could not install buildah"
  else
    echo "warning: buildah is missing and cannot be installed here; the image test will fail (or skip when not root)"
  fi
fi

# The SQS tests talk to a real SQS-protocol server: moto in server mode, which the tests start on
# a loopback port themselves (sqs/tests/sqs.rs, tests/tests/local/sqs.rs).
if ! command -v moto_server >/dev/null; then
  python3 -m pip install --quiet 'moto[server]>=5.1,<6'
fi
# Lambda handlers run through the real runtime interface client (runtime/tests/lambda.rs).
if ! python3 -c 'import awslambdaric' 2>/dev/null; then
  python3 -m pip install --quiet 'awslambdaric>=3,<5'
fi

# The Helm chart is linted and rendered with the official Helm SDK and validated against the
# Kubernetes schemas (tests/chart/).
if ! python3 -c 'import helm_python, kubernetes_validate' 2>/dev/null; then
  python3 -m pip install --quiet 'helm-python-sdk>=0.2,<0.3' 'kubernetes-validate>=1.33'
fi

# The dashboard is tested in a real browser: Debian's Chromium driven by playwright-core
# (tests/ui/, npm; no browser download).
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq chromium) || echo "warning: could not install chromium"
  else
    echo "warning: chromium is missing and cannot be installed here; the browser test will fail"
  fi
fi
if [ ! -d tests/ui/node_modules/playwright-core ]; then
  (cd tests/ui && npm ci --no-audit --no-fund --silent)
fi
# Lambda callers through the AWS SDK for JavaScript v3 (tests/sdk-js, npm).
if [ ! -d tests/sdk-js/node_modules/@aws-sdk/client-lambda ]; then
  (cd tests/sdk-js && npm ci --no-audit --no-fund --silent)
fi

# Guest artifacts from examples/ (wasm32-wasip2 / wasm32-wasip1). When the targets cannot be
# installed (and FAAS_REQUIRE_ALL=0), the tests use the copies committed in tests/fixtures/,
# which must have been built from the sources as they are.
if ! bash examples/build.sh; then
  [ "$FAAS_REQUIRE_ALL" = 1 ] && { echo "error: examples/build.sh failed (FAAS_REQUIRE_ALL=1)" >&2; exit 1; }
  echo "warning: guests not built; tests fall back to tests/fixtures/"
fi
bash scripts/fixtures.sh check

# From here on, whatever the tests start must be gone when they end (scripts/leftovers.sh).
tests_started="$(date +%s)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# --no-fail-fast: every test binary runs even after one fails, so a red run lists every
# failure (a first failing binary used to hide the state of all the binaries after it).
cargo test --workspace --locked --no-fail-fast
# faas-sdk's optional `aws` feature (an SdkConfig for guests), off in the workspace build.
cargo clippy -p faas-sdk --features aws --all-targets --locked -- -D warnings
cargo test -p faas-sdk --features aws --locked
python3 -m unittest discover -s tests/chart -v
# No test leaves a process behind: platforms, pools, moto, registries, functions' processes.
bash scripts/leftovers.sh "$tests_started"
