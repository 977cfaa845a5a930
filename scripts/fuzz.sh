#!/usr/bin/env bash
# Long fuzzing runs with cargo-fuzz (libFuzzer, coverage-guided) on the nightly toolchain:
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 600 s each, every target, one after another
# Targets are tests/fuzz-targets' (manifest cron cgi routes lambda_events settle oci async_call
# query). Each run starts from the committed seeds (fuzz/corpus/<target>/, which the test suite
# replays on stable) and what earlier runs found; inputs that find new coverage go to
# fuzz/corpus-work/<target>/ (not committed: thousands of files; copy an input worth keeping
# into fuzz/corpus/ by hand). A crash is written to fuzz/artifacts/<target>/ and stops that
# target's run: add it to fuzz/corpus/ so the suite replays it. Installs cargo-fuzz when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(manifest cron cgi routes lambda_events settle oci async_call query)
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd fuzz
# Our code has no unsafe of its own: coverage guidance without AddressSanitizer runs about
# twice as many inputs per second.
cargo +nightly fuzz build -O --sanitizer none
status=0
for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s"
  mkdir -p "corpus-work/$target" "artifacts/$target"
  if ! cargo +nightly fuzz run -O --sanitizer none "$target" "corpus-work/$target" \
      "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="artifacts/$target/" -print_final_stats=1 2>&1 | tail -n 25; then
    echo "== $target: FAILED (see fuzz/artifacts/$target/)"
    status=1
  fi
done
exit "$status"
