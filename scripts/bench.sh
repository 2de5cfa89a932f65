#!/usr/bin/env bash
# The child benchmark, side by side in one run: examples/byte_count (ours), amazon_kclpy 3.2.0,
# aws-kcl (npm), a typed serde_json child with borrowed strings (what a competent engineer writes
# in an hour), the naive serde_json::Value child, and `cat` (the pipe's ceiling), on three
# workloads. Each child runs twice per run: through a pipe driven by the compiled daemon stand-in
# kcl-bench, and on the workload's recorded session read from a file (no pipe, no driver: CPU
# per record that does not depend on the host's scheduling; the session is written once per
# workload). Results: BENCHMARKS.md (written by scripts/bench_report.py from the raw JSON lines
# kept in target/bench/results.jsonl).
#
#   bash scripts/bench.sh           full run (5 runs per child and workload), writes BENCHMARKS.md
#   bash scripts/bench.sh --smoke   tiny workloads, 1 run: checks every child handles every batch
#                                   and checkpoints its last record (CI); writes nothing
#
# Installs into ${KCL_BENCH_CACHE:-target/bench/cache}: the amazon_kclpy sdist (its child side
# needs no jars: it is put on PYTHONPATH) and aws-kcl from npm, both pinned by hash.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
CACHE=${KCL_BENCH_CACHE:-$REPO/target/bench/cache}
OUT=$REPO/target/bench
KCLPY_VERSION=3.2.0
AWSKCL_VERSION=2.3.2
mode=${1:-full}
mkdir -p "$CACHE" "$OUT"

# Both installs are pinned by hash: kcl-bench/children/requirements.txt (pip --require-hashes) and
# kcl-bench/children/node/package-lock.json (npm ci checks every package's integrity).
if [ ! -d "$CACHE/amazon_kclpy-$KCLPY_VERSION" ]; then
  echo "[bench] fetching the amazon_kclpy $KCLPY_VERSION sdist (hash-pinned)" >&2
  python3 -m pip download -q --disable-pip-version-check --require-hashes --no-deps --no-binary :all: \
    -r "$REPO/kcl-bench/children/requirements.txt" -d "$CACHE"
  tar -xzf "$CACHE/amazon_kclpy-$KCLPY_VERSION.tar.gz" -C "$CACHE"
fi
if ! cmp -s "$REPO/kcl-bench/children/node/package-lock.json" "$CACHE/node/package-lock.json" \
  || [ ! -d "$CACHE/node/node_modules/aws-kcl" ]; then
  echo "[bench] npm ci aws-kcl@$AWSKCL_VERSION (package-lock.json)" >&2
  rm -rf "$CACHE/node"
  mkdir -p "$CACHE/node"
  cp "$REPO/kcl-bench/children/node/package.json" "$REPO/kcl-bench/children/node/package-lock.json" "$CACHE/node/"
  (cd "$CACHE/node" && npm ci --silent --no-audit --no-fund >&2)
fi

echo "[bench] cargo build --release (kcl-bench, serde-child, naive-child, examples/byte_count)" >&2
cargo build --release --quiet -p kcl-bench --bins
cargo build --release --quiet -p kcl --example byte_count

DRIVER=$REPO/target/release/kcl-bench
declare -A CHILD=(
  [kcl]="$REPO/target/release/examples/byte_count"
  [amazon_kclpy]="env PYTHONPATH=$CACHE/amazon_kclpy-$KCLPY_VERSION python3 $REPO/kcl-bench/children/kclpy_counter.py"
  [aws-kcl]="env NODE_PATH=$CACHE/node/node_modules node $REPO/kcl-bench/children/awskcl_counter.js"
  [serde]="$REPO/target/release/serde-child"
  [naive]="$REPO/target/release/naive-child"
)
ORDER=(kcl amazon_kclpy aws-kcl serde naive cat)

if [ "$mode" = "--smoke" ]; then
  WORKLOADS=("5 100 200" "2 1000 1024" "2 1 1048576")
  RUNS=1
else
  WORKLOADS=("200 1000 200" "20 10000 1024" "20 1 1048576")
  RUNS=${KCL_BENCH_RUNS:-5}
fi

results=$OUT/results.jsonl
: > "$results"
for workload in "${WORKLOADS[@]}"; do
  read -r batches records payload <<<"$workload"
  echo "[bench] workload: $batches batches x $records records x $payload bytes" >&2
  shape=(--batches "$batches" --records "$records" --payload "$payload")
  session=$OUT/session-$batches-$records-$payload.jsonl
  "$DRIVER" "${shape[@]}" --write-session "$session"
  # Interleaved runs, child after child, so a noisy moment hits all children alike.
  for run in $(seq 1 "$RUNS"); do
    for child in "${ORDER[@]}"; do
      if [ "$child" = cat ]; then
        line=$("$DRIVER" "${shape[@]}" --pipe)
      else
        # shellcheck disable=SC2086 # the child's command line is split on purpose
        line=$("$DRIVER" "${shape[@]}" -- ${CHILD[$child]})
      fi
      echo "{\"child\":\"$child\",\"pair\":$run,\"mode\":\"pipe\",${line#\{}" >> "$results"
      if [ "$child" != cat ]; then
        # shellcheck disable=SC2086
        line=$("$DRIVER" "${shape[@]}" --from-file "$session" -- ${CHILD[$child]})
        echo "{\"child\":\"$child\",\"pair\":$run,${line#\{}" >> "$results"
      fi
      echo "[bench]   $child run $run ok" >&2
    done
  done
  rm -f "$session" "$session.empty"
done

if [ "$mode" = "--smoke" ]; then
  python3 "$REPO/scripts/bench_report.py" --check "$results"
else
  # The producer section (scripts/bench_producer.sh) and the native-engine one
  # (scripts/bench_native.sh) are carried over.
  python3 "$REPO/scripts/bench_report.py" "$results" \
    | python3 "$REPO/scripts/bench_producer.py" --carry "$REPO/BENCHMARKS.md" \
    | python3 "$REPO/scripts/bench_native.py" --carry "$REPO/BENCHMARKS.md" > "$OUT/BENCHMARKS.md"
  mv "$OUT/BENCHMARKS.md" "$REPO/BENCHMARKS.md"
  echo "[bench] wrote BENCHMARKS.md" >&2
fi
