"""The two record processors of the suite, and the checks that only data can settle about them.

Scenarios 1, 2, 4 and 5 run twice: with `examples/file_sink` (checkpoints by hand after every
batch, never fails) and, as 1d, 2d, 4d and 5d, with `examples/declared_sink`, which uses only the
SDK's declared API: a per-record handler, the runtime's `every 50 records` checkpoint strategy,
the `skip` failure policy with an `on_failure` hook that writes dead letters, and the default
`shutdown_requested`/`shard_ended` hooks. The declared runs put tainted payloads into the stream
(`poison-...` fails on every attempt, `flaky-...` on its first attempt only; see stream.py).

Checks defined here, all on data (sink files, dead-letter files, the lease table):
- `CheckpointAudit`: while a scenario runs, the lease table is sampled about once a second; no
  stored checkpoint may pass a record put into its shard (the ledger knows shard and sequence
  number of each) that is neither in a record file nor in a dead-letter file. The table is read
  before the files, so a record checkpointed before the sample must already be written;
- `taint_checks`: every `poison-` record is dead-lettered and never in the sink; nothing but
  poison records are dead-lettered, each after the policy's 3 attempts; every `flaky-` record is
  in the sink, none dead-lettered (attempts count per failing record: a retry that gets past a
  failed record starts the count afresh for the next one);
- `checkpoint_lag`: with the `every 50 records` strategy, the final checkpoint of each shard is
  a record's position and fewer than 50 records of the shard (handled or dead-lettered) come
  after it.
"""

import threading
import time
from dataclasses import dataclass

from context import poll, short
from report import note
from stream import FLAKY, POISON

EVERY_RECORDS = 50  # declared_sink's CheckpointStrategy::every_records(50)
ATTEMPTS = 3  # declared_sink's FailurePolicy::skip() (the default attempts)


@dataclass(frozen=True)
class Processor:
    """A record processor the scenarios can run."""

    suffix: str  # appended to scenario ids, check names, folders, streams ("" or "d")
    example: str  # cargo example name
    args: tuple  # after the binary in executableName
    tainted: bool  # put poison-/flaky- payloads

    @property
    def declared(self):
        return self.example == "declared_sink"


FILE_SINK = Processor("", "file_sink", ("out",), False)
DECLARED = Processor("d", "declared_sink", ("out", "skip"), True)


def _written(sinks):
    """Payloads in the record files and in the dead-letter files of `sinks`."""
    found = set()
    for sink in sinks:
        found.update(d.payload for d in sink.deliveries()[0])
        found.update(d.payload for d in sink.dead_letters()[0])
    return found


class CheckpointAudit(threading.Thread):
    """Samples the lease table while a scenario runs: a stored checkpoint must never pass a
    record that is missing from both the record files and the dead-letter files."""

    def __init__(self, ctx, app, ledger, sinks, interval_s=1.0):
        super().__init__(daemon=True, name=f"audit-{app}")
        self.table = ctx.leases(app)
        self.ledger, self.sinks, self.interval_s = ledger, list(sinks), interval_s
        self.halt = threading.Event()
        self.samples = 0  # lease-table reads
        self.checked = 0  # (sample, shard) pairs with a numeric or SHARD_END checkpoint
        self.passed_records = 0  # largest number of records at or before one checked checkpoint
        self.violations = []  # (seconds since start, shard, checkpoint, missing payloads)
        self.errors = 0
        self.t0 = time.time()

    def sample(self):
        checkpoints = self.table.checkpoints()  # first the table, then the files
        written = _written(self.sinks)
        by_shard = {}
        for put in self.ledger.snapshot().values():
            by_shard.setdefault(put.shard, []).append(put)
        self.samples += 1
        for shard, (cp, sub) in checkpoints.items():
            puts = by_shard.get(shard, [])
            if cp == "SHARD_END":
                covered = puts
            elif isinstance(cp, str) and cp.isdigit():
                limit = (int(cp), int(sub or 0))
                covered = [p for p in puts if (p.seq, p.sub) <= limit]
            else:
                continue  # TRIM_HORIZON, LATEST, ...: passes nothing
            self.checked += 1
            self.passed_records = max(self.passed_records, len(covered))
            missing = sorted(p.payload for p in covered if p.payload not in written)
            if missing:
                self.violations.append((time.time() - self.t0, shard, cp, missing))

    def run(self):
        while not self.halt.wait(self.interval_s):
            try:
                self.sample()
            except Exception as error:  # noqa: BLE001 - a failed read is counted, not fatal
                self.errors += 1
                if self.errors <= 3:
                    note(f"checkpoint audit: reading failed: {error!r}")

    def stop(self):
        """Stop sampling, take one last sample; returns self."""
        self.halt.set()
        self.join(30)
        try:
            self.sample()
        except Exception:  # noqa: BLE001
            self.errors += 1
        return self

    def check(self, ctx, name, workers=()):
        first = self.violations[0] if self.violations else None
        detail = (
            f"{self.samples} lease-table samples, {self.checked} checkpoints checked (up to "
            f"{self.passed_records} records at or before one)"
            + (f", {self.errors} failed reads" if self.errors else "")
        )
        if first:
            at, shard, cp, missing = first
            detail += (
                f"; {len(self.violations)} samples with a checkpoint past unwritten records, first at "
                f"+{at:.1f}s: {short(shard)} checkpoint ...{str(cp)[-6:]} passes {len(missing)} "
                f"record(s) in neither the sink nor the dead letters, e.g. {missing[:3]}"
            )
        return ctx.check(name, self.checked > 0 and not self.violations, detail, workers)


