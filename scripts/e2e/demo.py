"""`scripts/e2e.sh demo [EXECUTABLE ARGS...]`: watch a processor consume a local stream through
the real daemon, in one command.

Starts both emulators on 127.0.0.1, creates a 2-shard stream, puts 20 lines of text, runs the
real KCL MultiLangDaemon with EXECUTABLE (default: the word_count example) as its child until
the lease table shows every record checkpointed (or 90 s passed), then stops the daemon with
SIGTERM, prints the lease table and stops everything. While it runs, it shows the child's own
log lines (its stderr, which the daemon copies into its log) and the daemon's milestones.
"""

import os
import re
import shutil
import threading
import time

from context import poll
from daemon import Worker
from emulators import Emulators
from leases import Leases
from stream import Ledger, Put, create_stream, put_entries

TEXT = """The Kinesis Client Library leases shards in DynamoDB
and starts one child process per shard lease
the child reads JSON lines on stdin and answers on stdout
this child is written in Rust with the kcl crate
every batch is checkpointed at its last record
so a restart resumes where the processor stopped
a shard that is split or merged ends with shardEnded
its children start only after the parent is done
SIGTERM asks every processor to checkpoint and stop
then the daemon hands the leases back and exits
records here come from a local Kinesis emulator
the lease table lives in a local DynamoDB emulator
nothing leaves this machine everything binds to loopback
word counts appear in the child log lines below
twenty lines of sample text make twenty records
each record carries its own partition key
the partition key decides the shard of a record
two shards means two child processes
the daemon restarts nothing it only reports
this is the last line of the sample text"""

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[")
MILESTONES = [
    (re.compile(r"is initiating the lease sync"), "daemon: first start of this application, creating one lease per shard"),
    (re.compile(r"New leases assigned to worker : \S+, count : [1-9]\d*, leases : \[(.*)\]"), "daemon: leases assigned to this worker: {0}"),
    (re.compile(r"Writing InitializeMessage to child process for shard (\S+)"), "daemon: started a child for {0} (initialize)"),
    (re.compile(r"Process terminated, will initiate shutdown"), "daemon: SIGTERM received, graceful shutdown"),
    (re.compile(r"Writing ShutdownRequestedMessage to child process for shard (\S+)"), "daemon: shutdownRequested -> child of {0}"),
    (re.compile(r"Writing LeaseLostMessage to child process for shard (\S+)"), "daemon: leaseLost -> child of {0}"),
    (re.compile(r"Child process exited with value: (\d+)"), "daemon: a child exited with status {0}"),
]


def say(text):
    print(text, flush=True)


class LogFollower(threading.Thread):
    """Prints the interesting lines of a daemon log while it grows."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.halt = threading.Event()

    def run(self):
        while not os.path.exists(self.path) and not self.halt.is_set():
            time.sleep(0.1)
        with open(self.path, errors="replace") as log:
            while True:
                line = log.readline()
                if not line:
                    if self.halt.is_set():
                        return
                    time.sleep(0.1)
                    continue
                self.show(line.rstrip("\n"))

    def show(self, line):
        if not line.strip() or line.startswith(("\t", " ")) or line.startswith(("Caused by", "java.", "software.")):
            return
        if not STAMP.match(line):
            say(f"   child | {line}")  # the child's stderr, copied raw by the daemon
            return
        for pattern, template in MILESTONES:
            match = pattern.search(line)
            if match:
                say(f"  {template.format(*match.groups())}")
                return

    def stop(self):
        time.sleep(0.5)
        self.halt.set()
        self.join(5)


def run(settings, registry, args):
    command = args or [settings.example("word_count")]
    exe = command[0]
    exe = os.path.abspath(exe) if os.sep in exe else (shutil.which(exe) or exe)
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        say(f"demo: {exe} is not an executable file (build it first, e.g. cargo build --example word_count)")
        return 2
    if any(" " in a or "\t" in a for a in command):
        say("demo: the daemon splits its command line on spaces, so arguments cannot contain spaces")
        return 2
    stream_name = f"demo-{settings.run_id}"
    app = f"{stream_name}-app"
    emulators = Emulators(settings, registry)
    worker = None
    follower = None
    try:
        say(f"1. Starting the Kinesis emulator (kinesis-local, 127.0.0.1:{settings.kinesis_port}) and the "
            f"DynamoDB emulator (moto_server, 127.0.0.1:{settings.dynamodb_port}).")
        emulators.start()
        say(f"2. Creating the stream '{stream_name}' with 2 shards and putting 20 lines of text, one record each.")
        kinesis = create_stream(settings, stream_name, 2)
        ledger = Ledger()
        lines = TEXT.splitlines()
        put_entries(
            kinesis,
            stream_name,
            [{"Data": line.encode(), "PartitionKey": f"line-{i}"} for i, line in enumerate(lines)],
            ledger,
            lambda e, r: [Put(e["Data"].decode(), e["PartitionKey"], r["ShardId"], int(r["SequenceNumber"]))],
        )
        counts = {}
        for put in ledger.snapshot().values():
            counts[put.shard] = counts.get(put.shard, 0) + 1
        say("   " + ", ".join(f"{n} records in {s}" for s, n in sorted(counts.items())))
        worker = Worker(
            settings,
            registry,
            folder=os.path.join(settings.run_dir, "demo"),
            app=app,
            stream=stream_name,
            worker_id="demo-worker",
            binary=exe,
            args=command[1:],
        )
        say("3. Starting the real KCL 3.1.3 MultiLangDaemon (Java) with your processor as its child:")
        say(f"   executableName = {' '.join([exe, *command[1:]])}")
        say("   A new application waits a random 1-30 s before it takes its first leases; please wait.")
        worker.start()
        follower = LogFollower(worker.proc.log_path)
        follower.start()
        table = Leases(settings, app)
        expected = ledger.last_by_shard()

        def all_checkpointed():
            seen = table.checkpoints()
            return all(seen.get(s) == (str(seq), sub) for s, (seq, sub) in expected.items())

        started = time.time()
        done = poll(lambda: all_checkpointed() or not worker.running(), 120, 0.5) and all_checkpointed()
        if done:
            say(f"4. All {len(ledger)} records were processed and checkpointed "
                f"({time.time() - started:.0f} s after the daemon started).")
        elif not worker.running():
            say(f"4. The daemon exited with status {worker.proc.popen.returncode} (see {worker.proc.log_path}).")
        else:
            say("4. Not every record was checkpointed within 120 s (does your processor checkpoint?).")
        if worker.running():
            say("5. Stopping the daemon with SIGTERM: each child gets shutdownRequested, then leaseLost.")
            code, took = worker.sigterm()
            say(f"   The daemon exited with status {code} after {took:.1f} s.")
        follower.stop()
        say(f"6. The lease table (DynamoDB table '{app}'): one row per shard, checkpoint = last sequence number.")
        for line in table.describe():
            say(f"   {line}")
        say(f"7. Stopping the emulators. Logs: {settings.run_dir}")
        return 0 if done else 1
    finally:
        if follower and follower.is_alive():
            follower.halt.set()
        if worker and worker.running():
            worker.stop_quietly()
        registry.cleanup()
