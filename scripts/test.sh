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
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Ignored tests never report ok: say how many there were and which.
report_ignored() {
  local count
  count=$(grep -c -E '^test .* \.\.\. ignored' "$log" || true)
  echo "== $count tests ignored in this run:"
  grep -E '^test .* \.\.\. ignored' "$log" | sed 's/^/   /' || true
}
echo "== the e2e suite's own process handling (python3 scripts/e2e/selftest.py)"
python3 scripts/e2e/selftest.py
echo "== cargo test --workspace (default features: includes the compile-fail ui tests)"
cargo test --workspace 2>&1 | tee "$log"
report_ignored
echo "== cargo test --workspace --features tokio (async hooks and the async example)"
cargo test --workspace --features tokio 2>&1 | tee "$log"
report_ignored
# The kcl-cli tests that need java, javac, the KCL 3.1.3 jars or PyPI are #[ignore]d by default;
# with CI or KCL_REQUIRE_PREREQUISITES set they run here, and fail when a prerequisite is missing.
if [[ -n "${CI:-}" || -n "${KCL_REQUIRE_PREREQUISITES:-}" ]]; then
  echo "== cargo test -p kcl-cli -- --ignored (java, the KCL jars, PyPI: required here)"
  cargo test -p kcl-cli --tests -- --ignored
else
  echo "== the ignored kcl-cli tests (java, the KCL jars, PyPI) did not run: KCL_REQUIRE_PREREQUISITES=1 bash scripts/test.sh runs them"
fi