def _within(put, upto):
    if upto is None:
        return True
    limit = upto.get(put.shard)
    return limit is not None and (put.seq, put.sub) <= limit


def taint_checks(ctx, prefix, ledger, sinks, workers=(), upto=None):
    """Poison records dead-lettered and not in the sink, each after ATTEMPTS attempts; nothing
    else dead-lettered; flaky ones in the sink. With `upto` ({shard: (seq, sub)}) only the records at or before those
    positions are required (the others may not have been delivered yet)."""
    sunk, dead, letters = set(), set(), []
    for sink in sinks:
        sunk.update(d.payload for d in sink.deliveries()[0])
        letters += sink.dead_letters()[0]
    dead = {d.payload for d in letters}
    puts = [p for p in ledger.snapshot().values() if _within(p, upto)]
    poison = [p.payload for p in puts if p.payload.startswith(POISON)]
    flaky = [p.payload for p in puts if p.payload.startswith(FLAKY)]
    not_dead = [p for p in poison if p not in dead]
    poison_sunk = [p for p in poison if p in sunk]
    others_dead = sorted({d.payload for d in letters if not d.payload.startswith(POISON)})
    early = sorted({f"{d.payload}:{d.attempts}" for d in letters if d.attempts != ATTEMPTS})
    scope = "" if upto is None else " (at or before the checkpoints)"
    ctx.check(
        f"{prefix}-poison-dead-lettered",
        poison and not not_dead and not poison_sunk and not others_dead and not early,
        f"{len(poison)} poison records{scope}: {len(poison) - len(not_dead)} in the dead-letter files, "
        f"{len(poison_sunk)} in the sink; {len(others_dead)} records other than poison dead-lettered; "
        f"{len(letters) - len(early)}/{len(letters)} dead letters after {ATTEMPTS} attempts"
        + (f"; not dead-lettered e.g. {not_dead[:3]}" if not_dead else "")
        + (f"; dead-lettered e.g. {others_dead[:3]}" if others_dead else "")
        + (f"; after other attempt counts e.g. {early[:3]}" if early else ""),
        workers,
    )
    flaky_sunk = [p for p in flaky if p in sunk]
    flaky_dead = [p for p in flaky if p in dead]
    missing = [p for p in flaky if p not in sunk]
    ctx.check(
        f"{prefix}-flaky-retried-and-handled",
        flaky_sunk and not missing and not flaky_dead,
        f"{len(flaky)} flaky records{scope}: {len(flaky_sunk)} in the sink after a retry, {len(flaky_dead)} dead-lettered"
        + (f"; not in the sink e.g. {missing[:3]}" if missing else ""),
        workers,
    )
    return len(poison), len(flaky)


def checkpoint_lag(ctx, name, table, ledger, sinks, workers=(), deadline_s=20):
    """The `every 50 records` strategy at rest: each shard's checkpoint is the position of one of
    its records, and fewer than 50 of its records (handled or dead-lettered) come after it (a
    runtime that never checkpoints by its strategy leaves TRIM_HORIZON)."""
    seen = {}

    def settled():
        seen.clear()
        checkpoints = table.checkpoints()
        by_shard = {}
        for put in ledger.snapshot().values():
            by_shard.setdefault(put.shard, []).append(put)
        for shard, puts in by_shard.items():
            cp, sub = checkpoints.get(shard, (None, 0))
            if not (isinstance(cp, str) and cp.isdigit()):
                seen[shard] = (cp, None)
                continue
            at = (int(cp), int(sub or 0))
            if not any((p.seq, p.sub) == at for p in puts):
                seen[shard] = (cp, None)
                continue
            seen[shard] = (cp, sum(1 for p in puts if (p.seq, p.sub) > at))
        return seen and all(after is not None and after < EVERY_RECORDS for _, after in seen.values())

    ok = poll(settled, deadline_s, 0.5)
    detail = " ".join(
        f"{short(s)}:"
        + (f"...{str(cp)[-6:]}, {after} handled after it" if after is not None else f"{cp} (not a record's position)")
        for s, (cp, after) in sorted(seen.items())
    )
    return ctx.check(name, ok, f"{detail} (strategy: every {EVERY_RECORDS} records)", workers)
