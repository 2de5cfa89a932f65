"""What every scenario needs: names, workers, polling with deadlines, and common assertions.

Waits are polls of a condition with a deadline, never fixed sleeps (except the deliberately random
pauses of the chaos scenario). A deadline that passes is not an error by itself: the poll returns
the last value and the check that follows reports what was seen.
"""

import os
import signal
import time

import daemon
import leases
import procs
import sink
from report import note


def now_ms():
    return int(time.time() * 1000)


def poll(condition, deadline_s, interval_s=0.25):
    """Call `condition` until it returns something truthy or `deadline_s` passes; return the
    last value."""
    end = time.time() + deadline_s
    while True:
        value = condition()
        if value or time.time() >= end:
            return value
        time.sleep(interval_s)


def short(shard):
    """shardId-000000000003 -> s3 (for compact details)."""
    return "s" + str(int(shard.rsplit("-", 1)[-1])) if shard and shard.startswith("shardId-") else str(shard)


class Ctx:
    """Shared state of one run: settings, process registry, report, randomness."""

    def __init__(self, settings, registry, report, rng):
        self.settings = settings
        self.registry = registry
        self.report = report
        self.rng = rng
        self.workers = []  # every Worker created, to stop them after their scenario

    # --- names and objects ------------------------------------------------------------------

    def names(self, number):
        """A fresh stream and application name, unique per run and scenario."""
        base = f"e2e-{self.settings.run_id}-s{number}"
        return base, f"{base}-app"

    def folder(self, number, *parts):
        path = os.path.join(self.settings.run_dir, f"s{number}", *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def worker(self, number, app, stream_name, worker_id, extra=None, binary=None, proc=None):
        """A worker running `binary`, or the processor `proc` (declared.Processor; default
        file_sink) with its arguments."""
        w = daemon.Worker(
            self.settings,
            self.registry,
            folder=self.folder(number, worker_id),
            app=app,
            stream=stream_name,
            worker_id=worker_id,
            binary=binary or self.settings.example(proc.example if proc else "file_sink"),
            args=proc.args if proc else ("out",),
            extra=extra,
        )
        self.workers.append(w)
        return w

    def leases(self, app):
        return leases.Leases(self.settings, app)

    def stop_workers(self, keep=()):
        """Stop (by PID) every worker still running except those in `keep`."""
        for w in self.workers:
            if w not in keep and w.running():
                note(f"stopping {w.worker_id} (pid {w.proc.pid})")
                w.stop_quietly()

    # --- checks -----------------------------------------------------------------------------

    def check(self, name, ok, detail="", workers=()):
        return self.report.check(name, ok, detail, logs=[w for w in workers if w.proc])

    def wait_handled(self, ledger, sinks, deadline_s, dead_letters=False):
        """Poll until every record of the ledger is in the sinks (or, with `dead_letters`, in
        their dead-letter files); the final Tally."""

        def count():
            return sink.tally(ledger.snapshot(), sinks, dead_letters=dead_letters)

        return poll(lambda: (lambda t: t if t.lost == 0 else None)(count()), deadline_s, 0.5) or count()

    def wait_initialized(self, worker, shards, since_ms, deadline_s):
        """Poll until each shard in `shards` has an `initialize` event at or after `since_ms`;
        returns {shard: first such event}."""
        out = sink.Sink(worker.out_dir)

        def found():
            first = {}
            for e in out.events():
                if e.kind == "initialize" and e.ms >= since_ms and e.shard in shards and e.shard not in first:
                    first[e.shard] = e
            return first if set(first) >= set(shards) else None

        return poll(found, deadline_s) or {}

    def checkpoints_match(self, table, expected, deadline_s=20):
        """Poll until the lease checkpoint of every shard in `expected` ({shard: (seq, sub)})
        equals it; returns (ok, {shard: (checkpoint, sub)})."""
        seen = {}

        def match():
            seen.clear()
            seen.update(table.checkpoints())
            return all(seen.get(s) == (str(seq), sub) for s, (seq, sub) in expected.items())

        ok = poll(match, deadline_s, 0.5)
        return bool(ok), dict(seen)

    def sigterm_clean(self, name, worker, expect_children=1, extra_detail=""):
        """SIGTERM a worker's daemon and check: exit status 143 (the JVM's status after its
        shutdown hook ran), within its grace period + margin, at least `expect_children` record
        processors running when it was sent (waited for up to 30 s), and they exited 0."""
        poll(lambda: len(worker.children()) >= expect_children, 30)
        kids = worker.children()
        sent_ms = now_ms()
        code, took = worker.sigterm()
        left = daemon.wait_processes_gone(self.registry, kids, 15)
        # Children started during the shutdown (the worker can take its leases again) must end too.
        strays = poll(lambda: not self.strays(worker), 10) or self.strays(worker)
        strays = [] if strays is True else strays
        exits = {e.pid for e in sink.Sink(worker.out_dir).events() if e.what == "exit 0" and e.ms >= sent_ms}
        ok = code == 143 and not left and not strays and len(kids) >= expect_children and set(kids) <= exits
        self.check(
            name,
            ok,
            f"exit={code} after {took:.1f}s children={len(kids)} (expected {expect_children}+) "
            f"exited-0={len(set(kids) & exits)}"
            + (f" still-running={left}" if left else "")
            + (f" orphans={strays}" if strays else "")
            + extra_detail,
            [worker],
        )
        if worker.running():  # never leave it behind, whatever the check said
            worker.stop_quietly()
        return ok

    def children_exit_cleanly(self, worker, pids, since_ms, deadline_s=15):
        """After the daemon died: did each of `pids` exit by itself, status 0 where it was
        re-parented to the driver, with an `exit 0` event? Returns (ok, detail)."""
        left = daemon.wait_processes_gone(self.registry, pids, deadline_s)
        all_events = sink.Sink(worker.out_dir).events()
        events = {e.pid for e in all_events if e.what == "exit 0" and e.ms >= since_ms}
        errors = sorted({e.pid for e in all_events if e.what == "exit error" and e.ms >= since_ms and e.pid in pids})
        statuses = {pid: self.registry.reaper.statuses.get(pid) for pid in pids}
        bad_status = {pid: code for pid, code in statuses.items() if code not in (None, 0)}
        for pid in left:  # do not leave them running, whatever the check says
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        ok = not left and not bad_status and set(pids) <= events
        detail = f"children={len(pids)} exit-0-events={len(set(pids) & events)}"
        if errors:
            detail += f" 'exit error'-events={errors}"
        if bad_status:
            detail += f" bad-status={bad_status}"
        if left:
            detail += f" still-running={left}"
        return ok, detail

    def strays(self, worker, allowed=()):
        """Record processors of `worker` (its binary, run in its folder) that still run,
        other than `allowed`: after its daemon is gone there must be none."""
        return [pid for pid in procs.find_processes(worker.binary, worker.folder) if pid not in allowed]

    def row(self, tally, lost=None, remark=""):
        row = self.report.current
        row.put, row.handled, row.duplicated = tally.put, tally.handled, tally.duplicated
        row.lost = tally.lost if lost is None else lost
        row.remark = remark

