"""Kinesis side: streams, puts with a ledger of what was put, a background producer, resharding.

Every record put by the suite has a unique payload (e.g. `s1-000123`), so what a processor wrote
into its sink can be reconciled exactly against the `Ledger`: the shard and sequence number that
Kinesis returned for each put are kept too, which gives the expected last checkpoint per shard.

With `tainted=True` (the runs of examples/declared_sink) some payloads get a prefix that makes
that processor fail: `poison-s1d-000017` on every attempt (dead-lettered under `skip`),
`flaky-s1d-000005` on its first attempt only (retried, then handled).
"""

import threading
import time
from dataclasses import dataclass

from botocore.exceptions import ClientError

from emulators import client

# Answers after which a put is simply tried again (e.g. while a reshard is going on).
RETRYABLE = {"ResourceInUseException", "LimitExceededException", "ProvisionedThroughputExceededException"}


@dataclass(frozen=True)
class Put:
    """One record as Kinesis accepted it (for a KPL user record: its place in the aggregate)."""

    payload: str
    partition_key: str
    shard: str
    seq: int
    sub: int = 0


class Ledger:
    """Everything put into one stream by the suite (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records = {}  # payload -> Put

    def add(self, put):
        """Keep the first accepted put of a payload (a retry after a lost answer could put it
        twice; the sink would then show it as a duplicate delivery)."""
        with self.lock:
            self.records.setdefault(put.payload, put)

    def snapshot(self):
        with self.lock:
            return dict(self.records)

    def __len__(self):
        with self.lock:
            return len(self.records)

    def last_by_shard(self):
        """{shard: (seq, sub)} of the last record put into each shard."""
        last = {}
        for put in self.snapshot().values():
            key = (put.seq, put.sub)
            if put.shard not in last or key > last[put.shard]:
                last[put.shard] = key
        return last

    def shards(self):
        return sorted({put.shard for put in self.snapshot().values()})


def wait_active(kinesis, stream, deadline_s=30):
    end = time.time() + deadline_s
    while True:
        status = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"]
        if status == "ACTIVE":
            return
        if time.time() > end:
            raise RuntimeError(f"stream {stream} still {status} after {deadline_s} s")
        time.sleep(0.1)


def create_stream(settings, stream, shards):
    kinesis = client(settings, "kinesis")
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    wait_active(kinesis, stream)
    return kinesis


def list_shards(kinesis, stream):
    """All shards of the stream (open and closed), by shard id."""
    shards, token = [], None
    while True:
        page = kinesis.list_shards(NextToken=token) if token else kinesis.list_shards(StreamName=stream)
        shards += page["Shards"]
        token = page.get("NextToken")
        if not token:
            return {s["ShardId"]: s for s in shards}


def open_shards(kinesis, stream):
    return {k: s for k, s in list_shards(kinesis, stream).items() if "EndingSequenceNumber" not in s["SequenceNumberRange"]}


def put_entries(kinesis, stream, entries, ledger, describe):
    """put_records `entries` (dicts with Data and PartitionKey), retrying failed entries; each
    accepted entry is added to the ledger through `describe(entry, result) -> [Put]`."""
    pending = list(entries)
    attempts = 0
    while pending:
        attempts += 1
        try:
            answer = kinesis.put_records(StreamName=stream, Records=pending)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in RETRYABLE or attempts > 50:
                raise
            time.sleep(min(0.05 * attempts, 1.0))
            continue
        retry = []
        for entry, result in zip(pending, answer["Records"]):
            if "ErrorCode" in result:
                retry.append(entry)
            else:
                for put in describe(entry, result):
                    ledger.add(put)
        if retry and attempts > 50:
            raise RuntimeError(f"{len(retry)} records still refused after 50 attempts")
        pending = retry
        if retry:
            time.sleep(min(0.05 * attempts, 1.0))


def _plain(entry, result):
    data = entry["Data"].decode()
    return [Put(data, entry["PartitionKey"], result["ShardId"], int(result["SequenceNumber"]))]


POISON = "poison-"
FLAKY = "flaky-"


def payload(prefix, n, tainted=False):
    """`<prefix>-<n:06>`; tainted: 1 in 53 numbers poison, 1 in 31 flaky."""
    text = f"{prefix}-{n:06d}"
    if tainted and n % 53 == 17:
        return POISON + text
    if tainted and n % 31 == 5:
        return FLAKY + text
    return text


def put_records(kinesis, stream, ledger, prefix, start, count, batch=100, tainted=False):
    """Put `count` records with payloads `payload(prefix, n, tainted)` for n in start..start+count."""
    for first in range(start, start + count, batch):
        numbers = range(first, min(start + count, first + batch))
        entries = [
            {"Data": payload(prefix, n, tainted).encode(), "PartitionKey": f"pk-{prefix}-{n}"} for n in numbers
        ]
        put_entries(kinesis, stream, entries, ledger, _plain)
    return start + count


class Producer(threading.Thread):
    """Puts `per_put` records every `interval_s` until stopped (payloads `payload(prefix, n,
    tainted)`)."""

    def __init__(self, settings, stream, ledger, prefix, start=0, per_put=10, interval_s=0.1, tainted=False):
        super().__init__(daemon=True, name=f"producer-{prefix}")
        self.kinesis = client(settings, "kinesis")
        self.stream, self.ledger, self.prefix = stream, ledger, prefix
        self.next = start
        self.per_put, self.interval_s = per_put, interval_s
        self.tainted = tainted
        self.halt = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.halt.is_set():
                self.next = put_records(
                    self.kinesis, self.stream, self.ledger, self.prefix, self.next, self.per_put, tainted=self.tainted
                )
                self.halt.wait(self.interval_s)
        except Exception as error:  # noqa: BLE001 - reported by stop()
            self.error = error

    def stop(self):
        """Stop and return the number of the next payload (to continue the numbering)."""
        self.halt.set()
        self.join(60)
        if self.error:
            raise RuntimeError(f"producer failed: {self.error!r}")
        return self.next


def split_in_half(kinesis, stream, shard_id):
    """SplitShard at the middle of the hash range; waits until the stream is ACTIVE again."""
    shard = list_shards(kinesis, stream)[shard_id]
    low = int(shard["HashKeyRange"]["StartingHashKey"])
    high = int(shard["HashKeyRange"]["EndingHashKey"])
    kinesis.split_shard(StreamName=stream, ShardToSplit=shard_id, NewStartingHashKey=str((low + high + 1) // 2))
    wait_active(kinesis, stream)


def children_of_shard(kinesis, stream, parent_id):
    """Shards whose parent (or adjacent parent) is `parent_id`."""
    return sorted(
        sid
        for sid, s in list_shards(kinesis, stream).items()
        if parent_id in (s.get("ParentShardId"), s.get("AdjacentParentShardId"))
    )
