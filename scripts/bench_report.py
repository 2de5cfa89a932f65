#!/usr/bin/env python3
"""Turns the raw results of scripts/bench.sh (one JSON object per run) into BENCHMARKS.md, or,
with --check, verifies a smoke run (every child handled every record and checkpointed each
batch's last record) and prints a `N passed, N failed` line."""
import json
import platform
import statistics
import sys
from collections import defaultdict
from datetime import datetime, timezone

CHILDREN = ["kcl", "amazon_kclpy", "aws-kcl", "serde", "naive", "cat"]
LABEL = {
    "kcl": "kcl (examples/byte_count)",
    "amazon_kclpy": "amazon_kclpy 3.2.0 (Python)",
    "aws-kcl": "aws-kcl 2.3.2 (Node.js)",
    "serde": "typed serde_json, borrowed strings, reused buffers (Rust)",
    "naive": "naive serde_json::Value child, records cloned (Rust)",
    "cat": "`cat > /dev/null` (reads through the default 64 KiB pipe, no protocol)",
}


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def workload_of(r):
    return (r["batches"], r["records_per_batch"], r["payload_bytes"])


def mode_of(r):
    return r.get("mode", "pipe")


def check(rows):
    passed = failed = 0
    children = {r["child"] for r in rows}
    # Every child but `cat` runs both ways on every workload.
    for w in sorted({workload_of(r) for r in rows}):
        for child in children - {"cat"}:
            for mode in ("pipe", "file"):
                if not any(workload_of(r) == w and r["child"] == child and mode_of(r) == mode for r in rows):
                    print(f"FAIL {child} {w}: no {mode} run")
                    failed += 1
    for r in rows:
        expected = r["batches"] * r["records_per_batch"]
        ok = r["records"] == expected and (r["child"] == "cat" or r["checkpoints"] >= r["batches"])
        print(f"{'PASS' if ok else 'FAIL'} {r['child']} {mode_of(r)} {workload_of(r)}: {r['records']} records, {r['checkpoints']} checkpoints")
        passed, failed = passed + ok, failed + (not ok)
    print(f"bench smoke: {passed} passed, {failed} failed")
    return failed == 0


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}"


def paired(mine, base, key, f):
    """f(my value, base value) run by run (same pair), then the median."""
    base = {r["pair"]: r for r in base}
    return median(f(r[key], base[r["pair"]][key]) for r in mine
                  if r["pair"] in base and r.get(key) and base[r["pair"]].get(key))


