#!/usr/bin/env bash
# Soak run: millions of records through one examples/file_sink child, driven by kcl-bench as the
# daemon, with random checkpoint errors (ThrottlingException, KinesisClientLibDependencyException)
# in the replies. Checks that every record reached the sink (none lost; duplicates counted) and
# reports the child's resident memory after 10 batches and at the end (it must stay flat).
#
#   bash scripts/soak.sh            2,000 batches x 1,000 records (2 M records), 2% failing replies
#   bash scripts/soak.sh --short    100 batches x 1,000 records (CI)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
batches=2000
[ "${1:-}" = "--short" ] && batches=100
records=1000
percent=${KCL_SOAK_ERROR_PERCENT:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet -p kcl-bench --bin kcl-bench
cargo build --release --quiet -p kcl --example file_sink
echo "[soak] $batches batches x $records records, $percent% of checkpoint replies failing" >&2
report=$(RUST_LOG=error ./target/release/kcl-bench --batches "$batches" --records "$records" --payload 32 \
  --soak-error-percent "$percent" --seed "${KCL_SOAK_SEED:-7}" -- ./target/release/examples/file_sink "$work/out")
echo "[soak] $report" >&2
python3 - "$work/out" "$((batches * records))" "$report" <<'PY'
import glob, json, sys
out, expected, report = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
seen, lines = set(), 0
for path in glob.glob(f"{out}/records-*.tsv"):
    with open(path) as f:
        for line in f:
            lines += 1
            seen.add(int(line.split("\t")[1][-16:]))
lost = expected - len(seen & set(range(1, expected + 1)))
checks = [
    ("every record handled", lost == 0, f"{len(seen)} of {expected} unique, {lost} lost, {lines - len(seen)} duplicates"),
    ("checkpoint errors were injected and survived", report["injected_checkpoint_errors"] > 0,
     f"{report['injected_checkpoint_errors']} injected over {report['checkpoints']} checkpoint requests"),
    ("memory stays flat", report["rss_at_end_kib"] <= report["rss_after_10_batches_kib"] * 1.1 + 256,
     f"RSS {report['rss_after_10_batches_kib']} KiB after 10 batches, {report['rss_at_end_kib']} KiB at the end, peak {report['peak_rss_kib']} KiB"),
]
failed = 0
for name, ok, detail in checks:
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    failed += not ok
print(f"soak ({report['records']} records in {report['seconds']:.1f} s): {len(checks) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
