"""Scenarios 1-3: one application, one worker, run three times in a row.

1. records across 2 shards: every record handled once, and the lease checkpoint of each shard
   equals the sequence number of the last record put into it;
2. SIGTERM while a producer trickles records: each child gets `shutdownRequested` then
   `leaseLost` and exits 0, the daemon exits within its grace period, and the stored checkpoints
   equal the last record each child wrote (records after them are not lost: they are behind no
   checkpoint and wait for scenario 3);
3. restart with the same workerId: each `initialize` carries the stored checkpoint, nothing at or
   before a checkpoint is delivered again, every record is handled, the checkpoints advance.

2 continues the application (and daemon) of 1, and 3 the one of 2.

1d and 2d run 1 and 2 with examples/declared_sink (see declared.py) on their own application,
with poison and flaky records in the stream: in 1d each lease's final checkpoint is where the
`every 50 records` strategy left it (fewer than 50 records after it), in 2d the default
`shutdown_requested` hook stores the last record handled or dead-lettered (its events are only
`leaseLost` and `exit 0`: the default hook writes none). In both, a checkpoint sampled at any time
never passes a record missing from the sink and the dead letters.
"""

from context import now_ms, poll, short
from declared import FILE_SINK, CheckpointAudit, checkpoint_lag, taint_checks
from sink import Sink, initialize_position, last_handled_by_shard, tally
from stream import Ledger, Producer, create_stream, put_records

FIRST_BATCH = 1000
WHILE_STOPPED = 200
AFTER_RESTART = 100


def scenario_1(ctx, proc=FILE_SINK):
    """Put 1000 records across 2 shards; all handled once; checkpoints = last put per shard
    (declared_sink: fewer than 50 records after them; poison dead-lettered, flaky handled)."""
    sid = f"1{proc.suffix}"
    p = f"s{sid}"
    stream_name, app = ctx.names(sid)
    kinesis = create_stream(ctx.settings, stream_name, 2)
    ledger = Ledger()
    next_n = put_records(kinesis, stream_name, ledger, p, 0, FIRST_BATCH, tainted=proc.tainted)
    ctx.check(
        f"{p}-records-put",
        len(ledger) == FIRST_BATCH and len(ledger.shards()) == 2,
        f"{len(ledger)} records into {', '.join(f'{short(s)}={n}' for s, n in _per_shard(ledger).items())}",
    )
    worker = ctx.worker(sid, app, stream_name, f"{p}-worker-1", proc=proc)
    out = Sink(worker.out_dir)
    audit = CheckpointAudit(ctx, app, ledger, [out])
    audit.start()
    started = now_ms()
    worker.start()
    inits = ctx.wait_initialized(worker, ledger.shards(), started, 150)
    result = ctx.wait_handled(ledger, [out], 90, dead_letters=proc.declared)
    first = min((e.ms for e in inits.values()), default=None)
    ctx.check(
        f"{p}-initialize-at-trim-horizon",
        len(inits) == 2 and all(initialize_position(e) == "TrimHorizon" for e in inits.values()),
        f"{len(inits)} children, first initialize {((first or started) - started) / 1000:.1f}s after start "
        "(a new application waits a random 1-30 s)",
        [worker],
    )
    ctx.check(f"{p}-every-record-handled", result.lost == 0 and result.unknown == 0, result.line(), [worker])
    ctx.check(f"{p}-no-duplicates", result.duplicated == 0, f"duplicated={result.duplicated}", [worker])
    table = ctx.leases(app)
    expected = ledger.last_by_shard()
    if proc.declared:
        checkpoint_lag(ctx, f"{p}-checkpoint-by-strategy", table, ledger, [out], [worker])
        taint_checks(ctx, p, ledger, [out], [worker])
    else:
        ok, seen = ctx.checkpoints_match(table, expected)
        owners = table.owners()
        ctx.check(
            f"{p}-checkpoint-is-last-sequence-number",
            ok and all(owners.get(s) == worker.worker_id for s in expected),
            _cp_detail(expected, seen) + f" owners={sorted(set(owners.values()), key=str)}",
            [worker],
        )
    audit.stop().check(ctx, f"{p}-checkpoints-never-pass-unwritten-records", [worker])
    ctx.row(result, remark=f"{result.dead} poison records dead-lettered" if proc.declared else "")
    ctx.state[p] = dict(
        worker=worker, ledger=ledger, kinesis=kinesis, stream=stream_name, app=app, next_n=next_n, prefix=p
    )
    return worker


