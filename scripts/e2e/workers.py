"""Scenario 6: two daemons (workers) of one application, one killed, the other takes over.

Both workers start together on a 4-shard stream, before the lease table exists. KCL 3 assigns
leases from a leader (the holder of a DynamoDB lock item in `<app>-CoordinatorState`), using the
workers' rows in `<app>-WorkerMetricStats`; it spreads the leases over both by itself (and a
worker that joins later gets leases through graceful handoff within ~15 s). What it needs to be
fast after a worker dies is `workerMetricsReporterFreqInMillis`: the leader keeps assigning leases
to a dead worker as long as its metrics row looks fresh (default period 30 s: ~50 s of leases
bouncing back to the dead worker; with 1000 ms: taken over in ~5 s).

Phase A kills the worker that is not the leader (kill -9): the leader reassigns its leases
within seconds. Phase B restarts it (same workerId), waits until leases are spread again, then
kills the leader: the survivor must first win the leader lock, which the KCL takes only after the
lock's lease duration (120 s, not configurable from the properties file) has passed.
Throughout, a producer puts records; at the end every record is handled at least once.
"""

import time

from context import now_ms, poll, short
from emulators import client
from report import note
from sink import Sink, initialize_position
from stream import Ledger, Producer, create_stream

PREFIX = "s6"
SHARDS = 4
EXTRA = {"workerMetricsReporterFreqInMillis": "1000", "shutdownGraceMillis": "10000"}


def leader_of(ctx, app):
    """The workerId holding the leader lock, or None."""
    ddb = client(ctx.settings, "dynamodb")
    try:
        item = ddb.get_item(TableName=f"{app}-CoordinatorState", Key={"key": {"S": "Leader"}}).get("Item", {})
    except ddb.exceptions.ResourceNotFoundException:
        return None
    return item.get("ownerName", {}).get("S")


def _counts(owners):
    counts = {}
    for owner in owners.values():
        counts[owner] = counts.get(owner, 0) + 1
    return " ".join(f"{o}={n}" for o, n in sorted(counts.items(), key=lambda x: str(x[0])))


