"""A counting processor on amazon_kclpy 3.2.0 (its v3 API), equivalent to examples/byte_count:
decode every payload, count records and bytes, checkpoint at the last record of each batch.
Run with the unpacked amazon_kclpy sdist on PYTHONPATH (the child side needs no jars)."""
import sys

from amazon_kclpy import kcl
from amazon_kclpy.v3 import processor


class Counter(processor.RecordProcessorBase):
    def __init__(self):
        self.records = 0
        self.bytes = 0

    def initialize(self, initialize_input):
        pass

    def process_records(self, process_records_input):
        last = None
        for record in process_records_input.records:
            self.bytes += len(record.binary_data)
            self.records += 1
            last = record
        if last is not None:
            process_records_input.checkpointer.checkpoint(last.sequence_number, last.sub_sequence_number)

    def lease_lost(self, lease_lost_input):
        sys.stderr.write(f"kclpy-counter: {self.records} records, {self.bytes} bytes\n")

    def shard_ended(self, shard_ended_input):
        shard_ended_input.checkpointer.checkpoint()

    def shutdown_requested(self, shutdown_requested_input):
        shutdown_requested_input.checkpointer.checkpoint()


if __name__ == "__main__":
    kcl.KCLProcess(Counter()).run()
