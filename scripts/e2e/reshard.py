"""Scenario 4: SplitShard and then MergeShards while the daemon runs and a producer puts records.

Split shard 0 in the middle of its hash range (two child shards), then merge those two adjacent
children back into one. For each resharding: the parent's processor gets `shardEnded` and
checkpoints the end (its lease checkpoint becomes SHARD_END), and the processors of the child
shards get their `initialize` only after the parent's `shardEnded` (event timestamps written by
the processors themselves). Every record put, before, during and after, is handled once.

kinesis-local 0.6.2 supports both operations (tried: the stream goes UPDATING then ACTIVE within
~0.5 s, ListShards shows the closed parents with their children). One quirk, harmless here:
its ListShards filter AT_TRIM_HORIZON also returns child shards, so a *new* application on an
already resharded stream fails its first shard sync; this scenario reshards only after the
application's leases exist.

4d runs it with examples/declared_sink (see declared.py), poison and flaky records in the stream.
Its `shard_ended` is the SDK's default hook, which writes no event: the parents' SHARD_END in the
lease table is what it stored, and the order "children after the parent's shardEnded" (a daemon
rule, checked in 4) is not checked again. A checkpoint sampled at any time never passes a record
missing from the sink and the dead letters; SHARD_END counts as passing every record of the shard.
"""

from context import now_ms, poll, short
from declared import FILE_SINK, CheckpointAudit, taint_checks
from sink import Sink
from stream import Ledger, Producer, children_of_shard, create_stream, list_shards, merge, put_records, split_in_half


def _ended(out, shard):
    """The first `shardEnded` event of a shard, or None."""
    return next((e for e in out.events() if e.shard == shard and e.kind == "shardEnded"), None)


def _first_init(out, shard):
    return next((e for e in out.events() if e.shard == shard and e.kind == "initialize"), None)


