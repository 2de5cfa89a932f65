#!/usr/bin/env python3
"""The native-engine sections of BENCHMARKS.md, from the JSON lines of bench_native (scripts/bench_native.sh).

Rows with "child": "rust" compare the daemon (file_sink children) with the native engine (in-process
processors); rows with "child": "kclpy" compare the daemon with `kcl daemon --native`, both running the
same amazon_kclpy children (scripts/e2e/kclpy_sink.py). Each kind present gets its own section.

    bench_native.py RESULTS.jsonl BENCHMARKS.md [COMMIT]   replace the sections of the kinds in RESULTS (or append
                                                           them); the text of KCL_BENCH_NATIVE_NOTE, if set, ends them
    bench_native.py --check RESULTS.jsonl                  the smoke check: every engine of each kind, lost 0,
                                                           every record handled
    bench_native.py --carry OLD.md < NEW.md                print NEW.md with OLD.md's native sections
                                                           (scripts/bench.sh keeps them when it rewrites the file)
"""
import datetime
import json
import os
import platform
import re
import sys

BEGIN, END = "<!-- native:begin -->", "<!-- native:end -->"
BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
ML_BEGIN, ML_END = "<!-- native-daemon:begin -->", "<!-- native-daemon:end -->"
ML_BLOCK = re.compile(re.escape(ML_BEGIN) + r".*?" + re.escape(ML_END), re.S)
# The engines each kind of child is measured under.
ENGINES = {"rust": {"daemon", "native"}, "kclpy": {"daemon", "native-daemon"}}


def cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def mib(kib):
    return f"{kib / 1024:,.1f}"


def kinds(rows):
    """The rows by kind of child (rows of an older bench_native have no "child": rust)."""
    by = {}
    for row in rows:
        by.setdefault(row.get("child", "rust"), []).append(row)
    return by


def check(rows):
    """The smoke check: a row per engine of each kind, every record handled once at least, none lost."""
    problems = []
    by = kinds(rows)
    if not by:
        problems.append("no results")
    for child, some in by.items():
        engines = {row["engine"] for row in some}
        if engines != ENGINES.get(child):
            problems.append(f"{child} children: engines measured {sorted(engines)}, wanted {sorted(ENGINES.get(child, []))}")
    for row in rows:
        if row["lost"] != 0 or row["handled"] != row["records"] or row["put"] != row["records"]:
            problems.append(
                f"{row['engine']}: put={row['put']} handled={row['handled']} lost={row['lost']} "
                f"of {row['records']}"
            )
    return problems


