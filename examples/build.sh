#!/usr/bin/env bash
# Builds the guest functions and test guests of this workspace:
#   wasm32-wasip2 components: hello, sqs-consumer, aws-s3-sqs (the AWS SDK for Rust), hostile
#   wasm32-wasip1 command module: echo-cgi
#   host binaries: lambda-rust, lambda-stream and lambda-concurrent (unmodified Rust Lambda
#   handlers: plain, streaming its response, serving several invocations per process; debug)
# Artifacts land in examples/target/<target>/release/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

targets=(wasm32-wasip2 wasm32-wasip1)
if ! rustup target add "${targets[@]}"; then
    echo "build.sh: 'rustup target add ${targets[*]}' failed (offline?); checking installed targets" >&2
fi
installed="$(rustup target list --installed 2>/dev/null || true)"
missing=()
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || missing+=("$t")
done
if ((${#missing[@]})); then
    echo "build.sh: missing Rust targets: ${missing[*]}; install them with 'rustup target add ${missing[*]}'" >&2
    exit 3
fi

cargo build --release --locked --target wasm32-wasip2 -p hello -p sqs-consumer -p aws-s3-sqs -p hostile
cargo build --release --locked --target wasm32-wasip1 -p echo-cgi
# Native Lambda handlers (lambda_runtime), for mode: lambda.
cargo build --locked -p lambda-rust

target_dir="${CARGO_TARGET_DIR:-target}"
echo "artifacts:"
for f in \
    "$target_dir/wasm32-wasip2/release/hello.wasm" \
    "$target_dir/wasm32-wasip2/release/sqs_consumer.wasm" \
    "$target_dir/wasm32-wasip2/release/aws_s3_sqs.wasm" \
    "$target_dir/wasm32-wasip2/release/hostile.wasm" \
    "$target_dir/wasm32-wasip1/release/echo-cgi.wasm" \
    "$target_dir/debug/lambda-rust" \
    "$target_dir/debug/lambda-stream" \
    "$target_dir/debug/lambda-concurrent"; do
    printf '  %s  %s bytes\n' "$(realpath "$f")" "$(wc -c <"$f" | tr -d ' ')"
done
