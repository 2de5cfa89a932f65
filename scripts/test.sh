#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: formatting, lints, every test of the workspace
# (unit, doc, transcript, child-process and example tests). Cargo fetches what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -D warnings (default features, then tokio)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --features tokio -- -D warnings
echo "== cargo test --workspace (default features: includes the compile-fail ui tests)"
cargo test --workspace
echo "== cargo test --workspace --features tokio (async hooks and the async example)"
cargo test --workspace --features tokio