def section(rows, commit, note=""):
    by = {row["engine"]: row for row in rows}
    d, n = by["daemon"], by["native"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def ratio(key):
        return n[key] / d[key] if d[key] else float("nan")

    def whole(row):
        return row["records"] / row["last_record_s"]

    def window(row):
        return row["last_record_s"] - row["first_record_s"]

    def fold(native, daemon):
        if native <= 0 or daemon <= 0:
            return "n/a"
        return f"{daemon / native:.1f}x less" if native <= daemon else f"{native / daemon:.1f}x more"

    lines = [
        BEGIN,
        "## Native engine vs the KCL 3.1.3 daemon (issue 15)",
        "",
        f"Written by `scripts/bench_native.py` from `bash scripts/bench_native.sh` on {now}, commit `{commit}`, "
        f"{cpu()}, {os.cpu_count()} cores (`nproc`), Linux {platform.release()}. One run: "
        f"{d['records']:,} plain records (8-byte payloads, `b-000000` on) in a {d['shards']}-shard kinesis-local stream (moto_server for "
        "DynamoDB), then each engine as its own application (its own lease table, reading from TRIM_HORIZON), one "
        "after the other, from the same properties file with the harness's settings "
        f"(`scripts/bench_native.sh` adds `{d['properties']}`) and the same processor: the daemon (a JVM, "
        f"`{d['java_opts']}`, with one `examples/file_sink` child per shard) and `examples/native_file_sink` (one "
        f"process, every shard a thread). Both binaries are {d['profile']} builds. Every record is written to the "
        "sink files and checkpointed at each batch's last record; the ledger checks every record was handled.",
        "",
        "| | daemon + children | native | native / daemon |",
        "|---|---:|---:|---:|",
        f"| processes (at most) | {d['processes']} | {n['processes']} | |",
        f"| memory, PSS summed, peak (MiB) | {mib(d['pss_peak_kib'])} | {mib(n['pss_peak_kib'])} | {ratio('pss_peak_kib'):.3f} |",
        f"| memory, PSS summed, steady (MiB) | {mib(d['pss_steady_kib'])} | {mib(n['pss_steady_kib'])} | {ratio('pss_steady_kib'):.3f} |",
        f"| memory, RSS summed, peak (MiB) | {mib(d['rss_peak_kib'])} | {mib(n['rss_peak_kib'])} | {ratio('rss_peak_kib'):.3f} |",
        f"| memory, RSS summed, steady (MiB) | {mib(d['rss_steady_kib'])} | {mib(n['rss_steady_kib'])} | {ratio('rss_steady_kib'):.3f} |",
        f"| start to first `initialize` (s) | {d['first_initialize_s']:.2f} | {n['first_initialize_s']:.2f} | {ratio('first_initialize_s'):.3f} |",
        f"| start to first record handled (s) | {d['first_record_s']:.2f} | {n['first_record_s']:.2f} | {ratio('first_record_s'):.3f} |",
        f"| start to last record handled (s) | {d['last_record_s']:.2f} | {n['last_record_s']:.2f} | {ratio('last_record_s'):.3f} |",
        f"| records/s, first to last record handled | {d['records_per_s']:,.0f} | {n['records_per_s']:,.0f} | {ratio('records_per_s'):.2f} |",
        f"| records/s, start to last record handled | {whole(d):,.0f} | {whole(n):,.0f} | {whole(n) / whole(d):.2f} |",
        f"| CPU (user + system), start to last record (s) | {d['cpu_to_last_s']:.2f} | {n['cpu_to_last_s']:.2f} | {ratio('cpu_to_last_s'):.3f} |",
        f"| CPU per record, start to last record (µs) | {d['cpu_us_per_record']:,.1f} | {n['cpu_us_per_record']:,.1f} | {ratio('cpu_us_per_record'):.3f} |",
        f"| CPU per record, first to last record (µs) | {d['cpu_us_per_record_flowing']:,.1f} | {n['cpu_us_per_record_flowing']:,.1f} | {ratio('cpu_us_per_record_flowing'):.3f} |",
        f"| ledger: put / handled / duplicated / lost | {d['put']:,} / {d['handled']:,} / {d['duplicated']:,} / {d['lost']} "
        f"| {n['put']:,} / {n['handled']:,} / {n['duplicated']:,} / {n['lost']} | |",
        f"| SIGTERM to exit (s, exit code) | {d['sigterm_to_exit_s']:.1f} ({d['exit_code']}) | {n['sigterm_to_exit_s']:.1f} ({n['exit_code']}) | |",
        f"| load average (1, 5, 15 min) before → after | {d['load_before']} → {d['load_after']} | {n['load_before']} → {n['load_after']} | |",
        "",
        "Goals of issue 15, from this run:",
        "",
        f"- Memory at most 1/10 of the daemon plus its children: native / daemon = **{ratio('pss_steady_kib'):.3f}** "
        f"(PSS, steady; {ratio('pss_peak_kib'):.3f} at peak; RSS: {ratio('rss_steady_kib'):.3f}): "
        f"{'met' if ratio('pss_steady_kib') <= 0.1 and ratio('pss_peak_kib') <= 0.1 else '**not met**'}.",
        f"- Start to first record handled under 2 s (the daemon: about 40 s): **{n['first_record_s']:.2f} s** against "
        f"{d['first_record_s']:.2f} s: {'met' if n['first_record_s'] < 2 else '**not met**'}.",
        f"- CPU per record: the native engine uses **{fold(n['cpu_us_per_record'], d['cpu_us_per_record'])}** than the "
        f"daemon and its children from start to the last record; from the first record handled to the last, "
        f"{fold(n['cpu_us_per_record_flowing'], d['cpu_us_per_record_flowing'])} (see the windows below).",
        f"- Records/s end to end: **{whole(n) / whole(d):.2f}x** the daemon's from start to the last record; "
        f"{ratio('records_per_s'):.2f}x from the first record handled to the last.",
        "",
        f"The first-to-last figures cover {window(d):.2f} s for the daemon and {window(n):.2f} s for the native engine. "
        "They probably favour the engine that starts slowly: the KCL's polling reader fetches ahead of its processor "
        "(and one `GetRecords` of up to `maxRecords` can hold a whole shard of this stream), so what it fetched while "
        f"its shards were starting (its first record came {d['first_record_s'] - d['first_initialize_s']:.1f} s after its "
        f"first `initialize`; the native engine's {n['first_record_s'] - n['first_initialize_s']:.1f} s) is already in "
        "memory, and such a window measures the children writing records, not the stream being read. The "
        "start-to-last figures are the ones to compare.",
        "",
        "How it is measured (`kcl-e2e/src/bin/bench_native.rs`, `kcl-e2e/src/meter.rs`): the process tree of the engine "
        "(the JVM and its live descendants; the native process) is read from `/proc` every 250 ms and at the first and "
        "last record: memory is the sum of `Pss:` (shared pages divided among the processes mapping them: the eight "
        "children share one binary) and of `Rss:` (shared pages counted in each) from `smaps_rollup`; steady is the median "
        "of the samples from the first record handled to the last; CPU is `utime + stime` of every process of the tree, "
        "10 ms resolution. Times are from spawning the engine: to the first `initialize` in the sink's `events.tsv`, and "
        "to the first and the last record line in the sink, polled every 20 ms (the last: when the ledger finds every "
        "record). Records/s is N over the time from the first record handled to the last, or from the start. The streams' reads are "
        "kinesis-local's, the same for both engines, so records/s says as much about the emulator as about the engines; "
        "the daemon's start includes the JVM's.",
        "",
        "These are the figures of a single run; the load averages include the emulators and the engine measured.",
    ]
    if note:
        lines += ["", note]
    lines.append(END)
    return "\n".join(lines)


def multilang_section(rows, commit, note=""):
    """`kcl daemon --native` against the Java daemon, the same amazon_kclpy children under both."""
    by = {row["engine"]: row for row in rows}
    d, n = by["daemon"], by["native-daemon"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def ratio(key):
        return n[key] / d[key] if d[key] else float("nan")

    def whole(row):
        return row["records"] / row["last_record_s"]

    lines = [
        ML_BEGIN,
        "## `kcl daemon --native` vs the KCL 3.1.3 daemon, amazon_kclpy children (issue 16)",
        "",
        f"Written by `scripts/bench_native.py` from `bash scripts/bench_native.sh` on {now}, commit `{commit}`, "
        f"{cpu()}, {os.cpu_count()} cores (`nproc`), Linux {platform.release()}. The same run as the section "
        f"above: {d['records']:,} records in a {d['shards']}-shard kinesis-local stream, each engine its own "
        "application reading from TRIM_HORIZON, one after the other, from the same properties file "
        f"(`{d['properties']}` added). Both run the same children, one process per shard: "
        "`scripts/e2e/kclpy_sink.py`, written with amazon_kclpy (the kclpy-ext 3.1.3 wheel), which writes each "
        "batch to the sink files and checkpoints its last record. The daemon is the JVM "
        f"(`{d['java_opts']}`); `kcl daemon --native` is the `kcl` tool ({n['profile']} build). Memory and CPU "
        "are those of the whole tree: the engine and its eight Python children.",
        "",
        "| | Java daemon + 8 kclpy children | kcl daemon --native + 8 kclpy children | native / Java |",
        "|---|---:|---:|---:|",
        f"| processes (at most) | {d['processes']} | {n['processes']} | |",
        f"| memory, PSS summed, peak (MiB) | {mib(d['pss_peak_kib'])} | {mib(n['pss_peak_kib'])} | {ratio('pss_peak_kib'):.3f} |",
        f"| memory, PSS summed, steady (MiB) | {mib(d['pss_steady_kib'])} | {mib(n['pss_steady_kib'])} | {ratio('pss_steady_kib'):.3f} |",
        f"| memory, RSS summed, steady (MiB) | {mib(d['rss_steady_kib'])} | {mib(n['rss_steady_kib'])} | {ratio('rss_steady_kib'):.3f} |",
        f"| start to first `initialize` (s) | {d['first_initialize_s']:.2f} | {n['first_initialize_s']:.2f} | {ratio('first_initialize_s'):.3f} |",
        f"| start to first record handled (s) | {d['first_record_s']:.2f} | {n['first_record_s']:.2f} | {ratio('first_record_s'):.3f} |",
        f"| start to last record handled (s) | {d['last_record_s']:.2f} | {n['last_record_s']:.2f} | {ratio('last_record_s'):.3f} |",
        f"| records/s, start to last record handled | {whole(d):,.0f} | {whole(n):,.0f} | {whole(n) / whole(d):.2f} |",
        f"| records/s, first to last record handled | {d['records_per_s']:,.0f} | {n['records_per_s']:,.0f} | {ratio('records_per_s'):.2f} |",
        f"| CPU (user + system), start to last record (s) | {d['cpu_to_last_s']:.2f} | {n['cpu_to_last_s']:.2f} | {ratio('cpu_to_last_s'):.3f} |",
        f"| CPU per record, start to last record (µs) | {d['cpu_us_per_record']:,.1f} | {n['cpu_us_per_record']:,.1f} | {ratio('cpu_us_per_record'):.3f} |",
        f"| CPU per record, first to last record (µs) | {d['cpu_us_per_record_flowing']:,.1f} | {n['cpu_us_per_record_flowing']:,.1f} | {ratio('cpu_us_per_record_flowing'):.3f} |",
        f"| ledger: put / handled / duplicated / lost | {d['put']:,} / {d['handled']:,} / {d['duplicated']:,} / {d['lost']} "
        f"| {n['put']:,} / {n['handled']:,} / {n['duplicated']:,} / {n['lost']} | |",
        f"| SIGTERM to exit (s, exit code) | {d['sigterm_to_exit_s']:.1f} ({d['exit_code']}) | {n['sigterm_to_exit_s']:.1f} ({n['exit_code']}) | |",
        f"| load average (1, 5, 15 min) before → after | {d['load_before']} → {d['load_after']} | {n['load_before']} → {n['load_after']} | |",
        "",
        "Measured as the section above says (`kcl-e2e/src/bin/bench_native.rs --child kclpy --engines "
        "daemon,native-daemon`). The children's own cost (a Python interpreter each) is in both columns; the "
        "difference is the engine's. A single run; the load averages include the emulators.",
    ]
    if note:
        lines += ["", note]
    lines.append(ML_END)
    return "\n".join(lines)


def replace(text, block, pattern=BLOCK):
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    return text.rstrip("\n") + "\n\n" + block + "\n"


def read_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main(args):
    if args and args[0] == "--carry":
        with open(args[1]) as f:
            text = f.read()
        new = sys.stdin.read()
        for pattern in (BLOCK, ML_BLOCK):
            old = pattern.search(text)
            if old:
                new = replace(new, old.group(0), pattern)
        sys.stdout.write(new)
        return 0
    if args and args[0] == "--check":
        rows = read_rows(args[1])
        problems = check(rows)
        for problem in problems:
            print(f"[bench] native smoke: {problem}", file=sys.stderr)
        if not problems:
            print(
                "[bench] native smoke: "
                + ", ".join(f"{r['engine']} handled {r['handled']}/{r['records']} lost 0" for r in rows),
                file=sys.stderr,
            )
        return 1 if problems else 0
    rows = read_rows(args[0])
    problems = check(rows)
    if problems:
        for problem in problems:
            print(f"[bench] native: {problem}", file=sys.stderr)
        return 1
    commit = args[2] if len(args) > 2 else "unknown"
    note = os.environ.get("KCL_BENCH_NATIVE_NOTE", "").strip()
    with open(args[1]) as f:
        text = f.read()
    by = kinds(rows)
    if "rust" in by:
        text = replace(text, section(by["rust"], commit, note))
    if "kclpy" in by:
        text = replace(text, multilang_section(by["kclpy"], commit, note), ML_BLOCK)
    with open(args[1], "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
