#!/usr/bin/env bash
# Soak run: `kcl-bench` plays the daemon for `examples/file_sink` children, with the KCL's rule
# book for checkpoints (kcl_protocol::LeaseCheckpointer, as `kcl run` uses): the stored
# checkpoint is what that judge accepted. 2% of the accepted checkpoint requests are answered with
# ThrottlingException or KinesisClientLibDependencyException instead (nothing stored; half of the
# time the first retry fails too), and once per run every attempt of one checkpoint call is, until
# the child's retry budget (RetryPolicy::default(): 6 attempts) runs out.
#
# Phase 1 (steady): the first half of the batches through one child, no kills; its resident
# memory after 10 batches and at the end of the phase must be flat.
# Phase 2 (kills): the child is killed with SIGKILL every ~3,000 records on average (random points:
# after a status, at a checkpoint request before it is answered, while it handles a batch, after
# the checkpoint was stored but before the reply); a new child gets `initialize` at the stored
# checkpoint and every record after it again, as the daemon does. Then `shardEnded`.
#
# Checks (any failure exits 1):
#   - no checkpoint request refused (a position outside [last checkpoint, largest delivered], or
#     during initialize);
#   - once a batch is answered, the stored checkpoint is its last record (unless the child gave up
#     on that position after its whole retry budget failed; the next batch's must cover it);
#   - every injected retryable error is retried at the same position: a child gives up only after
#     a whole budget of attempts (and the budget did run out once);
#   - restarts make progress (20 kills in a row without it end the run) and SHARD_END is stored
#     at the end;
#   - from the sink file, cut per child process: no record lost (every record 1..N written by some
#     child); each child wrote only records it was delivered, each once, and every record it asked
#     to checkpoint; duplicates (> 0 with kills) only of records a killed child had written past
#     the stored checkpoint at its kill;
#   - memory flat over the steady phase.
#
#   bash scripts/soak.sh            2,000 batches x 1,000 records (2 M records; 1 M in phase 2)
#   bash scripts/soak.sh --short    200 batches x 1,000 records (CI)
# KCL_SOAK_SEED=N replays the driver's choices of a run (the seed is printed; random by default);
# KCL_SOAK_ERROR_PERCENT (default 2) and
# KCL_SOAK_KILL_EVERY (records, default 3000) change the injections.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
batches=2000 limit=900
[ "${1:-}" = "--short" ] && batches=200 limit=300
records=1000
steady=$((batches / 2))
percent=${KCL_SOAK_ERROR_PERCENT:-2}
kill_every=${KCL_SOAK_KILL_EVERY:-3000}
seed=${KCL_SOAK_SEED:-$(( (RANDOM << 15) | RANDOM ))}
target=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet -p kcl-bench --bin kcl-bench
cargo build --release --quiet -p kcl --example file_sink
echo "[soak] seed $seed: $batches batches x $records records ($steady without kills, then a kill every ~$kill_every records), $percent% of checkpoint replies failing" >&2
set +e
RUST_LOG=error timeout "$limit" "$target/release/kcl-bench" --batches "$batches" --records "$records" --payload 32 \
  --soak-error-percent "$percent" --seed "$seed" --kill-every "$kill_every" --steady-batches "$steady" \
  --sink-file "$work/out/records-shardId-000000000000.tsv" \
  -- "$target/release/examples/file_sink" "$work/out" >"$work/report.json"
rc=$?
set -e
if [ ! -s "$work/report.json" ]; then
  echo "FAIL soak: kcl-bench exited with $rc before its report (124: still running after $limit s; seed $seed)"
  exit 1
fi
python3 - "$work/out/records-shardId-000000000000.tsv" "$work/report.json" <<'PY'
import array, json, os, sys
sink, report = sys.argv[1], json.load(open(sys.argv[2]))
def times(n, what):
    return f"{n} {what}{'' if n == 1 else 's'}"
total, procs = report["records"], report["processes"]
data = open(sink, "rb").read() if os.path.exists(sink) else b""

