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
# kcl-cli/tests/deploy_files.rs checks deploy/systemd/kcl-app.service with systemd-analyze.
if ! command -v systemd-analyze >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd
fi

log=$(mktemp)
trap 'rm -f "$log"; [ -n "$phase_name" ] && echo "   ($phase_name: $((SECONDS - phase_start)) s; $SECONDS s in all)"' EXIT
# Each phase prints how long the previous one took, and the total so far.
phase_start=$SECONDS
phase_name=""
phase() {
  if [ -n "$phase_name" ]; then
    echo "   ($phase_name: $((SECONDS - phase_start)) s; $SECONDS s so far)"
  fi
  phase_name=$1
  phase_start=$SECONDS
  echo "== $1"
}

phase "cargo fmt --check"
cargo fmt --all -- --check
# The `tokio` feature changes kcl, kcl-core and kcl-macros only (kcl-cli, kcl-protocol and
# kcl-bench compile the same either way), so the second pass of lints and tests covers those;
# it also turns on kcl's `producer` feature (the re-exported `kcl::producer` and `kcl::kpl`).
TOKIO=(-p kcl -p kcl-core -p kcl-macros --features kcl/tokio,kcl/producer)
phase "cargo clippy --all-targets -D warnings (default features, then tokio)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy "${TOKIO[@]}" --all-targets -- -D warnings
# kcl-lease's `dynamodb` feature (DynamoStore, the AWS SDK) needs no pass of its own: the
# workspace build has it through kcl-native's default `aws` feature (features are unified).
# kcl's `native` feature (`kcl::native`, examples/native_word_count.rs).
cargo clippy -p kcl --features native --all-targets -- -D warnings

# Ignored tests never report ok: say how many there were and which.
report_ignored() {
  local count
  count=$(grep -c -E '^test .* \.\.\. ignored' "$log" || true)
  echo "== $count tests ignored in this run:"
  grep -E '^test .* \.\.\. ignored' "$log" | sed 's/^/   /' || true
}
phase "the e2e suite's own process handling (python3 scripts/e2e/selftest.py); README layout up to date"
python3 scripts/e2e/selftest.py
python3 scripts/layout.py
phase "cargo test --workspace (default features: includes the compile-fail ui tests)"
cargo test --workspace 2>&1 | tee "$log"
report_ignored
phase "cargo test with the tokio feature: kcl, kcl-core, kcl-macros (async hooks and the async example)"
cargo test "${TOKIO[@]}" 2>&1 | tee "$log"
report_ignored
# (examples/native_word_count.rs is checked by the clippy pass above.)
phase "cargo test -p kcl --features native --doc --test app_modes (kcl::native's and kcl::app's doc examples; a binary's \`native\` sub-command)"
cargo test -p kcl --features native --doc 2>&1 | tee "$log"
cargo test -p kcl --features native --test app_modes 2>&1 | tee "$log"
# The kcl-cli tests that need java, javac, the KCL 3.1.3 jars or PyPI, and the kcl-lease tests
# that need moto_server (installed by `bash scripts/e2e.sh install` into .e2e-cache/, or
# KCL_E2E_CACHE, or KCL_MOTO_SERVER), are #[ignore]d by default; with CI or
# KCL_REQUIRE_PREREQUISITES set they run here, and fail when a prerequisite is missing.
if [[ -n "${CI:-}" || -n "${KCL_REQUIRE_PREREQUISITES:-}" ]]; then
  phase "cargo test -p kcl-cli -- --ignored (java, the KCL jars, PyPI: required here)"
  cargo test -p kcl-cli --tests -- --ignored
  phase "cargo test -p kcl-lease --features dynamodb -- --ignored (DynamoStore against moto_server: required here)"
  cargo test -p kcl-lease --features dynamodb --test dynamodb_moto -- --ignored
else
  echo "== the ignored kcl-cli tests (java, the KCL jars, PyPI) and kcl-lease tests (moto_server) did not run: KCL_REQUIRE_PREREQUISITES=1 bash scripts/test.sh runs them (after bash scripts/e2e.sh install)"
fi
