#!/usr/bin/env bash
# The producer benchmark: kcl_producer::Producer against its stub server (FakeKinesis over HTTP on
# 127.0.0.1), beside `PutRecord` one at a time (what `kcl put` did before the producer) and a
# plain `PutRecords` loop, interleaved in one run through the real AWS SDK client.
#
#   bash scripts/bench_producer.sh           5 runs of 200,000 records; writes the producer section
#                                            of BENCHMARKS.md (scripts/bench_producer.py)
#   bash scripts/bench_producer.sh --smoke   tiny counts, 1 run: every row stores every record
#                                            exactly once (CI); writes nothing
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
OUT=$REPO/target/bench
mkdir -p "$OUT"
echo "[bench] cargo build --release -p kcl-bench --bin producer-bench" >&2
cargo build --release --quiet -p kcl-bench --bin producer-bench
results=$OUT/producer.jsonl
if [ "${1:-}" = "--smoke" ]; then
  "$REPO/target/release/producer-bench" --records 2000 --put-record-records 50 --runs 1 > "$results"
  echo "[bench] producer smoke: $(wc -l < "$results") rows, every record stored once" >&2
else
  "$REPO/target/release/producer-bench" --runs "${KCL_BENCH_RUNS:-5}" > "$results"
  python3 "$REPO/scripts/bench_producer.py" "$results" "$REPO/BENCHMARKS.md"
  echo "[bench] wrote the producer section of BENCHMARKS.md" >&2
fi
