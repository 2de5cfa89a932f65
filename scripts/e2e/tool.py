"""Scenario 8: the `kcl` command-line tool (crate kcl-cli) drives the real daemon.

The worker folder and properties file are the usual ones (daemon.Worker), but the daemon is
started as `kcl daemon --properties FILE --jars JARS --java JAVA` and the records are put with
`kcl put --word ...` (dummy credentials: only an --endpoint is given). The process tree is then
driver -> kcl -> java (MultiLangDaemon, its own process group) -> ./child (file_sink).

Asserted: `kcl put` reports a shard and sequence number for each word; every word reaches the
sink once; the lease checkpoint of each shard is the last sequence number `kcl put` reported for
it; SIGTERM sent to `kcl` (only to it) is forwarded: each child gets `shutdownRequested` then
`leaseLost` and exits 0, `kcl daemon` exits with the daemon's status 143 within the grace period,
and neither the JVM nor a child is left running.
"""

import os
import shutil
import signal
import time

import daemon
import procs
from context import now_ms, poll, short
from sink import Sink, tally
from stream import Ledger, Put, create_stream

WORDS = [f"w{n:02d}-{word}" for n, word in enumerate(
    "amber basil cedar delta ember fjord garnet harbor indigo jasper kelp lantern meadow nectar onyx "
    "pepper quartz raven saffron tundra umber violet willow xenon yarrow zephyr acorn bramble canyon "
    "dune estuary fern glacier heron iris juniper kestrel lichen marrow nimbus orchid pebble quill "
    "ridge sorrel thistle upland vale wren yew".split()
)]


def kcl_binary(settings):
    """target/debug/kcl (cargo build -p kcl-cli)."""
    return settings.kcl


def java_on_path(settings):
    return shutil.which(settings.java) or settings.java


