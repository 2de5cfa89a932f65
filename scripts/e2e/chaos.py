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
counted; losses are not allowed.
"""

import os
import signal
import time

from context import now_ms, poll
from report import note
from sink import Sink
from stream import Ledger, Producer, create_stream

PREFIX = "s5"
GRACE_MS = 8000


def scenario_5(ctx):
    stream_name, app = ctx.names(5)
    create_stream(ctx.settings, stream_name, 2)
    ledger = Ledger()
    worker = ctx.worker(5, app, stream_name, "s5-worker-1", extra={"shutdownGraceMillis": str(GRACE_MS)})
    out = Sink(worker.out_dir)
    rng = ctx.rng
    rounds = max(ctx.settings.chaos_rounds, 2)
    kinds = ["child", "daemon"] * (rounds // 2) + ([rng.choice(["child", "daemon"])] if rounds % 2 else [])
    rng.shuffle(kinds)

    producer = Producer(ctx.settings, stream_name, ledger, PREFIX, per_put=10, interval_s=0.1)
    producer.start()
    child_rounds, daemon_rounds, orphan_rounds = [], [], []
    try:
        started = now_ms()
        worker.start()
        ctx.wait_initialized(worker, ["shardId-000000000000", "shardId-000000000001"], started, 150)
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
            t0 = time.time()
            # Every child this daemon started (also any it starts while shutting down) must end
            # by itself with status 0 once the daemon is gone; the SIGKILLed one excepted.
            if kind == "child":
                victim = rng.choice(kids)
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
    result = ctx.wait_handled(ledger, [out], 120)
    ctx.check(
        "s5-child-kill-ends-daemon-with-status-1",
        child_rounds and all(ok for ok, _ in child_rounds),
        " ".join(d for _, d in child_rounds) or "no round killed a child",
        [worker],
    )
    ctx.check(
        "s5-daemon-kill-children-exit-0-on-eof",
        daemon_rounds and all(ok for ok, _ in daemon_rounds),
        " ".join(d for _, d in daemon_rounds) or "no round killed the daemon",
        [worker],
    )
    ctx.check("s5-no-orphan-processes", not orphan_rounds, " ".join(orphan_rounds) or f"{len(kinds)} rounds")
    ctx.check(
        "s5-every-record-handled-at-least-once",
        result.lost == 0 and result.unknown == 0,
        f"{result.line()} missing={result.missing_sample}" if result.lost else result.line(),
        [worker],
    )
    expected = ledger.last_by_shard()
    ok, seen = ctx.checkpoints_match(ctx.leases(app), expected)
    ctx.check("s5-final-checkpoint-is-last-sequence-number", ok, f"{len(expected)} shards", [worker])
    ctx.sigterm_clean("s5-clean-exit", worker)
    ctx.row(result, remark=f"{len(kinds)} kills: {kinds.count('child')} child, {kinds.count('daemon')} daemon")