# Cut the sink file per child process (each appends after the previous one died) and replay it.
count = bytearray(total + 1)           # writes per record (saturating)
writer = array.array("i", [-1]) * (total + 1)  # the last process that wrote it
torn = malformed = 0
strays, twice, unclaimed, bad_duplicates = [], [], [], []
for i, p in enumerate(procs):
    end = procs[i + 1]["sink_offset"] if i + 1 < len(procs) else len(data)
    lines = data[p["sink_offset"]:end].split(b"\n")
    if lines[-1]:
        torn += 1                      # killed in the middle of a line: not a written record
    for line in lines[:-1]:
        try:
            n = int(line.split(b"\t", 2)[1][-16:])
        except (IndexError, ValueError):
            malformed += 1
            continue
        if not p["start"] < n <= p["delivered"]:
            strays.append(f"process {i} wrote record {n}, delivered {p['start'] + 1}..={p['delivered']}")
            continue
        if writer[n] == i:
            twice.append(f"process {i} wrote record {n} twice")
            continue
        if writer[n] >= 0:
            q = procs[writer[n]]
            if q["killed"] is None or n <= q["stored"]:
                bad_duplicates.append(f"record {n} written by process {writer[n]} (stored checkpoint "
                                      f"{q['stored']} at its end, killed: {q['killed']}) and again by process {i}")
        writer[n] = i
        count[n] = min(255, count[n] + 1)
    for n in range(p["start"] + 1, p["requested"] + 1):
        if writer[n] != i:
            unclaimed.append(f"process {i} asked to checkpoint record {p['requested']} but had not written record {n}")
            break

unique = sum(1 for c in count[1:] if c)
lost = total - unique
duplicates = sum(c - 1 for c in count[1:] if c > 1)
duplicated = sum(1 for c in count[1:] if c > 1)
kills, r = report["kills"], report
kinds = (f"{r['kills_after_status']} after a status, {r['kills_before_checkpoint_answer']} before a checkpoint "
         f"answer, {r['kills_while_handling']} while handling, {r['kills_after_checkpoint_stored']} after a stored checkpoint")
rss10, rss_end = r["rss_after_10_batches_kib"], r["rss_at_end_of_steady_kib"]
checks = [
    ("no checkpoint request refused by the judge (LeaseCheckpointer)", r["refused_violations"] == 0,
     f"{r['checkpoints']} requests: {r['stored']} stored, {r['unchanged']} unchanged, {r['refused']} refused"),
    ("once a batch is answered the stored checkpoint is its last record", r["not_at_last_violations"] == 0,
     f"{r['batches_judged']} batches judged, {r['batches_given_up']} of them given up after the retry budget (covered by the next batch)"),
    ("every injected retryable error retried at the same position",
     r["retry_violations"] == 0 and r["injected_errors"] > 0 and r["retry_budget_exhausted"] > 0,
     f"{r['injected_errors']} injected, {r['retries']} retries, the child's budget of {r['retry_budget']} attempts spent {times(r['retry_budget_exhausted'], 'time')}"),
    ("the run reached the end of the shard and stored SHARD_END",
     r["shard_end_stored"] and r["shard_end_violations"] == 0 and r["progress_violations"] == 0,
     f"{len(procs)} child processes"),
    ("no record lost", lost == 0, f"{unique} of {total} records written by some child, {lost} lost"),
    ("each child wrote what it was delivered, once, and all it asked to checkpoint",
     not (strays or twice or unclaimed or malformed),
     f"{len(strays)} records not delivered to their writer, {len(twice)} written twice by one child, "
     f"{len(unclaimed)} children with a checkpoint past an unwritten record, {malformed} malformed lines, "
     f"{times(torn, 'line')} cut by a kill"),
    ("duplicates only after the stored checkpoint of a killed child, and some with kills",
     not bad_duplicates and (duplicates > 0 or kills == 0),
     f"{duplicates} duplicate writes of {duplicated} records; {kills} kills ({kinds}), {r['restarts']} restarts"),
    ("memory stays flat (steady phase, one child)",
     rss10 is not None and rss_end is not None and rss_end <= rss10 * 1.1 + 256,
     f"RSS {rss10} KiB after 10 batches, {rss_end} KiB after {r['steady_batches']}, peak {r['peak_rss_kib']} KiB"),
]
failed = 0
for name, ok, detail in checks:
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    failed += not ok
for example in r["violations"] + [e for found in (strays, twice, unclaimed, bad_duplicates) for e in found[:3]]:
    print(f"  {example}")
if r["violations"] and len(r["violations"]) < r["refused_violations"] + r["not_at_last_violations"] + \
        r["retry_violations"] + r["shard_end_violations"] + r["progress_violations"]:
    print("  (the first 3 violations of each kind)")
print(f"soak ({total} records, {r['records_delivered']} delivered in {r['batches']} batches, {kills} kills, "
      f"{r['restarts']} restarts, {lost} lost, {duplicates} duplicates, {r['refused']} refused, "
      f"{r['seconds']:.1f} s, seed {r['seed']}): {len(checks) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
