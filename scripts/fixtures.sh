#!/usr/bin/env bash
# The guests committed in tests/fixtures/ stand in for examples/build.sh's output where the wasm
# targets cannot be installed, and some tests (gateway/tests) always use them. So they must be
# built from the sources as they are now. tests/fixtures/SOURCES.sha256 records a digest of those
# sources taken when the fixtures were last built:
#   scripts/fixtures.sh check    fails, naming what to do, when the sources changed since
#   scripts/fixtures.sh update   builds the guests (examples/build.sh), copies them in, records the digest
set -euo pipefail
cd "$(dirname "$0")/.."

# Everything a fixture is built from: the guest workspace's manifest and lockfile, the guest
# crates, and the SDK they depend on (path dependencies).
sources=(examples/Cargo.toml examples/Cargo.lock examples/hello examples/sqs-consumer
  examples/aws-s3-sqs examples/echo-cgi examples/guests/hostile sdk/rust)
fixtures=(wasm32-wasip2/release/hello.wasm wasm32-wasip2/release/sqs_consumer.wasm
  wasm32-wasip2/release/aws_s3_sqs.wasm wasm32-wasip2/release/hostile.wasm
  wasm32-wasip1/release/echo-cgi.wasm)
record=tests/fixtures/SOURCES.sha256

files() {
  # Tracked and new (not ignored) files, so a file added to a guest counts; outside a git work
  # tree (an exported copy), every file but build output.
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard -- "${sources[@]}"
  else
    find "${sources[@]}" -type f -not -path '*/target/*' -print0
  fi
}

digest() {
  # Content and path of each file, not mtimes.
  files | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

case "${1:-check}" in
check)
  want="$(cat "$record")"
  have="$(digest)"
  if [ "$want" != "$have" ]; then
    echo "tests/fixtures/ are stale: the guest sources (${sources[*]}) changed since the fixtures were built." >&2
    echo "Run: bash scripts/fixtures.sh update   (and commit tests/fixtures/)" >&2
    exit 1
  fi
  echo "tests/fixtures/ match their sources ($have)"
  ;;
update)
  bash examples/build.sh >/dev/null
  for f in "${fixtures[@]}"; do
    cp "examples/target/$f" tests/fixtures/
  done
  digest >"$record"
  echo "tests/fixtures/ rebuilt; digest $(cat "$record")"
  ;;
*)
  echo "usage: scripts/fixtures.sh check|update" >&2
  exit 2
  ;;
esac
