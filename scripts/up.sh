#!/usr/bin/env bash
# Sets up a fresh machine and runs the local platform serving the examples on 127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 wasm32-wasip1
exec cargo run --release --locked -p faas-cli -- up examples "$@"
