"""A MultiLangDaemon child written with amazon_kclpy (the daemon's Python client, from the kclpy-ext
wheel in the e2e cache), for `kcl daemon --native` against the Java daemon: the benchmark's
amazon_kclpy children (kcl-e2e/src/bin/bench_native.rs, `--child kclpy`). Nothing in it comes from
this project's SDK. It writes what examples/file_sink writes, so the same ledger judges it:

  OUT/records-<shardId>.tsv  shard, sequence number, sub-sequence number, partition key, payload
                             (tab, newline, CR and backslash escaped), one line per record
  OUT/events.tsv             epoch_ms, pid, shard, event (initialize <position>, shutdownRequested,
                             leaseLost, shardEnded, exit 0)

Each batch's lines are written and flushed before its last record is checkpointed;
shutdownRequested and shardEnded checkpoint everything delivered.

Usage: python kclpy_sink.py OUT   (amazon_kclpy on PYTHONPATH)
"""

import atexit
import os
import sys
import time

from amazon_kclpy import kcl
from amazon_kclpy.v3 import processor

OUT = sys.argv[1] if len(sys.argv) > 1 else "out"


def escape(text):
    return (
        text.replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


class Sink(processor.RecordProcessorBase):
    def __init__(self):
        self.shard = ""
        os.makedirs(OUT, exist_ok=True)

    def event(self, what, shard=None):
        with open(os.path.join(OUT, "events.tsv"), "a") as events:
            shard = self.shard if shard is None else shard
            events.write(f"{int(time.time() * 1000)}\t{os.getpid()}\t{shard}\t{what}\n")

    def checkpoint(self, checkpointer, sequence=None, sub_sequence=None):
        try:
            checkpointer.checkpoint(sequence, sub_sequence)
        except kcl.CheckpointError as error:
            sys.stderr.write(f"kclpy_sink: {self.shard}: checkpoint failed: {error.value}\n")

    def initialize(self, initialize_input):
        self.shard = initialize_input.shard_id
        sequence = initialize_input.sequence_number
        named = {"TRIM_HORIZON": "TrimHorizon", "LATEST": "Latest", "AT_TIMESTAMP": "AtTimestamp"}
        if sequence in named:
            position = named[sequence]
        else:
            sub = initialize_input.sub_sequence_number or 0
            position = f"Checkpoint(Position({sequence}/{sub}))"
        self.event(f"initialize {position}")

    def process_records(self, process_records_input):
        records = process_records_input.records
        if not records:
            return
        lines = []
        for record in records:
            payload = record.binary_data.decode("utf-8", "replace")
            lines.append(
                f"{self.shard}\t{record.sequence_number}\t{record.sub_sequence_number or 0}\t"
                f"{escape(record.partition_key)}\t{escape(payload)}\n"
            )
        with open(os.path.join(OUT, f"records-{self.shard}.tsv"), "a") as sink:
            sink.write("".join(lines))
        last = records[-1]
        self.checkpoint(
            process_records_input.checkpointer, last.sequence_number, last.sub_sequence_number
        )

    def lease_lost(self, lease_lost_input):
        self.event("leaseLost")

    def shard_ended(self, shard_ended_input):
        self.event("shardEnded")
        self.checkpoint(shard_ended_input.checkpointer)

    def shutdown_requested(self, shutdown_requested_input):
        self.event("shutdownRequested")
        self.checkpoint(shutdown_requested_input.checkpointer)


if __name__ == "__main__":
    sink = Sink()
    atexit.register(lambda: sink.event("exit 0", shard=""))
    kcl.KCLProcess(sink).run()