class KclDaemonWorker(daemon.Worker):
    """A Worker whose daemon is started through `kcl daemon`; self.proc is the kcl process,
    the JVM is its child and the record processors are the JVM's children."""

    jvm_pid = None
    jvm_pid_file = None

    def start(self):
        if self.running():
            raise RuntimeError(f"{self.worker_id} is already running")
        self.starts += 1
        self.started_ms = now_ms()
        s = self.settings
        argv = [
            kcl_binary(s),
            "daemon",
            "--properties",
            os.path.join(self.folder, "kcl.properties"),
            "--jars",
            s.jars,
            "--java",
            java_on_path(s),
            *(f"--java-opt={opt}" for opt in s.java_opts),
        ]
        self.proc = self.registry.spawn(
            f"kcl-daemon-{self.worker_id}-{self.starts}",
            argv,
            cwd=self.folder,
            env=s.process_env(),
            log_path=os.path.join(self.folder, f"kcl-daemon-{self.starts}.log"),
            role="daemon",
        )
        self.history.append(self.proc)
        return self.proc

    def find_jvm(self, deadline_s=30):
        """The JVM `kcl daemon` started (its child running MultiLangDaemon); its PID is written
        into the run's pids folder too, so a later run stops it if this one is killed hard."""

        def jvm():
            if not self.running():
                return None
            for pid in procs.children_of(self.proc.pid):
                if daemon.MAIN_CLASS in procs.read_cmdline(pid):
                    return pid
            return None

        pid = poll(jvm, deadline_s, 0.1)
        if pid:
            self.jvm_pid = pid
            self.jvm_pid_file = os.path.join(self.registry.pid_dir, f"jvm-{self.worker_id}.{pid}.pid")
            with open(self.jvm_pid_file, "w") as f:
                f.write(f"{pid}\n{procs.read_cmdline(pid)}\n")
        return pid

    def jvm_alive(self):
        return bool(self.jvm_pid) and self.registry.reaper.alive(self.jvm_pid)

    def children(self):
        """Live record-processor PIDs (children of the JVM, grandchildren of kcl)."""
        if not self.jvm_alive():
            return []
        return self.registry.note_children(self.jvm_pid, self.binary)

    def stop_quietly(self):
        """SIGTERM kcl (it forwards it), then SIGKILL; then the JVM by its PID if it survived."""
        self.children()
        if self.running():
            self.registry.stop(self.proc, signal.SIGTERM, self.grace_s + 10)
        self.stop_jvm()

    def stop_jvm(self):
        if self.jvm_alive():
            try:
                os.kill(self.jvm_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            daemon.wait_processes_gone(self.registry, [self.jvm_pid], 10)
        if self.jvm_pid_file and not self.jvm_alive():
            try:
                os.remove(self.jvm_pid_file)
            except OSError:
                pass


def kcl_put(ctx, stream_name, words, folder):
    """Run `kcl put` once (recorded by PID like every process); (exit code, ledger, log path)."""
    s = ctx.settings
    argv = [kcl_binary(s), "put", "--stream", stream_name, "--endpoint", s.kinesis_endpoint,
            "--region", "us-east-1", "--count", "1"]
    for word in words:
        argv += ["--word", word]
    env = s.process_env()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # let kcl use its dummy credentials
        env.pop(key, None)
    log_path = os.path.join(folder, "kcl-put.log")
    proc = ctx.registry.spawn("kcl-put", argv, cwd=folder, env=env, log_path=log_path, role="tool")
    code = proc.wait(120)
    if code is None:
        ctx.registry.stop(proc, signal.SIGTERM, 5)
    ctx.registry.forget(proc)
    ledger = Ledger()
    with open(log_path, errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) == 3 and fields[0].startswith("shardId-") and fields[1].isdigit():
                ledger.add(Put(fields[2], fields[2], fields[0], int(fields[1])))
    return code, ledger, log_path


def scenario_8(ctx):
    stream_name, app = ctx.names(8)
    create_stream(ctx.settings, stream_name, 2)
    worker = KclDaemonWorker(
        ctx.settings,
        ctx.registry,
        folder=ctx.folder(8, "s8-worker-1"),
        app=app,
        stream=stream_name,
        worker_id="s8-worker-1",
        binary=ctx.settings.example("file_sink"),
    )
    ctx.workers.append(worker)
    out = Sink(worker.out_dir)

    # 1. kcl put: one record per word, one line `shard<TAB>sequence<TAB>word` each.
    code, ledger, put_log = kcl_put(ctx, stream_name, WORDS, worker.folder)
    counts = {}
    for put in ledger.snapshot().values():
        counts[put.shard] = counts.get(put.shard, 0) + 1
    ctx.report.check(
        "s8-kcl-put",
        code == 0 and set(ledger.snapshot()) == set(WORDS) and len(counts) == 2,
        f"exit={code} {len(ledger)}/{len(WORDS)} words reported into "
        + ", ".join(f"{short(s)}={n}" for s, n in sorted(counts.items())),
        logs=[put_log],
    )

    # 2. kcl daemon: the JVM under it, then its children on both shards.
    started = now_ms()
    worker.start()
    jvm = worker.find_jvm()
    inits = ctx.wait_initialized(worker, ledger.shards() or ["shardId-000000000000"], started, 150)
    ctx.check(
        "s8-kcl-daemon-runs-the-daemon",
        jvm is not None and len(inits) == 2,
        f"kcl pid {worker.proc.pid} -> java pid {jvm} -> {len(inits)} children initialized "
        f"{(min((e.ms for e in inits.values()), default=started) - started) / 1000:.1f}s after start",
        [worker],
    )

    # 3. Data: every word in the sink, once; checkpoints = last sequence number per shard.
    result = ctx.wait_handled(ledger, [out], 90)
    payloads = {d.payload for d in out.deliveries()[0]}
    ctx.check(
        "s8-every-word-handled",
        payloads == set(WORDS) and result.lost == 0 and result.unknown == 0,
        result.line() + (f" missing={result.missing_sample}" if result.missing_sample else ""),
        [worker],
    )
    ctx.check("s8-no-duplicates", result.duplicated == 0, f"duplicated={result.duplicated}", [worker])
    table = ctx.leases(app)
    expected = ledger.last_by_shard()
    ok, seen = ctx.checkpoints_match(table, expected)
    ctx.check(
        "s8-checkpoint-is-last-sequence-number",
        ok and len(expected) == 2,
        " ".join(
            f"{short(s)}:...{str(seq)[-6:]}/{sub}" + ("=" if seen.get(s) == (str(seq), sub) else f" != stored {seen.get(s)}")
            for s, (seq, sub) in sorted(expected.items())
        ),
        [worker],
    )
    ctx.row(result)

    # 4. SIGTERM to kcl only: forwarded to the JVM, which shuts its children down gracefully.
    if not ctx.check("s8-kcl-daemon-still-running", worker.running() and worker.jvm_alive(), "", [worker]):
        worker.stop_quietly()
        return
    kids = worker.children()
    jvm = worker.jvm_pid
    sent = now_ms()
    code, took = worker.sigterm()
    sequences = {}
    for pid, events in out.events_by_pid().items():
        if pid in kids:
            sequences[pid] = [e.what.split(" ")[0] if e.kind != "exit" else e.what for e in events if e.ms >= sent]
    ctx.check(
        "s8-sigterm-forwarded-shutdownRequested-then-leaseLost",
        len(kids) == 2 and all(sequences.get(pid) == ["shutdownRequested", "leaseLost", "exit 0"] for pid in kids),
        " ".join(f"{pid}:{'>'.join(sequences.get(pid, []))}" for pid in kids),
        [worker],
    )
    ctx.check(
        "s8-kcl-daemon-exits-within-grace",
        code == 143 and took < worker.grace_s,
        f"kcl exit={code} after {took:.1f}s (grace {worker.grace_s:.0f}s)",
        [worker],
    )
    left = daemon.wait_processes_gone(ctx.registry, [jvm, *kids], 15)
    strays = poll(lambda: not ctx.strays(worker), 10) or ctx.strays(worker)
    strays = [] if strays is True else strays
    ctx.check(
        "s8-nothing-left-running",
        not left and not strays and not worker.running(),
        f"java {jvm} and children {kids} gone" if not left and not strays else f"still running={left + strays}",
        [worker],
    )
    worker.stop_quietly()  # no-op unless a check above failed