def report(rows):
    by = defaultdict(list)
    for r in rows:
        by[(workload_of(r), r["child"], mode_of(r))].append(r)
    workloads = sorted({workload_of(r) for r in rows}, key=lambda w: (w[2], -w[1]))
    runs = max(len(v) for v in by.values())
    out = []
    out.append("# Benchmarks\n")
    out.append(f"Written by `scripts/bench_report.py` from `bash scripts/bench.sh` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
               f"{machine()}. Each figure is the median of {runs} runs; children ran interleaved (one run of each, both ways, then "
               "the next), and ratios are taken run by run, then the median. Every child decodes every payload, counts it, and "
               "checkpoints at the last record of each batch; every run checks each checkpoint is at that record.\n")
    out.append("Each child is measured two ways:\n")
    out.append("- **From a file** (stable): the workload's daemon side, recorded once per workload by `kcl-bench --write-session` "
               "(`initialize`, each Jackson-shaped `processRecords` line with 56-digit sequence numbers followed by the reply to "
               "its checkpoint, `leaseLost`), is the child's stdin; its stdout goes to a file that is judged afterwards. No pipe, "
               "no driver, no scheduler between them: **CPU ns/record** is the child's user + system CPU from `wait4` (the "
               "kernel's accounting) minus what the same child used on an empty session (start-up, an interpreter), over the "
               "records; **peak RSS** is `ru_maxrss`. These figures move by a few per cent between runs and hours.\n")
    out.append("- **Through a pipe** (not stable): the driver (`kcl-bench`, compiled Rust) plays the daemon, one action at a "
               "time, answering each checkpoint and awaiting each status. Records/s and CPU per record here are dominated by "
               "pipe wake-ups and scheduling on this 2-vCPU virtual machine and swing up to about 3x between hours, so "
               "throughput is given as a **fraction of `cat`** (the same lines read into `/dev/null`, no protocol) measured in the same run, "
               "pair by pair: `cat` reads the same lines into `/dev/null` as fast as the pipe takes them, with no protocol and "
               "no wait for a status, through the pipe as the daemon makes it (64 KiB). The kcl child enlarges its pipe to "
               "256 KiB (below), which is how it can pass `cat`: fewer wake-ups per batch for it and for the writer. Context switches are the child's and the driver's per batch, from the first batch to "
               "the last status.\n")
    for w in workloads:
        batches, records, payload = w
        line = max(r.get("largest_line_bytes", 0) for (ww, _, _), rs in by.items() if ww == w for r in rs)
        out.append(f"\n## {batches} batches x {records:,} records x {payload:,} B (lines of {line / 1e6:.2f} MB)\n")
        out.append("| child | CPU ns/record, from file | peak RSS from file (KiB) | CPU ÷ typed serde's (file) | CPU ÷ amazon_kclpy's (file) "
                   "| records/s, pipe | fraction of `cat` | CPU ns/record, pipe | switches/batch, child + driver | start-up (ms) |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for child in CHILDREN:
            file_rows = by.get((w, child, "file"), [])
            pipe_rows = by.get((w, child, "pipe"), [])
            if not file_rows and not pipe_rows:
                continue
            share = lambda mine, base: mine / base if base > 0 else None
            vs_serde = paired(file_rows, by.get((w, "serde", "file"), []), "cpu_ns_per_record", share)
            vs_kclpy = paired(file_rows, by.get((w, "amazon_kclpy", "file"), []), "cpu_ns_per_record", share)
            of_cat = paired(pipe_rows, by.get((w, "cat", "pipe"), []), "records_per_second", lambda a, b: a / b)
            switches = median(
                (r["child_context_switches"] + r["driver_context_switches"]) / r["batches"]
                for r in pipe_rows if r.get("child_context_switches") is not None and r.get("driver_context_switches") is not None)
            out.append(
                f"| {LABEL[child]} "
                f"| {fmt(median(r['cpu_ns_per_record'] for r in file_rows))} "
                f"| {fmt(median(r['peak_rss_kib'] for r in file_rows))} "
                f"| {fmt(vs_serde, 2) if vs_serde and child != 'serde' else '—'} "
                f"| {fmt(vs_kclpy, 3) if vs_kclpy and child != 'amazon_kclpy' else '—'} "
                f"| {fmt(median(r['records_per_second'] for r in pipe_rows))} "
                f"| {fmt(of_cat, 2) if of_cat and child != 'cat' else '—'} "
                f"| {fmt(median(r.get('cpu_ns_per_record') for r in pipe_rows))} "
                f"| {fmt(switches, 1)} "
                f"| {fmt(median(r.get('startup_ms') for r in pipe_rows), 2)} |"
            )
    out.append("\n## Targets\n")
    out.append("Stable figures (from a file):\n")
    out.append("| target | measured | met |")
    out.append("|---|---|---|")

    def m(w, child, mode, key):
        return median(r.get(key) for r in by.get((w, child, mode), []))

    w1 = next((w for w in workloads if w == (200, 1000, 200)), None)
    w2 = next((w for w in workloads if w == (20, 10000, 1024)), None)
    rows_t = []
    if w1:
        cpu = m(w1, "kcl", "file", "cpu_ns_per_record")
        if cpu is not None:
            rows_t.append(("≤ 150 ns of child CPU per 200 B record, from a file", f"{cpu:.0f} ns", cpu <= 150))
        rss = m(w1, "kcl", "file", "peak_rss_kib")
        if rss is not None:
            rows_t.append(("peak RSS ≤ 3 MiB on 1,000 x 200 B", f"{rss / 1024:.2f} MiB", rss <= 3 * 1024))
    if w2:
        rss = m(w2, "kcl", "file", "peak_rss_kib")
        line = max(r["largest_line_bytes"] for r in by[(w2, "kcl", "pipe")])
        if rss is not None:
            rss *= 1024
            rows_t.append(("peak RSS ≤ 1.3x the largest line (10,000 x 1 KB)", f"{rss / line:.2f}x ({rss / 2**20:.1f} MiB for {line / 2**20:.1f} MiB lines)", rss <= 1.3 * line))
    for name, value, ok in rows_t:
        out.append(f"| {name} | {value} | {'yes' if ok else '**no**'} |")
    out.append("\nFigures through the pipe (they depend on the hour; the ratios are taken within each run):\n")
    out.append("| target | measured | met |")
    out.append("|---|---|---|")
    rows_t = []

    def ratio(w, child, other):
        return paired(by.get((w, child, "pipe"), []), by.get((w, other, "pipe"), []), "records_per_second", lambda a, b: a / b)

    if w1:
        rps = m(w1, "kcl", "pipe", "records_per_second")
        rows_t.append(("≥ 2.5 M records/s on 1,000 x 200 B batches", f"{rps / 1e6:.2f} M/s ({ratio(w1, 'kcl', 'cat'):.2f} of `cat`)", rps >= 2.5e6))
        r = ratio(w1, "kcl", "amazon_kclpy")
        rows_t.append(("≥ 12x amazon_kclpy (same workload)", f"{r:.1f}x" if r else "—", bool(r and r >= 12)))
        r = ratio(w1, "kcl", "naive")
        rows_t.append(("≥ 3.5x the naive serde_json child", f"{r:.2f}x" if r else "—", bool(r and r >= 3.5)))
        st = m(w1, "kcl", "pipe", "startup_ms")
        rows_t.append(("start-up to first status ≤ 3 ms", f"{st:.2f} ms", st <= 3))
    if w2:
        mbs = m(w2, "kcl", "pipe", "protocol_mb_per_second")
        rows_t.append(("≥ 1.2 GB/s of protocol on 10,000 x 1 KB", f"{mbs / 1000:.2f} GB/s ({ratio(w2, 'kcl', 'cat'):.2f} of `cat`)", mbs >= 1200))
    for name, value, ok in rows_t:
        out.append(f"| {name} | {value} | {'yes' if ok else '**no**'} |")
    out.append(WHERE_TIME_GOES)
    return "\n".join(out) + "\n"


WHERE_TIME_GOES = """
## Where the time and memory go

Profiled with `perf record -g` of `examples/byte_count` reading the 1,000 x 200 B session from a file (samples of
the child alone, user and kernel):

| | share of the child's samples | per record |
|---|---:|---:|
| kernel: copying the file into the read buffer (`_copy_to_iter`; from a pipe it is the same copy) | 24% | ~45 ns |
| the line scan (`next_incoming`: the shape check, field offsets, the sequence-number and key checks) | 21% | ~40 ns |
| SIMD base64 (`base64_simd` AVX2 and its scalar tail) | 15% | ~28 ns |
| building the records (`decode_in_place`: one atomic increment of the line's `Arc` per record, the copy of each payload from the scratch array, the 56-digit sequence number stored inline) | 11% | ~21 ns |
| `memchr` (the newline, then each string's closing quote), `memmove` | 10% | ~18 ns |
| clearing fresh pages (`clear_page_erms`), the handler loop and dropping the records (one atomic decrement each) | 7% | ~13 ns |

- **Before this issue** (the binary of the commit before it, on the same file, 5 runs interleaved with the current
  one, medians): 256 ns per record and 3,216 KiB peak, against 188 ns and 3,076 KiB. The profile then had the sequence-number
  check byte by byte (an early-exit `all`, which does not vectorise) and `from_utf8` on every key and sequence
  number (9%), `str::parse` of integers (8%), and two copies of every position (the first pass kept a 120-byte
  field record per record beside the 128-byte record). Now the checks are branch-free folds (they vectorise),
  UTF-8 is checked only for keys holding a byte above 0x7f, integers are parsed by hand (with the same
  strictness: no leading zeros, no overflow, else the serde path decides), and the first pass keeps 48 bytes
  per record (`u32` offsets; lines of 4 GiB and more go to the serde path). The fast path and the serde path
  still agree on every crafted line and in the `scan_vs_serde` fuzz target.
- **The distance to 150 ns** is the kernel's copy (~45 ns, a floor for any child that reads its input) plus base64
  (~28 ns): what is left for the scan and the records is ~115 ns against ~77 ns allowed. What remains to cut is
  the per-record atomic reference count (the records share the line's buffer through an `Arc`: a change of
  `Record`'s ownership, kept for a later step) and a second pass over the base64 text.
- **Through the pipe**, the child's CPU per record is higher than from a file and varies with the hour: it adds the
  wake-ups and the scheduler. The child enlarges the daemon's pipe from 64 KiB to 256 KiB (`F_SETPIPE_SZ`,
  `KCL_PIPE_SIZE`). Measured with the driver on 1,000 x 200 B (3 runs each, interleaved, same hour): context
  switches per batch, child and driver together, 18.0 at 64 KiB, 6.0 at 256 KiB, 4.0 at 1 MiB; child CPU per
  record 174, 170, 171 ns; driver CPU per record 96, 87, 91 ns; records/s within the runs' spread. 1 MiB is not
  the default because each pipe's capacity counts against the user's pipe quota (see README, Performance).
  With the real daemon (`bench_native --engines daemon`, 40,000 records of 8 bytes in 8 shards, `file_sink` children,
  2 runs of each alternating, 2026-12-02): the JVM's own CPU from start to the last record was 4.08 and 3.99 s with
  `KCL_PIPE_SIZE=0`, 4.36 and 4.19 s with 256 KiB; from the first record to the last, 0.02 and 0.11 s against 0.13
  and 0.07 s. That workload sends about 10 MB through the pipes in all and the JVM's CPU is its start-up and its
  polling, so no difference shows at `/proc`'s 10 ms resolution; a run that loads the daemon's pipes needs far
  more data than kinesis-local takes in a session (40,000 puts take 60 to 95 s).
- **Memory**: on 1,000 x 200 B, the child's peak is ~2.3 MiB before any data (empty session): libc's resident
  pages (~1.25 MiB, shared with every process), the binary (~0.65 MiB), the loader and libgcc_s (~0.3 MiB); the
  data adds the line (0.46 MB), its records and the read buffer. The 3 MiB target is missed by that fixed
  part: a static, smaller binary would be what closes it. On 15.6 MB lines the records share the line buffer (no
  second copy of the payloads), and the first pass's 48-byte field records bring the peak to about 1.27x the line
  (the commit before this issue, same file, 3 runs interleaved: 20,368 KiB, 1.33x, against 19,540 KiB, 1.28x).
"""

if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--check":
        sys.exit(0 if check(load(args[1])) else 1)
    sys.stdout.write(report(load(args[0])))
