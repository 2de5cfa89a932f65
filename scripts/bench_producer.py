#!/usr/bin/env python3
"""The producer section of BENCHMARKS.md, from the JSON lines of producer-bench (scripts/bench_producer.sh).

    bench_producer.py RESULTS.jsonl BENCHMARKS.md    replace the producer section (or append it)
    bench_producer.py --carry OLD.md < NEW.md         print NEW.md with OLD.md's producer section
                                                      (scripts/bench.sh keeps it when it rewrites the file)
"""
import datetime
import json
import platform
import re
import statistics
import sys

BEGIN, END = "<!-- producer:begin -->", "<!-- producer:end -->"
BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
NAMES = {
    "put_record": "`PutRecord` one at a time (what `kcl put` did before the producer)",
    "put_records": "`PutRecords` of 500 entries, one call after another (a plain loop's ceiling)",
    "producer": "`kcl_producer::Producer`, defaults, `send` one record at a time",
    "producer_same_key": "the same with same-key KPL aggregation, over 10 partition keys",
    "producer_shard_map": "the same with shard-map KPL aggregation, over all the keys",
}


def cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def section(rows):
    by_run = {}
    for row in rows:
        by_run.setdefault(row["run"], {})[row["row"]] = row
    runs = sorted(by_run)
    first = rows[0]

    def median(name, key="records_per_second"):
        return statistics.median(by_run[r][name][key] for r in runs)

    def ratio(a, b):
        return statistics.median(
            by_run[r][a]["records_per_second"] / by_run[r][b]["records_per_second"] for r in runs
        )

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "## Producer: records/s against the stub server",
        "",
        f"Written by `scripts/bench_producer.py` from `bash scripts/bench_producer.sh` on {now}, {cpu()}, "
        f"{len(runs)} interleaved runs (one of each row, then the next run); figures are medians and ratios are taken "
        "run by run, then the median. The stub is `kcl_producer::testing::StubServer` (FakeKinesis over HTTP on "
        "127.0.0.1, one write per answer, `TCP_NODELAY`, no faults), in the same process on the same two cores, "
        "driven through the real AWS SDK client. "
        f"{first['shards']} shards, {first['payload']}-byte records, {first['keys']} distinct partition keys; "
        "every row checks that the stub holds each record exactly once.",
        "",
        "| row | records | records/s | PutRecords calls | entries per call |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("put_record", "put_records", "producer", "producer_same_key", "producer_shard_map"):
        row = by_run[runs[0]][name]
        per_call = row["entries"] / row["calls"] if row["calls"] else 0
        calls = "—" if name == "put_record" else f"{row['calls']:,}"
        per = "1" if name == "put_record" else f"{per_call:.0f}"
        lines.append(f"| {NAMES[name]} | {row['records']:,} | {median(name):,.0f} | {calls} | {per} |")
    lines += [
        "",
        f"- Producer vs `PutRecord` one at a time: **{ratio('producer', 'put_record'):.1f}x** (target: at least 50x).",
        f"- Producer vs the plain `PutRecords` loop: **{ratio('producer', 'put_records'):.2f}** of it (target: at least 0.80).",
        f"- Same-key aggregation over 10 keys vs the producer without it: **{ratio('producer_same_key', 'producer'):.1f}x** (target: at least 5x).",
        f"- Shard-map aggregation over {first['keys']:,} keys vs the producer without it: **{ratio('producer_shard_map', 'producer'):.1f}x**.",
        "",
        "These figures are throughput on loopback with a stub that does no real work: they measure the client "
        "side (the SDK's JSON and base64, the producer's bookkeeping) and the stub's parsing, and they swing "
        "with whatever else runs on the machine. The ratios, taken within each run, are the figures to compare.",
        END,
    ]
    return "\n".join(lines)


def replace(text, block):
    if BLOCK.search(text):
        return BLOCK.sub(lambda _: block, text)
    return text.rstrip("\n") + "\n\n" + block + "\n"


def main(args):
    if args and args[0] == "--carry":
        with open(args[1]) as f:
            old = BLOCK.search(f.read())
        new = sys.stdin.read()
        sys.stdout.write(replace(new, old.group(0)) if old else new)
        return 0
    with open(args[0]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    with open(args[1]) as f:
        text = f.read()
    with open(args[1], "w") as f:
        f.write(replace(text, section(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
