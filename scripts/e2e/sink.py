"""Reading what examples/file_sink wrote, and reconciling it with the ledger of puts.

file_sink OUT_DIR writes (and so do checkpoint_on_shutdown and declared_sink, with its writers):
- `OUT_DIR/records-<shardId>.tsv`: shard, sequence number, sub-sequence number, partition key,
  payload (tab, newline, CR and backslash escaped), one line per record handled, flushed before
  each checkpoint;
- declared_sink only: `OUT_DIR/dead-letters-<shardId>.tsv`, one line per record its `on_failure`
  hook received (the dead letters of the `skip` policy): the same five fields, then the attempts
  made and the last error;
- `OUT_DIR/events.tsv`: `epoch_ms<TAB>pid<TAB>shard<TAB>event`, events `initialize <position>`,
  `shutdownRequested`, `leaseLost`, `shardEnded`, and `exit 0` (empty shard) when the process ends.

A process killed with SIGKILL can leave a torn last line; such lines are counted apart and never
taken for a record.
"""

import glob
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Delivery:
    shard: str
    seq: int
    sub: int
    partition_key: str
    payload: str
    line: int  # 0-based line number in its file (file order is delivery order for one shard)
    attempts: int = 0  # dead letters only: attempts made before on_failure got the record


@dataclass(frozen=True)
class Event:
    ms: int
    pid: int
    shard: str
    what: str

    @property
    def kind(self):
        return self.what.split(" ", 1)[0]


def _unescape(text):
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Sink:
    """One output folder of file_sink (one per worker)."""

    def __init__(self, out_dir):
        self.dir = out_dir
        os.makedirs(out_dir, exist_ok=True)

    def record_files(self):
        return sorted(glob.glob(os.path.join(self.dir, "records-*.tsv")))

    def dead_letter_files(self):
        return sorted(glob.glob(os.path.join(self.dir, "dead-letters-*.tsv")))

    def dead_letters(self):
        """(dead letters, torn line count): the records declared_sink's on_failure hook got."""
        return self._read(self.dead_letter_files(), dead=True)

    def deliveries(self):
        """(deliveries, torn line count) over all shard files."""
        return self._read(self.record_files())

    @staticmethod
    def _read(paths, dead=False):
        found, torn = [], 0
        for path in paths:
            with open(path, encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f):
                    fields = line.rstrip("\n").split("\t")
                    if (
                        not line.endswith("\n")
                        or len(fields) != (7 if dead else 5)
                        or not all(fields[i].isdigit() for i in ((1, 2, 5) if dead else (1, 2)))
                    ):
                        torn += 1
                        continue
                    shard, seq, sub, key, payload = fields[:5]
                    attempts = int(fields[5]) if dead else 0
                    found.append(Delivery(shard, int(seq), int(sub), _unescape(key), _unescape(payload), number, attempts))
        return found, torn

    def line_counts(self):
        """{file name: number of lines}: a mark to tell later deliveries from earlier ones."""
        counts = {}
        for path in self.record_files():
            with open(path, "rb") as f:
                counts[os.path.basename(path)] = sum(1 for _ in f)
        return counts

    def deliveries_since(self, mark):
        """Deliveries written after `mark` (a line_counts() result)."""
        found, _ = self.deliveries()
        return [d for d in found if d.line >= mark.get(f"records-{d.shard}.tsv", 0)]

    def events(self):
        path = os.path.join(self.dir, "events.tsv")
        if not os.path.exists(path):
            return []
        events = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 4 and parts[0].isdigit() and parts[1].isdigit():
                    events.append(Event(int(parts[0]), int(parts[1]), parts[2], parts[3]))
        return events

    def events_by_pid(self):
        grouped = {}
        for event in self.events():
            grouped.setdefault(event.pid, []).append(event)
        return grouped


@dataclass
class Tally:
    """Reconciliation of a ledger with what the sinks wrote."""

    put: int
    handled: int  # distinct records put that were written at least once
    duplicated: int  # deliveries beyond the first of records put
    lost: int  # records put that were never written
    unknown: int  # written records that were never put (must stay 0)
    torn: int
    missing_sample: list
    dead: int = 0  # distinct records put that are only in a dead-letter file (with dead_letters=True)

    def line(self):
        return (
            f"put={self.put} handled={self.handled} duplicated={self.duplicated} lost={self.lost}"
            + (f" dead-lettered={self.dead}" if self.dead else "")
            + (f" unknown={self.unknown}" if self.unknown else "")
            + (f" torn-lines={self.torn}" if self.torn else "")
        )


def tally(ledger_snapshot, sinks, dead_letters=False):
    """Compare {payload: Put} with the deliveries of all `sinks`. With `dead_letters`, a record
    in a dead-letter file is accounted for too (not lost; `dead` counts those not also handled);
    `handled` and `duplicated` stay about the record files."""
    seen = {}
    unknown = torn = 0
    for sink in sinks:
        deliveries, torn_here = sink.deliveries()
        torn += torn_here
        for d in deliveries:
            if d.payload in ledger_snapshot:
                seen[d.payload] = seen.get(d.payload, 0) + 1
            else:
                unknown += 1
    dead = set()
    if dead_letters:
        for sink in sinks:
            letters, torn_here = sink.dead_letters()
            torn += torn_here
            for d in letters:
                if d.payload in ledger_snapshot:
                    if d.payload not in seen:
                        dead.add(d.payload)
                else:
                    unknown += 1
    missing = sorted(p for p in ledger_snapshot if p not in seen and p not in dead)
    return Tally(
        put=len(ledger_snapshot),
        handled=len(seen),
        duplicated=sum(seen.values()) - len(seen),
        lost=len(missing),
        unknown=unknown,
        torn=torn,
        missing_sample=missing[:5],
        dead=len(dead),
    )


def last_handled_by_shard(sinks, dead_letters=False):
    """{shard: (seq, sub)} of the greatest position written for each shard (in a record file, or
    with `dead_letters` also in a dead-letter file)."""
    last = {}
    for sink in sinks:
        written = sink.deliveries()[0] + (sink.dead_letters()[0] if dead_letters else [])
        for d in written:
            if d.shard not in last or (d.seq, d.sub) > last[d.shard]:
                last[d.shard] = (d.seq, d.sub)
    return last