def scenario_2(ctx, proc=FILE_SINK):
    """SIGTERM while records flow: shutdownRequested then leaseLost, checkpoints stored, exit."""
    p = f"s2{proc.suffix}"
    st = ctx.state.get(f"s1{proc.suffix}")
    if not ctx.check(f"{p}-application-of-s1{proc.suffix}-ready", st is not None, "" if st else "scenario 1 did not complete"):
        return
    worker, ledger = st["worker"], st["ledger"]
    out = Sink(worker.out_dir)
    if not ctx.check(f"{p}-daemon-of-s1{proc.suffix}-running", worker.running(), "", [worker]):
        return
    audit = CheckpointAudit(ctx, st["app"], ledger, [out])
    audit.start()
    poll(lambda: len(worker.children()) == 2, 30)
    producer = Producer(
        ctx.settings, st["stream"], ledger, st["prefix"], start=st["next_n"], per_put=5, interval_s=0.1, tainted=proc.tainted
    )
    producer.start()
    # Let the trickle reach the children first, so the shutdown happens while records flow.
    target = len(ledger) + 20
    poll(lambda: tally(ledger.snapshot(), [out], dead_letters=proc.declared).handled >= target, 30)
    kids = worker.children()
    sent = now_ms()
    code, took = worker.sigterm()
    st["next_n"] = producer.stop()
    # Every child of the daemon: shutdownRequested, then leaseLost, then exit 0, nothing else
    # (declared_sink keeps the default shutdown_requested hook, which writes no event).
    sequences = {}
    for pid, events in out.events_by_pid().items():
        if pid in kids:
            sequences[pid] = [e.what.split(" ")[0] if e.kind != "exit" else e.what for e in events if e.ms >= sent]
    if proc.declared:
        name, expected_seq = f"{p}-leaseLost-then-exit-0", ["leaseLost", "exit 0"]
    else:
        name, expected_seq = f"{p}-shutdownRequested-then-leaseLost", ["shutdownRequested", "leaseLost", "exit 0"]
    ctx.check(
        name,
        len(kids) == 2 and all(sequences.get(pid) == expected_seq for pid in kids),
        " ".join(f"{pid}:{'>'.join(sequences.get(pid, []))}" for pid in kids) or "no child when SIGTERM was sent",
        [worker],
    )
    ctx.check(
        f"{p}-daemon-exits-within-grace",
        code == 143 and took < worker.grace_s,
        f"exit={code} after {took:.1f}s (grace {worker.grace_s:.0f}s)",
        [worker],
    )
    alive = [pid for pid in kids if ctx.registry.reaper.alive(pid)] + ctx.strays(worker)
    ctx.check(f"{p}-no-child-left-running", not alive, f"children={kids}" + (f" still running={alive}" if alive else ""))
    # The checkpoints are what each child wrote last (it checkpoints what it handled; for
    # declared_sink the default shutdown_requested hook does, dead letters included).
    table = ctx.leases(st["app"])
    handled_last = last_handled_by_shard([out], dead_letters=proc.declared)
    ok, seen = ctx.checkpoints_match(table, handled_last, 10)
    ctx.check(
        f"{p}-checkpoints-stored",
        ok,
        _cp_detail(handled_last, seen) + (" (by the default shutdown_requested hook)" if proc.declared else ""),
        [worker],
    )
    # Not handled yet is fine only after the checkpoint (it will be read again from there).
    result = tally(ledger.snapshot(), [out], dead_letters=proc.declared)
    handled = {d.payload for d in out.deliveries()[0]} | {d.payload for d in out.dead_letters()[0]}
    behind, pending = 0, 0
    for payload, put in ledger.snapshot().items():
        if payload in handled:
            continue
        cp = seen.get(put.shard, ("0", 0))[0]
        if cp and cp.isdigit() and put.seq <= int(cp):
            behind += 1
        else:
            pending += 1
    ctx.check(
        f"{p}-nothing-lost-behind-a-checkpoint",
        behind == 0,
        f"put={result.put} handled={result.handled} duplicated={result.duplicated}; not yet handled: "
        f"{pending} after the checkpoints" + ("" if proc.declared else " (scenario 3 reads them)")
        + f", {behind} at or before them (lost)",
    )
    if proc.declared:
        upto = {s: (int(cp), sub) for s, (cp, sub) in seen.items() if cp and cp.isdigit()}
        taint_checks(ctx, p, ledger, [out], [worker], upto=upto)
    audit.stop().check(ctx, f"{p}-checkpoints-never-pass-unwritten-records", [worker])
    ctx.row(
        result,
        lost=behind,
        remark=f"{pending} put after the last checkpoint" + ("" if proc.declared else ": handled in 3"),
    )
    st["checkpoints_at_stop"] = {s: int(cp) for s, (cp, _) in seen.items() if cp and cp.isdigit()}


