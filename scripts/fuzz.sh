#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), starting from the committed seeds
# (fuzz/seeds/TARGET) and a working corpus kept under fuzz/corpus/ (not committed).
# Installs cargo-fuzz if missing. cargo-fuzz needs nightly-only compiler flags; this machine has
# only the stable toolchain, so RUSTC_BOOTSTRAP=1 lets stable accept them (for this build only).
# A crash stops the run with its input under fuzz/artifacts/TARGET/; make it a regression test.
# The run fails, too, when a target does not build, cargo fuzz fails for any other reason, or a
# target ran no input at all: a fuzzer that did not fuzz is not a pass.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
[ -n "$targets" ] || { echo "cargo fuzz list found no target" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in $targets; do
  mkdir -p "corpus/$target"
  echo "== fuzz $target for ${seconds}s"
  status=0
  cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|^==[0-9]+==|ERROR|SUMMARY|^thread .* panicked' "$log" || true
  if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
    echo "fuzz target $target found a crash: fuzz/artifacts/$target/" >&2
    exit 1
  fi
  if [ "$status" != 0 ]; then
    echo "fuzz target $target failed (exit status $status) without leaving a crash; its output ends:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  if [ -z "$runs" ] || [ "$runs" -eq 0 ]; then
    echo "fuzz target $target ran no input (stat::number_of_executed_units: ${runs:-missing})" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
done
