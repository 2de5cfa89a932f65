#!/usr/bin/env bash
# End-to-end tests of kcl processors under the REAL Java KCL 3.1.3 MultiLangDaemon, offline, on
# 127.0.0.1 only: Kinesis from kinesis-local (npm), DynamoDB from moto_server (PyPI), the daemon's
# jars from the PyPI wheel kclpy-ext. Everything is installed from the registries into a cache
# folder on first use; later runs install nothing.
#
#   bash scripts/e2e.sh                  prints that every scenario of the former Python suite
#                                        moved to the Rust harness (`rust` below) and exits 0;
#                                        it installs and runs nothing (CI runs `rust` after it).
#   bash scripts/e2e.sh demo [EXE ARGS]  one-command "run it for real": a local 2-shard stream, ~20
#                                        text records, the real daemon running EXE (default: the
#                                        word_count example) as its child, then SIGTERM and the final
#                                        lease-table checkpoints. EXE ARGS must not contain spaces
#                                        (the daemon splits its command line on spaces).
#   bash scripts/e2e.sh install          install only
#   bash scripts/e2e.sh rust [FILTER]    the Rust harness (crate kcl-e2e): after the same installs,
#                                        build examples/file_sink, examples/declared_sink,
#                                        examples/checkpoint_on_shutdown,
#                                        examples/native_file_sink (feature native) and kcl-cli,
#                                        then run its #[ignore]d scenarios one at a time, `cargo
#                                        test -p kcl-e2e -- --ignored --test-threads=1` (on free
#                                        127.0.0.1 ports of its own: it can run beside the Python
#                                        suite; logs in $KCL_E2E_CACHE/rust-runs/<id>/). FILTER
#                                        picks tests by name: `rust split_and_merge`, `rust
#                                        native` (the native engine's); `rust --skip full_` is
#                                        CI's reduced set (without the scenarios named full_*,
#                                        the slowest); `rust` alone runs the full set.
#
# Every MultiLangDaemon scenario runs on the Rust harness, with the checks it had in the Python
# suite (kcl-e2e/tests/daemon.rs): 1 records across 2 shards + checkpoints, 2 SIGTERM while
# records flow, 3 restart resumes (1-3 one test), 1d 2d the same with declared_sink, 4 and 4d
# SplitShard and MergeShards while running, 6 two workers + failover, 7 KPL-aggregated records;
# (kcl-e2e/tests/daemon_more.rs): 5 and 5d chaos (kill -9 of children and daemon; 5d with
# declared_sink and poison/flaky records), 8 the kcl tool drives it (`kcl put` puts 50 words,
# `kcl daemon` runs the daemon, SIGTERM to `kcl` is forwarded), 9 Ctrl-C: SIGINT to the process
# group of the daemon and its children (checkpoint_on_shutdown, which checkpoints only on
# shutdownRequested), 10 the SDK's producer with KPL aggregation (two `kcl produce --aggregate
# --ledger`) while shard 0 is split; tests/native.rs, migration.rs, parity.rs: the native engine;
# tests/daemon_native.rs: `kcl daemon --native` with children in Rust (file_sink, word_count),
# Node (aws-kcl, installed from npm with the emulator) and Python (amazon_kclpy's sample), and the
# Java daemon resuming its lease table and the reverse (`rust native_daemon`); the mixed fleets,
# native workers beside the daemon on one application: mixed_fleet.rs (C6 SIGSTOP fencing, C7
# follower of a Java leader, C8 handoffs both ways and the forced transfer after the handoff
# timeout, kill -9 of each), mixed_taker.rs (C13: a native 2.x taker beside the daemon in its
# 2.x-compatible mode), mixed_leader.rs (C11: a native leader serving a Java follower, then
# leader failover both ways), mixed_chaos.rs (one daemon and two native workers for 5 minutes,
# a split and kill -9 of each kind), mixed_cleanup.rs (C17: finished parents cleaned up, nothing
# else deleted); tests/iam.rs (issue 18's IAM proof: the emulators record every request, the
# real daemon's and `kcl daemon --native`'s are checked against `kcl iam-policy` for each worker's
# file, and the daemon's jars against the table the policy is built from: `rust iam_policy`);
# the `full_` ones take 6 to 8 minutes each.
# The harness and the demo use the kcl tool (crate kcl-cli): `kcl properties` writes each
# worker's kcl.properties and `kcl jars verify` checks the daemon's jars.
#
# Environment: KCL_E2E_CACHE (default <repo>/.e2e-cache), KCL_E2E_KINESIS_PORT (14568, plain HTTP
# and h2c), KCL_E2E_KINESIS_TLS_PORT (14567), KCL_E2E_DYNAMODB_PORT (14569), KCL_E2E_SEED (chaos
# randomness), KCL_E2E_CHAOS_ROUNDS (6), KCL_E2E_JAVA_OPTS (JVM flags). Logs of every run are kept in
# $KCL_E2E_CACHE/runs/<id>/.
# Needs python3 (with venv), node + npm, cargo; installs Java 17 with apt-get if `java` is missing.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KCL_E2E_CACHE:-$REPO/.e2e-cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
export KCL_E2E_CACHE=$CACHE KCL_E2E_REPO=$REPO
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree

