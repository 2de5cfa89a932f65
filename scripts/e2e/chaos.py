"""Scenario 5: chaos. kill -9 record processors or the daemon at random points while records
flow, restart, and at the end every record put was handled at least once.

A background producer puts ~100 records/s. Each round waits until the daemon runs both
children, pauses a random 1-5 s, then SIGKILLs one of:
- a random live child process: the daemon notices at its next message to that child (EOF or a
  failed write), gives up (the protocol has no way to restart a child) and exits with status 1
  once its shutdown hook has waited `shutdownGraceMillis`; the other child is shut down on the
  way (and so must exit too, not linger as an orphan);
- the daemon JVM itself: no shutdown hook runs; its children see EOF on stdin and must exit 0 by
  themselves (checked through the driver, which is their subreaper, and their `exit 0` events).
Then the worker is restarted with the same workerId, which takes its leases back at once.

Duplicates are expected (a batch written but not yet checkpointed is delivered again) and are
counted; losses are not allowed. A kill proves something only if it lands between a write and
its checkpoint, so every round after the random pause waits (up to 10 s) until the sink file of
the victim's shard (any shard for the daemon) grows, and kills at once: file_sink checkpoints
right after each write, so kills at random points alone mostly miss that window. After each kill,
once nothing can move that shard's lease any more, the round records whether the victim had
unacknowledged writes (a record written past the stored checkpoint). Asserted: at least one kill
did, and the run delivered some record twice (`duplicated > 0`).

5d runs it with examples/declared_sink (see declared.py), poison and flaky records in the
stream, and also checks that no checkpoint sampled at any time passes a record missing from the
sink and the dead letters, and that the final checkpoints are where the `every 50 records`
strategy leaves them.
"""

import os
import signal
import time

from context import now_ms, poll, short
from declared import FILE_SINK, CheckpointAudit, checkpoint_lag, taint_checks
from report import note
from sink import Sink, last_handled_by_shard
from stream import Ledger, Producer, create_stream

GRACE_MS = 8000
SHARDS = ["shardId-000000000000", "shardId-000000000001"]


def _shard_of(out, pid):
    """The shard a record processor was initialized for (from its events), or None."""
    return next((e.shard for e in reversed(out.events()) if e.pid == pid and e.kind == "initialize"), None)


def _sizes(out, shards):
    sizes = {}
    for shard in shards:
        try:
            sizes[shard] = os.stat(os.path.join(out.dir, f"records-{shard}.tsv")).st_size
        except OSError:
            sizes[shard] = 0
    return sizes


def _await_write(out, shards, deadline_s=10.0):
    """Poll (every ~2 ms) until the record file of one of `shards` grows: the moment after a
    write, before its checkpoint is stored. Whether it grew in time."""
    before = _sizes(out, shards)
    end = time.time() + deadline_s
    while time.time() < end:
        if _sizes(out, shards) != before:
            return True
        time.sleep(0.002)
    return False


def _unacknowledged(out, table, shards, dead_letters):
    """{shard: records written past its stored checkpoint?} (read once nothing can move it)."""
    written = last_handled_by_shard([out], dead_letters=dead_letters)
    stored = table.checkpoints()
    found = {}
    for shard in shards:
        cp, sub = stored.get(shard, (None, 0))
        last = written.get(shard)
        if last is None:
            found[shard] = False
        elif isinstance(cp, str) and cp.isdigit():
            found[shard] = last > (int(cp), int(sub or 0))
        else:
            found[shard] = cp in (None, "TRIM_HORIZON", "LATEST")  # written, nothing checkpointed
    return found