def scenario_3(ctx):
    """Restart: resumes at the checkpoints, re-delivers nothing checkpointed, handles the rest."""
    st = ctx.state.get("s1")
    if not ctx.check("s3-application-of-s1-ready", st is not None, "" if st else "scenario 1 did not complete"):
        return
    worker, ledger, kinesis = st["worker"], st["ledger"], st["kinesis"]
    out = Sink(worker.out_dir)
    stored = st.get("checkpoints_at_stop", {})
    st["next_n"] = put_records(kinesis, st["stream"], ledger, st["prefix"], st["next_n"], WHILE_STOPPED)
    mark = out.line_counts()
    started = now_ms()
    worker.start()
    inits = ctx.wait_initialized(worker, list(stored), started, 60)
    resumed = {s: initialize_position(e) for s, e in inits.items()}
    first = min((e.ms for e in inits.values()), default=None)
    ctx.check(
        "s3-initialize-at-stored-checkpoint",
        len(stored) == 2 and all(resumed.get(s) == (seq, 0) for s, seq in stored.items()),
        f"first initialize {((first or started) - started) / 1000:.1f}s after restart; "
        + " ".join(f"{short(s)}:{'ok' if resumed.get(s) == (seq, 0) else resumed.get(s)}" for s, seq in stored.items()),
        [worker],
    )
    ctx.wait_handled(ledger, [out], 60)
    st["next_n"] = put_records(kinesis, st["stream"], ledger, st["prefix"], st["next_n"], AFTER_RESTART)
    result = ctx.wait_handled(ledger, [out], 60)
    again = [d for d in out.deliveries_since(mark) if d.shard in stored and d.seq <= stored[d.shard]]
    ctx.check(
        "s3-nothing-checkpointed-redelivered",
        not again and len(out.deliveries_since(mark)) > 0,
        f"{len(out.deliveries_since(mark))} records delivered after the restart, {len(again)} of them at or "
        "before a stored checkpoint",
        [worker],
    )
    ctx.check("s3-every-record-handled", result.lost == 0 and result.unknown == 0, result.line(), [worker])
    ctx.check("s3-no-duplicates", result.duplicated == 0, f"duplicated={result.duplicated}", [worker])
    expected = ledger.last_by_shard()
    ok, seen = ctx.checkpoints_match(ctx.leases(st["app"]), expected)
    ctx.check("s3-checkpoint-is-last-sequence-number", ok, _cp_detail(expected, seen), [worker])
    ctx.sigterm_clean("s3-clean-exit", worker, expect_children=2)
    ctx.row(result, remark="totals of scenarios 1-3 (one application)")


def _per_shard(ledger):
    counts = {}
    for put in ledger.snapshot().values():
        counts[put.shard] = counts.get(put.shard, 0) + 1
    return dict(sorted(counts.items()))


def _cp_detail(expected, seen):
    parts = []
    for shard, (seq, sub) in sorted(expected.items()):
        got = seen.get(shard)
        mark = "=" if got == (str(seq), sub) else f"!= stored {got}"
        parts.append(f"{short(shard)}:...{str(seq)[-6:]}/{sub}{mark if mark == '=' else ' ' + mark}")
    return " ".join(parts)
