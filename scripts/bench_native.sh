#!/usr/bin/env bash
# The native engine against the KCL 3.1.3 MultiLangDaemon (issue 15's performance comparison), in one
# run on one local stream: kinesis-local and moto_server started once, an 8-shard stream with N records,
# then the daemon (a JVM with one examples/file_sink child per shard) and examples/native_file_sink (one
# process), each as its own application reading from TRIM_HORIZON. Measured for each (by the harness's
# binary kcl-e2e/src/bin/bench_native.rs): summed PSS and RSS of the process tree (peak, steady), start to
# first record handled, CPU per record, records/s; the ledger must show lost 0 for both, else it fails.
# Then the same stream again under the daemon and under `kcl daemon --native` (the MultiLangDaemon
# without Java), both with eight amazon_kclpy children (scripts/e2e/kclpy_sink.py, one per shard):
# the second section of BENCHMARKS.md (issue 16).
#
#   bash scripts/bench_native.sh           40,000 records (KCL_BENCH_NATIVE_RECORDS), release builds of
#                                          both processors; writes the native section of BENCHMARKS.md
#                                          (scripts/bench_native.py); raw JSON lines in
#                                          $CARGO_TARGET_DIR/bench/native.jsonl. KCL_BENCH_NATIVE_NOTE:
#                                          a sentence to end the section with (e.g. the machine was busy).
#                                          About 9 minutes, 5 of them kinesis-local taking the puts.
#   bash scripts/bench_native.sh --smoke   400 records, debug builds (those scripts/e2e.sh rust builds):
#                                          every engine handles every record, lost 0; no timing check;
#                                          writes nothing (CI; about 2 minutes, 70 s of it the runs)
#
# Installs nothing beyond `bash scripts/e2e.sh install` (the emulators and the KCL jars, in
# KCL_E2E_CACHE). Release for the full run: the daemon's child and the native engine are then built as a
# user ships them (the workspace's release profile: LTO, one codegen unit), so neither engine is measured
# in a debug build. The harness itself (bench_native) and the kcl tool that writes the properties files
# are debug builds: they are not measured.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
OUT=$TARGET/bench
mkdir -p "$OUT"
mode=${1:-full}
case "$mode" in
  full) PROFILE=release; RECORDS=${KCL_BENCH_NATIVE_RECORDS:-40000} ;;
  --smoke) PROFILE=debug; RECORDS=400 ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

bash "$REPO/scripts/e2e.sh" install
export KCL_E2E_CACHE=${KCL_E2E_CACHE:-$REPO/.e2e-cache}
flag=""
[ "$PROFILE" = release ] && flag=--release
echo "[bench] cargo build ($PROFILE: examples/file_sink, examples/native_file_sink, kcl-cli; debug: kcl-cli, bench_native)" >&2
cargo build --quiet -p kcl-cli
cargo build --quiet -p kcl-e2e --bin bench_native
cargo build --quiet $flag --example file_sink
cargo build --quiet $flag --example native_file_sink --features native
# `kcl daemon --native` runs from the kcl tool of the same profile as the processors.
[ "$PROFILE" = release ] && cargo build --quiet --release -p kcl-cli

results=$OUT/native.jsonl
[ "$mode" = --smoke ] && results=$OUT/native-smoke.jsonl  # the full run's results are kept
started=$(date +%s)
# Then the same amazon_kclpy children under the Java daemon and under `kcl daemon --native`.
KCL_E2E_PROFILE=$PROFILE "$TARGET/debug/bench_native" --records "$RECORDS" --shards 8 \
  --engines daemon,native,daemon:kclpy,native-daemon:kclpy > "$results"
echo "[bench] bench_native took $(( $(date +%s) - started )) s" >&2
if [ "$mode" = --smoke ]; then
  python3 "$REPO/scripts/bench_native.py" --check "$results"
else
  commit=$(git rev-parse --short=12 HEAD)
  git diff --quiet HEAD -- . ':!BENCHMARKS.md' || commit="$commit (with uncommitted changes)"
  python3 "$REPO/scripts/bench_native.py" "$results" "$REPO/BENCHMARKS.md" "$commit"
  echo "[bench] wrote the native section of BENCHMARKS.md" >&2
fi