# The pinned sets, by hash: scripts/e2e/requirements.txt (generated from requirements.in by
# pip-compile --generate-hashes: the jars in kclpy-ext, boto3, moto_server for DynamoDB, and every
# transitive package) is installed with --require-hashes; scripts/e2e/node/package-lock.json with
# `npm ci`, which checks each package's integrity hash.
PIP_REQUIREMENTS="$REPO/scripts/e2e/requirements.txt"
NODE_PROJECT="$REPO/scripts/e2e/node"

say() { printf '[e2e] %s\n' "$*" >&2; }

# If installing or building fails, still end with the summary line the suite always ends with.
STAGE=""
on_exit() {
  local status=$?
  if [ "$status" != 0 ] && [ -n "$STAGE" ]; then
    printf 'FAIL setup-%s exit status %s (see the messages above)\n0 passed, 1 failed\n' "$STAGE" "$status"
  fi
}
trap on_exit EXIT

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || { say "missing $*, and no apt-get to install it"; exit 2; }
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

install_java() {
  command -v java >/dev/null && return 0
  apt_install openjdk-17-jre-headless
}

install_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  local dir="$CACHE/node"
  if cmp -s "$NODE_PROJECT/package-lock.json" "$dir/package-lock.json" && [ -d "$dir/node_modules/kinesis-local" ] && [ -d "$dir/node_modules/aws-kcl" ]; then
    return 0
  fi
  say "npm ci (kinesis-local, aws-kcl; $NODE_PROJECT/package-lock.json) into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$NODE_PROJECT/package.json" "$NODE_PROJECT/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --silent --no-audit --no-fund >&2)
}

install_python() {
  local venv="$CACHE/venv" stamp="$CACHE/venv/.kcl-e2e-requirements"
  if [ -x "$venv/bin/python" ] && cmp -s "$PIP_REQUIREMENTS" "$stamp"; then
    return 0
  fi
  command -v python3 >/dev/null || apt_install python3 python3-venv
  if [ ! -x "$venv/bin/python" ]; then
    say "python3 -m venv $venv"
    mkdir -p "$CACHE"
    if ! python3 -m venv "$venv" >&2; then
      rm -rf "$venv"
      apt_install python3-venv
      python3 -m venv "$venv" >&2
    fi
  fi
  say "pip install --require-hashes -r $PIP_REQUIREMENTS"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r "$PIP_REQUIREMENTS" >&2
  cp "$PIP_REQUIREMENTS" "$stamp"
}

install_all() {
  STAGE=install
  mkdir -p "$CACHE"
  install_java
  install_node
  install_python
  STAGE=""
}

build_examples() {
  STAGE=build
  say "cargo build --example $*"
  local args=()
  for example in "$@"; do args+=(--example "$example"); done
  (cd "$REPO" && cargo build --quiet "${args[@]}" >&2)
  STAGE=""
}

# The examples of the feature `native` (the Java-free engine, the AWS SDK).
build_native_examples() {
  STAGE=build
  say "cargo build --features native --example $*"
  local args=()
  for example in "$@"; do args+=(--example "$example"); done
  (cd "$REPO" && cargo build --quiet --features native "${args[@]}" >&2)
  STAGE=""
}

build_kcl_cli() {
  STAGE=build
  say "cargo build -p kcl-cli"
  (cd "$REPO" && cargo build --quiet -p kcl-cli >&2)
  STAGE=""
}

case "${1:-}" in
  -h | --help | help)
    usage
    exit 0
    ;;
  install)
    install_all
    say "installed in $CACHE"
    exit 0
    ;;
  rust)
    shift
    install_all
    build_examples file_sink declared_sink checkpoint_on_shutdown word_count  # the daemon's children (tests/daemon*.rs)
    build_native_examples native_file_sink  # the native engine's worker (tests/native.rs)
    build_kcl_cli  # `kcl properties` writes the worker's properties, `kcl jars verify` checks the jars
    say "cargo test -p kcl-e2e -- --ignored (KCL_E2E_CACHE=$CACHE)"
    cd "$REPO"
    exec cargo test -p kcl-e2e -- --ignored --nocapture --test-threads=1 "$@"
    ;;
  demo)
    install_all
    if [ $# -le 1 ]; then build_examples word_count; fi
    build_kcl_cli  # `kcl properties` writes the worker's properties, `kcl jars verify` checks the jars
    exec "$CACHE/venv/bin/python" "$REPO/scripts/e2e/main.py" "$@"
    ;;
  *)
    if [ $# -gt 0 ]; then
      say "unknown argument '$1': the Python suite's scenarios all moved to the Rust harness"
      usage >&2
      exit 2
    fi
    echo "every end-to-end scenario moved to the Rust harness (crate kcl-e2e): run bash scripts/e2e.sh rust"
    exit 0
    ;;
esac
