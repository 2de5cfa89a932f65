#!/usr/bin/env bash
# Dependency audit with cargo-deny (deny.toml): licences, duplicate versions, wildcard and unknown
# sources always; security advisories only when a copy of the RustSec advisory database is on this
# machine, because its host (GitHub) cannot be reached from here. Installs cargo-deny from
# crates.io (pinned version) when it is missing.
#
#   bash scripts/audit.sh              licences, bans, sources (+ advisories if a database is here)
#   KCL_ADVISORY_DB=DIR bash scripts/audit.sh
#                                      also advisories, from DIR: a git clone of
#                                      github.com/rustsec/advisory-db
set -euo pipefail
cd "$(dirname "$0")/.."
DENY_VERSION=0.20.2

if ! cargo deny --version 2>/dev/null | grep -q "$DENY_VERSION"; then
  echo "== cargo install cargo-deny $DENY_VERSION (crates.io)"
  cargo install --locked --quiet cargo-deny --version "$DENY_VERSION"
fi

# cargo-deny reads `cargo metadata` of every platform, which needs the manifests of crates that
# only other platforms compile (winapi-util, ...): no host build downloads them, and with
# --offline (for its advisory database) it cannot either. Fetch them first (crates.io, locked).
cargo fetch --locked --quiet

echo "== cargo deny check licenses bans sources"
cargo deny --offline --log-level warn check licenses bans sources

# Advisories: from KCL_ADVISORY_DB (a git clone of rustsec/advisory-db anywhere, cloned for this
# run into the folder where cargo-deny $DENY_VERSION keeps its copy of the default database, so it
# checks it without fetching; its age is printed and not held against it), else from cargo-deny's
# own copy (~/.cargo/advisory-dbs, left by a fetch on a machine that reaches GitHub), else none.
if [ -n "${KCL_ADVISORY_DB:-}" ]; then
  db=$(cd "$KCL_ADVISORY_DB" && pwd)
  git -C "$db" rev-parse --git-dir >/dev/null 2>&1 || { echo "KCL_ADVISORY_DB=$db is not a git repository"; exit 2; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  git clone --quiet "$db" "$tmp/dbs/advisory-db-3157b0e258782691"
  sed "s|^\\[advisories\\]|[advisories]\\ndb-path = \"$tmp/dbs\"\\nmaximum-db-staleness = \"P3650D\"|" deny.toml > "$tmp/deny.toml"
  echo "== cargo deny check advisories (database: $db at $(git -C "$db" log -1 --format='%h, %cs'))"
  cargo deny --offline --log-level warn --config "$tmp/deny.toml" check advisories
elif compgen -G "$HOME/.cargo/advisory-dbs/*/crates" >/dev/null; then
  echo "== cargo deny check advisories (cargo-deny's copy in ~/.cargo/advisory-dbs, not refreshed)"
  cargo deny --offline --log-level warn check advisories
else
  echo "== advisories NOT checked: no RustSec advisory database on this machine, and GitHub, where"
  echo "   cargo-deny fetches it, is unreachable here. To check them: KCL_ADVISORY_DB=DIR bash"
  echo "   scripts/audit.sh, with DIR a git clone of github.com/rustsec/advisory-db."
fi
