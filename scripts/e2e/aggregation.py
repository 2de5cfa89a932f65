"""Scenario 7: KPL-aggregated records through the stream.

kinesis-local stores record data as opaque bytes, so aggregated records (encoded by kpl.py) pass
through unchanged and the KCL inside the daemon de-aggregates them. Each aggregate holds 2-10
user records under one partition key, the Kinesis record's own (the KCL drops user records whose
hash key falls outside the shard). A few plain records are put first, so that plain and
aggregated records share the shards. Half of the aggregates are put before the daemon starts,
half while it runs.

Asserted: each user record reaches the processor once, with the aggregate's sequence number, its
index in the aggregate as sub-sequence number (0..n-1) and the aggregate's partition key; and the
lease of each shard ends at the last aggregate's sequence number with checkpointSubSequenceNumber
equal to the index of its last user record.
"""

import kpl
from context import now_ms, short
from sink import Sink
from stream import Ledger, Put, create_stream, put_entries, put_records

PREFIX = "s7"
AGGREGATES = 60
PLAIN = 20


def _aggregates(first, count):
    """(partition key, [payloads]) for aggregates number first..first+count."""
    out = []
    for i in range(first, first + count):
        size = 2 + i % 9
        out.append((f"pk-{PREFIX}-agg-{i}", [f"{PREFIX}-{i:04d}-{j:02d}" for j in range(size)]))
    return out


def _put_aggregates(kinesis, stream_name, ledger, aggregates, shapes):
    entries = []
    for key, payloads in aggregates:
        entries.append({"Data": kpl.aggregate(key, [p.encode() for p in payloads]), "PartitionKey": key})
        shapes[key] = payloads

    def describe(entry, result):
        key = entry["PartitionKey"]
        return [
            Put(payload, key, result["ShardId"], int(result["SequenceNumber"]), index)
            for index, payload in enumerate(shapes[key])
        ]

    for start in range(0, len(entries), 20):
        put_entries(kinesis, stream_name, entries[start : start + 20], ledger, describe)


def scenario_7(ctx):
    ok_encoder = True
    try:
        kpl.self_check()
    except AssertionError:
        ok_encoder = False
    ctx.check("s7-kpl-encoder-self-check", ok_encoder, "varint vectors and encode/decode round trip")
    stream_name, app = ctx.names(7)
    kinesis = create_stream(ctx.settings, stream_name, 2)
    ledger = Ledger()
    shapes = {}
    put_records(kinesis, stream_name, ledger, PREFIX, 0, PLAIN)
    _put_aggregates(kinesis, stream_name, ledger, _aggregates(0, AGGREGATES // 2), shapes)
    worker = ctx.worker(7, app, stream_name, "s7-worker-1")
    out = Sink(worker.out_dir)
    started = now_ms()
    worker.start()
    ctx.wait_initialized(worker, ledger.shards(), started, 150)
    _put_aggregates(kinesis, stream_name, ledger, _aggregates(AGGREGATES // 2, AGGREGATES - AGGREGATES // 2), shapes)
    result = ctx.wait_handled(ledger, [out], 90)

    # Every user record: right sequence number, sub-sequence number and partition key.
    expected = ledger.snapshot()
    wrong = []
    for d in out.deliveries()[0]:
        put = expected.get(d.payload)
        if put and (d.seq, d.sub, d.partition_key, d.shard) != (put.seq, put.sub, put.partition_key, put.shard):
            wrong.append(f"{d.payload}: got {d.shard}/{d.seq}/{d.sub}/{d.partition_key}")
    user_records = sum(len(p) for p in shapes.values())
    ctx.check(
        "s7-user-records-deaggregated-in-place",
        not wrong and result.lost == 0,
        f"{len(shapes)} aggregates = {user_records} user records (+{PLAIN} plain): each with the aggregate's "
        "sequence number, sub-sequence 0..n-1 and partition key" + (f"; wrong: {wrong[:3]}" if wrong else ""),
        [worker],
    )
    ctx.check("s7-every-record-handled", result.lost == 0 and result.unknown == 0, result.line(), [worker])
    ctx.check("s7-no-duplicates", result.duplicated == 0, f"duplicated={result.duplicated}", [worker])
    last = ledger.last_by_shard()
    ok, seen = ctx.checkpoints_match(ctx.leases(app), last)
    ctx.check(
        "s7-checkpoint-sub-sequence-is-last-user-record",
        ok and all(sub > 0 for _, sub in last.values()),
        " ".join(
            f"{short(s)}: checkpoint ...{str(seq)[-6:]} sub {sub}"
            + ("" if seen.get(s) == (str(seq), sub) else f" != stored {seen.get(s)}")
            for s, (seq, sub) in sorted(last.items())
        ),
        [worker],
    )
    ctx.sigterm_clean("s7-clean-exit", worker, expect_children=2)
    ctx.row(result, remark=f"{user_records} user records in {len(shapes)} aggregates + {PLAIN} plain")