def scenario_4(ctx, proc=FILE_SINK):
    sid = f"4{proc.suffix}"
    p = f"s{sid}"
    stream_name, app = ctx.names(sid)
    kinesis = create_stream(ctx.settings, stream_name, 2)
    ledger = Ledger()
    next_n = put_records(kinesis, stream_name, ledger, p, 0, 200, tainted=proc.tainted)
    # A shorter grace: after a reshard, a SIGTERM'd KCL 3.1.3 worker sends shutdownRequested and
    # leaseLost, then takes its own leases again (new children, initialize at the checkpoint)
    # while its graceful-shutdown coordinator keeps waiting, so the JVM exits only when
    # shutdownGraceMillis runs out; the new children then see EOF and exit 0.
    worker = ctx.worker(sid, app, stream_name, f"{p}-worker-1", extra={"shutdownGraceMillis": "10000"}, proc=proc)
    out = Sink(worker.out_dir)
    audit = CheckpointAudit(ctx, app, ledger, [out])
    audit.start()
    started = now_ms()
    worker.start()
    ctx.wait_initialized(worker, ledger.shards(), started, 150)
    ctx.wait_handled(ledger, [out], 60, dead_letters=proc.declared)
    table = ctx.leases(app)

    producer = Producer(
        ctx.settings, stream_name, ledger, p, start=next_n, per_put=5, interval_s=0.1, tainted=proc.tainted
    )
    producer.start()
    try:
        # --- SplitShard -----------------------------------------------------------------------
        parent = "shardId-000000000000"
        split_ms = now_ms()
        split_in_half(kinesis, stream_name, parent)
        kids = children_of_shard(kinesis, stream_name, parent)
        poll(lambda: len(kids) == 2 and all(_first_init(out, k) for k in kids), 60)
        ended = _ended(out, parent)
        inits = {k: _first_init(out, k) for k in kids}
        lease_ok = poll(lambda: table.checkpoints().get(parent, (None,))[0] == "SHARD_END", 20)
        if proc.declared:
            ctx.check(
                f"{p}-split-parent-SHARD_END-by-default-hook",
                bool(lease_ok) and len(kids) == 2 and all(inits.values()),
                f"split {short(parent)} -> {', '.join(map(short, kids))}; lease checkpoint "
                f"{table.checkpoints().get(parent, ('missing',))[0]}; children initialized: "
                + " ".join(f"{short(k)}:{'yes' if e else 'no'}" for k, e in inits.items()),
                [worker],
            )
        else:
            ctx.check(
                f"{p}-split-parent-shardEnded-and-SHARD_END",
                ended is not None and bool(lease_ok),
                f"split {short(parent)} -> {', '.join(map(short, kids))}; shardEnded "
                + (f"{(ended.ms - split_ms) / 1000:.1f}s after the split" if ended else "never")
                + f"; lease checkpoint {table.checkpoints().get(parent, ('missing',))[0]}",
                [worker],
            )
            ctx.check(
                f"{p}-split-children-start-after-parent",
                ended is not None and len(kids) == 2 and all(e is not None and e.ms > ended.ms for e in inits.values()),
                " ".join(
                    f"{short(k)}:" + (f"+{(e.ms - ended.ms) / 1000:.1f}s" if e and ended else "no initialize")
                    for k, e in inits.items()
                ),
                [worker],
            )

        # --- MergeShards of the two (adjacent) children -----------------------------------------
        shards = list_shards(kinesis, stream_name)
        low, high = sorted(kids, key=lambda k: int(shards[k]["HashKeyRange"]["StartingHashKey"]))
        merge_ms = now_ms()
        merge(kinesis, stream_name, low, high)
        merged = sorted(set(children_of_shard(kinesis, stream_name, low)) | set(children_of_shard(kinesis, stream_name, high)))
        poll(lambda: len(merged) == 1 and _first_init(out, merged[0]), 60)
        ended2 = {k: _ended(out, k) for k in (low, high)}
        lease_ok2 = poll(lambda: all(table.checkpoints().get(k, (None,))[0] == "SHARD_END" for k in (low, high)), 20)
        child = _first_init(out, merged[0]) if len(merged) == 1 else None
        if proc.declared:
            ctx.check(
                f"{p}-merge-parents-SHARD_END-by-default-hook",
                bool(lease_ok2) and child is not None,
                f"merge {short(low)}+{short(high)} -> {', '.join(map(short, merged))}; "
                + " ".join(f"{short(k)}:{table.checkpoints().get(k, ('missing',))[0]}" for k in (low, high))
                + f"; merged child initialized: {'yes' if child else 'no'}",
                [worker],
            )
        else:
            ctx.check(
                f"{p}-merge-parents-shardEnded-and-SHARD_END",
                all(ended2.values()) and bool(lease_ok2),
                f"merge {short(low)}+{short(high)} -> {', '.join(map(short, merged))}; "
                + " ".join(
                    f"{short(k)}:" + (f"shardEnded +{(e.ms - merge_ms) / 1000:.1f}s" if e else "no shardEnded")
                    + f",{table.checkpoints().get(k, ('missing',))[0]}"
                    for k, e in ended2.items()
                ),
                [worker],
            )
            latest_parent_end = max((e.ms for e in ended2.values() if e), default=None)
            ctx.check(
                f"{p}-merged-child-starts-after-both-parents",
                child is not None and all(ended2.values()) and child.ms > latest_parent_end,
                (f"{short(merged[0])}: initialize +{(child.ms - latest_parent_end) / 1000:.1f}s after the later parent's shardEnded"
                 if child and latest_parent_end else f"merged={merged} initialize={child}"),
                [worker],
            )
        # Keep the producer running until the merged shard has records too.
        poll(lambda: merged and merged[0] in ledger.shards(), 10)
    finally:
        next_n = producer.stop()
    result = ctx.wait_handled(ledger, [out], 60, dead_letters=proc.declared)
    generations = [parent, *kids, *merged]
    present = set(ledger.shards())
    ctx.check(
        f"{p}-records-in-every-shard-generation",
        all(s in present for s in generations),
        " ".join(f"{short(s)}={sum(1 for put in ledger.snapshot().values() if put.shard == s)}" for s in sorted(present)),
    )
    ctx.check(f"{p}-every-record-handled", result.lost == 0 and result.unknown == 0, result.line(), [worker])
    ctx.check(f"{p}-no-duplicates", result.duplicated == 0, f"duplicated={result.duplicated}", [worker])
    if proc.declared:
        taint_checks(ctx, p, ledger, [out], [worker])
    # Two open shards at the end: the other original one and the merged one.
    ctx.sigterm_clean(f"{p}-exit", worker, expect_children=2)
    audit.stop().check(ctx, f"{p}-checkpoints-never-pass-unwritten-records", [worker])
    ctx.row(result, remark=f"{result.dead} poison records dead-lettered" if proc.declared else "")