def scenario_5(ctx, proc=FILE_SINK):
    sid = f"5{proc.suffix}"
    p = f"s{sid}"
    stream_name, app = ctx.names(sid)
    create_stream(ctx.settings, stream_name, 2)
    ledger = Ledger()
    worker = ctx.worker(sid, app, stream_name, f"{p}-worker-1", extra={"shutdownGraceMillis": str(GRACE_MS)}, proc=proc)
    out = Sink(worker.out_dir)
    table = ctx.leases(app)
    rng = ctx.rng
    rounds = max(ctx.settings.chaos_rounds, 2)
    kinds = ["child", "daemon"] * (rounds // 2) + ([rng.choice(["child", "daemon"])] if rounds % 2 else [])
    rng.shuffle(kinds)

    producer = Producer(ctx.settings, stream_name, ledger, p, per_put=10, interval_s=0.1, tainted=proc.tainted)
    producer.start()
    audit = CheckpointAudit(ctx, app, ledger, [out])
    audit.start()
    child_rounds, daemon_rounds, orphan_rounds, windows = [], [], [], []
    try:
        started = now_ms()
        worker.start()
        ctx.wait_initialized(worker, SHARDS, started, 150)
        for number, kind in enumerate(kinds, 1):
            if not worker.running():
                worker.start()
            poll(lambda: len(worker.children()) == 2, 60)
            pause = rng.uniform(1.0, 5.0)
            time.sleep(pause)  # the random point of this round
            kids = worker.children()
            if not kids:
                note(f"round {number}: no live child to kill")
                kind = "daemon"
            victim = rng.choice(kids) if kind == "child" else None
            shards = [_shard_of(out, victim)] if victim else [s for s in (_shard_of(out, k) for k in kids) if s]
            on_write = _await_write(out, shards)
            t0 = time.time()
            # Every child this daemon started (also any it starts while shutting down) must end
            # by itself with status 0 once the daemon is gone; the SIGKILLed one excepted.
            if kind == "child":
                os.kill(victim, signal.SIGKILL)
                code = worker.wait_exit(GRACE_MS / 1000 + 30)
                took = time.time() - t0
                others = [pid for pid in set(worker.incarnation_children()) | set(kids) if pid != victim]
                ok_others, detail = ctx.children_exit_cleanly(worker, others, worker.started_ms)
                child_rounds.append((code == 1 and ok_others, f"r{number}:exit={code}/{took:.1f}s,{detail}"))
                note(f"round {number}: +{pause:.1f}s kill -9 child {victim}; daemon exit {code} after {took:.1f}s; {detail}")
                if worker.running():
                    worker.stop_quietly()
            else:
                kids = worker.kill9()
                pids = sorted(set(kids) | set(worker.incarnation_children()))
                ok, detail = ctx.children_exit_cleanly(worker, pids, worker.started_ms)
                daemon_rounds.append((ok, f"r{number}:{detail}"))
                note(f"round {number}: +{pause:.1f}s kill -9 daemon {worker.proc.pid}; {detail}")
            # The daemon of this round is gone: nothing moves the victim's lease any more.
            pending = _unacknowledged(out, table, shards, proc.declared)
            windows.append((any(pending.values()), on_write, f"r{number}:" + ",".join(
                f"{short(s)}={'yes' if hit else 'no'}" for s, hit in pending.items()) + ("" if on_write else "(no write seen)")))
            note(f"round {number}: {'right after a write' if on_write else 'no write seen in 10 s'}; unacknowledged "
                 f"writes at the kill: {pending}")
            strays = ctx.strays(worker)
            if strays:
                orphan_rounds.append(f"r{number}:{strays}")
            worker.start()
        poll(lambda: len(worker.children()) == 2, 60)
        # Let the last incarnation handle records for a moment while the producer still runs.
        mark = len(ledger) + 200
        poll(lambda: len(ledger) >= mark, 10)
    finally:
        producer.stop()
    result = ctx.wait_handled(ledger, [out], 120, dead_letters=proc.declared)
    ctx.check(
        f"{p}-kills-land-between-write-and-checkpoint",
        any(hit for hit, _, _ in windows),
        f"{sum(hit for hit, _, _ in windows)} of {len(windows)} kills left records written past the stored "
        "checkpoint: " + " ".join(d for _, _, d in windows),
        [worker],
    )
    ctx.check(
        f"{p}-child-kill-ends-daemon-with-status-1",
        child_rounds and all(ok for ok, _ in child_rounds),
        " ".join(d for _, d in child_rounds) or "no round killed a child",
        [worker],
    )
    ctx.check(
        f"{p}-daemon-kill-children-exit-0-on-eof",
        daemon_rounds and all(ok for ok, _ in daemon_rounds),
        " ".join(d for _, d in daemon_rounds) or "no round killed the daemon",
        [worker],
    )
    ctx.check(f"{p}-no-orphan-processes", not orphan_rounds, " ".join(orphan_rounds) or f"{len(kinds)} rounds")
    ctx.check(
        f"{p}-every-record-handled-at-least-once",
        result.lost == 0 and result.unknown == 0,
        f"{result.line()} missing={result.missing_sample}" if result.lost else result.line(),
        [worker],
    )
    ctx.check(
        f"{p}-redelivered-after-kills",
        result.duplicated > 0,
        f"duplicated={result.duplicated} (records written, not yet checkpointed when a kill came, delivered again)",
        [worker],
    )
    if proc.declared:
        checkpoint_lag(ctx, f"{p}-final-checkpoint-by-strategy", table, ledger, [out], [worker])
        taint_checks(ctx, p, ledger, [out], [worker])
    else:
        expected = ledger.last_by_shard()
        ok, seen = ctx.checkpoints_match(table, expected)
        ctx.check(f"{p}-final-checkpoint-is-last-sequence-number", ok, f"{len(expected)} shards", [worker])
    ctx.sigterm_clean(f"{p}-clean-exit", worker, expect_children=2)
    audit.stop().check(ctx, f"{p}-checkpoints-never-pass-unwritten-records", [worker])
    ctx.row(
        result,
        remark=f"{len(kinds)} kills: {kinds.count('child')} child, {kinds.count('daemon')} daemon; "
        f"{sum(hit for hit, _, _ in windows)} with unacknowledged writes"
        + (f"; {result.dead} poison records dead-lettered" if proc.declared else ""),
    )