def scenario_6(ctx):
    stream_name, app = ctx.names(6)
    create_stream(ctx.settings, stream_name, SHARDS)
    ledger = Ledger()
    w1 = ctx.worker(6, app, stream_name, "s6-worker-1", extra=EXTRA)
    w2 = ctx.worker(6, app, stream_name, "s6-worker-2", extra=EXTRA)
    by_id = {w.worker_id: w for w in (w1, w2)}
    sinks = [Sink(w.out_dir) for w in (w1, w2)]
    table = ctx.leases(app)
    producer = Producer(ctx.settings, stream_name, ledger, PREFIX, per_put=5, interval_s=0.1)
    producer.start()
    try:
        w1.start()
        w2.start()

        def spread():
            owners = table.owners()
            return (
                len(owners) == SHARDS
                and all(by_id.get(o) and by_id[o].running() for o in owners.values())
                and {o for o in owners.values()} == set(by_id)
                and all(len(w.children()) >= 1 for w in (w1, w2))
            )

        poll(spread, 180, 0.5)
        owners = table.owners()
        ctx.check(
            "s6-leases-spread-over-both-workers",
            spread(),
            f"{_counts(owners)} (both started before the lease table existed)",
            [w1, w2],
        )

        # --- phase A: kill -9 the worker that is not the leader -----------------------------------
        leader = leader_of(ctx, app)
        victim = w2 if leader != w2.worker_id else w1
        survivor = w1 if victim is w2 else w2
        victim_shards = sorted(s for s, o in table.owners().items() if o == victim.worker_id)
        t0, t0_ms = time.time(), now_ms()
        kids = sorted(set(victim.kill9()) | set(victim.incarnation_children()))
        stored = table.checkpoints()  # what the killed worker left behind: the survivor starts there
        ok, detail = ctx.children_exit_cleanly(victim, kids, victim.started_ms)
        ctx.check("s6-killed-worker-children-exit-0", ok, f"{victim.worker_id}: {detail}", [victim])

        def taken_over(by):
            return all(o == by.worker_id for o in table.owners().values()) and len(by.children()) == SHARDS

        took = poll(lambda: taken_over(survivor), 90, 0.5)
        resumed, how = _resumed_from_checkpoint(Sink(survivor.out_dir), victim_shards, t0_ms, stored)
        ctx.check(
            "s6-survivor-takes-over-non-leader-shards",
            took and resumed,
            f"leader={leader} killed={victim.worker_id} (owned {len(victim_shards)}); "
            f"{survivor.worker_id} owns all {SHARDS} after {time.time() - t0:.1f}s, "
            f"resumed from checkpoints: {how}",
            [survivor],
        )

        # --- phase B: restart the killed worker, then kill the leader ---------------------------------
        victim.start()
        poll(spread, 90, 0.5)
        ctx.check("s6-restarted-worker-gets-leases-back", spread(), _counts(table.owners()), [w1, w2])
        leader = leader_of(ctx, app)
        second = by_id.get(leader) or survivor
        heir = w1 if second is w2 else w2
        second_shards = sorted(s for s, o in table.owners().items() if o == second.worker_id)
        t0, t0_ms = time.time(), now_ms()
        note(f"killing the leader {second.worker_id}; the lock it holds expires after 120 s")
        kids = sorted(set(second.kill9()) | set(second.incarnation_children()))
        stored = table.checkpoints()
        ok, detail = ctx.children_exit_cleanly(second, kids, second.started_ms)
        ctx.check("s6-killed-leader-children-exit-0", ok, f"{second.worker_id}: {detail}", [second])
        took = poll(lambda: taken_over(heir), 200, 0.5)
        resumed, how = _resumed_from_checkpoint(Sink(heir.out_dir), second_shards, t0_ms, stored)
        ctx.check(
            "s6-survivor-takes-over-after-leader-death",
            took and resumed,
            f"killed leader {second.worker_id} (owned {len(second_shards)}); {heir.worker_id} owns all "
            f"{SHARDS} after {time.time() - t0:.1f}s (leader lock lease 120 s); resumed from checkpoints: {how}",
            [heir],
        )
        mark = len(ledger) + 200
        poll(lambda: len(ledger) >= mark, 10)
    finally:
        producer.stop()
    result = ctx.wait_handled(ledger, sinks, 90)
    ctx.check(
        "s6-every-record-handled-at-least-once",
        result.lost == 0 and result.unknown == 0,
        f"{result.line()} missing={result.missing_sample}" if result.lost else result.line(),
        [heir],
    )
    expected = ledger.last_by_shard()
    ok, seen = ctx.checkpoints_match(table, expected)
    ctx.check("s6-final-checkpoint-is-last-sequence-number", ok, f"{len(expected)} shards", [heir])
    ctx.sigterm_clean("s6-clean-exit", heir, expect_children=SHARDS)
    ctx.row(result, remark="2 workers; non-leader then leader killed")


SENTINELS = {"TRIM_HORIZON": "TrimHorizon", "LATEST": "Latest", "AT_TIMESTAMP": "AtTimestamp", "SHARD_END": "ShardEnd"}


def _as_initialized(checkpoint):
    """A lease row's (checkpoint, sub) in the form `initialize_position` reads from the sink."""
    text, sub = checkpoint
    if isinstance(text, str) and text.isdigit():
        return int(text), int(sub or 0)
    return SENTINELS.get(text, text)


def _resumed_from_checkpoint(out, shards, since_ms, stored, wait_s=30):
    """Did the new owner initialize each of `shards` after `since_ms` at the checkpoint the killed
    worker left in the lease table (`stored`, read right after the kill)? The new owner's children
    exist before their `initialize` event is written, so this waits for the events; a shard whose
    stored checkpoint is still a sentinel (nothing checkpointed yet) must start at that sentinel.
    Returns (ok, detail)."""
    want = {s: _as_initialized(stored.get(s, (None, 0))) for s in shards}

    def first_initializations():
        first = {}
        for e in out.events():
            if e.kind == "initialize" and e.ms >= since_ms and e.shard in shards and e.shard not in first:
                first[e.shard] = initialize_position(e)
        return first

    if not shards:
        return False, "the killed worker held no lease"
    poll(lambda: len(first_initializations()) == len(shards), wait_s, 0.5)
    first = first_initializations()
    for shard in shards:
        if shard not in first:
            return False, f"no: {short(shard)} not initialized by the new owner within {wait_s} s"
        if first[shard] != want[shard]:
            return False, f"no: {short(shard)} initialized at {first[shard]}, stored checkpoint {want[shard]}"
    return True, "yes, " + " ".join(f"{short(s)}@{_brief(want[s])}" for s in shards)


def _brief(position):
    return f"...{str(position[0])[-6:]}/{position[1]}" if isinstance(position, tuple) else str(position)
