#!/usr/bin/env bash
# Builds the guest policy plugins (plugins/*) as WebAssembly components for
# wasm32-wasip2 and prints the paths of the .wasm files produced.
# Works from any directory; extra arguments are passed to cargo.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rustup target list --installed | grep -q wasm32-wasip2 || rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2 --manifest-path "$root/plugins/Cargo.toml" "$@"
out="$root/plugins/target/wasm32-wasip2/release"
for member in allowlist max_calls business_hours faulty adapter_probe phone_rest call_log_rest web_terminal rest_hooks voice_proxy; do
    echo "$out/$member.wasm"
done
