"""The real Java MultiLangDaemon (KCL 3.1.3) as one worker of an application.

A `Worker` owns a folder `<scenario>/<worker id>/` that holds its properties file `kcl.properties`,
a symlink `child` to the record-processor binary and the sink folder `out/`. The daemon runs with
that folder as its working directory, so `executableName = ./child out` needs no absolute path
(the daemon splits executableName on spaces, so paths with spaces cannot be given there). The
same folder, workerId and sink are kept across restarts of the worker.

The properties file is written by the kcl tool, `kcl properties --output FILE --force` (crate
kcl-cli; scripts/e2e.sh builds it), from the wanted keys below: the keys it has a flag for through
that flag (`FLAGS`), every other one as `--set KEY=VALUE`. A non-zero exit or a warning of the tool
fails the worker with the tool's own words; the file is then read back into `Worker.properties`,
and must hold exactly the wanted keys and values, so the suite runs on what the daemon reads.

Property choices (all verified against the emulators, see the README section):
- `retrievalMode = POLLING`: fan-out would need SubscribeToShard over HTTP/2 event streams.
- a stable `workerId`: with the default random one, a restarted KCL 3 worker sees the dead
  worker's WorkerMetricStats row as alive and keeps handing leases back to it.
- short failover / assignment / shard-sync / parent-poll intervals, to keep scenarios fast.
- `metricsLevel = NONE`: no CloudWatch calls at all.
- `shutdownGraceMillis`: how long the SIGTERM hook waits for the graceful shutdown (default 0 =
  no graceful shutdown at all).
"""

import os
import signal
import subprocess
import time

MAIN_CLASS = "software.amazon.kinesis.multilang.MultiLangDaemon"

BASE_PROPERTIES = {
    "regionName": "us-east-1",
    "AwsCredentialsProvider": "DefaultCredentialsProvider",
    "initialPositionInStream": "TRIM_HORIZON",
    "retrievalMode": "POLLING",
    "idleTimeBetweenReadsInMillis": "250",
    "maxRecords": "100",
    "failoverTimeMillis": "3000",
    "leaseAssignmentIntervalMillis": "1000",
    "shardSyncIntervalMillis": "2000",
    "parentShardPollIntervalMillis": "1000",
    "metricsLevel": "NONE",
    "shutdownGraceMillis": "20000",
}


def _choice(value):
    """The flag spelling of a daemon enum value: TRIM_HORIZON -> trim-horizon."""
    return value.lower().replace("_", "-")


# The keys `kcl properties` has a flag for: key -> (flag, the flag's spelling of the value).
# Every other key goes through `--set KEY=VALUE`.
FLAGS = {
    "streamName": ("--stream", str),
    "applicationName": ("--application", str),
    "executableName": ("--executable", str),
    "regionName": ("--region", str),
    "kinesisEndpoint": ("--kinesis-endpoint", str),
    "dynamoDBEndpoint": ("--dynamodb-endpoint", str),
    "initialPositionInStream": ("--initial-position", _choice),
    "retrievalMode": ("--retrieval-mode", _choice),
    "metricsLevel": ("--metrics", _choice),
    "AwsCredentialsProvider": ("--credentials-provider", str),
    "workerId": ("--worker-id", str),
    "shutdownGraceMillis": ("--shutdown-grace-millis", str),
}


def properties_argv(kcl, path, wanted):
    """The `kcl properties` command line that writes the keys and values of `wanted` to `path`."""
    argv = [kcl, "properties", "--output", path, "--force"]
    for key, value in wanted.items():
        if key in FLAGS:
            flag, spell = FLAGS[key]
            argv += [flag, spell(value)]
        else:
            argv += ["--set", f"{key}={value}"]
    return argv


def read_properties(path):
    """The `key = value` (or `key=value`) lines of a properties file, as a dict; blank lines and
    `#` / `!` comments are skipped. Enough for the plain files `kcl properties` writes here: a
    line without `=`, or with a `\\` escape or continuation, raises ValueError."""
    props = {}
    with open(path, encoding="latin-1") as f:  # the daemon reads ISO-8859-1
        for number, line in enumerate(f, 1):
            text = line.strip()
            if not text or text[0] in "#!":
                continue
            key, sep, value = text.partition("=")
            if not sep or "\\" in text:
                raise ValueError(f"{path}:{number}: not a plain `key = value` line: {line!r}")
            props[key.strip()] = value.strip()
    return props


def write_properties(kcl, folder, wanted):
    """Writes `<folder>/kcl.properties` with `kcl properties` (run in `folder`, the daemon's
    working directory, so the tool checks that the relative executableName exists there) and
    returns the keys and values read back from the file. Raises RuntimeError, with the tool's
    stderr, when it is not built, exits non-zero, warns, or wrote other keys or values."""
    path = os.path.join(folder, "kcl.properties")
    if not os.access(kcl, os.X_OK):
        raise RuntimeError(f"{kcl} is missing: build it with `cargo build -p kcl-cli` (scripts/e2e.sh does)")
    argv = properties_argv(kcl, path, wanted)
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True)
    stderr = done.stderr.strip()
    if done.returncode != 0 or "warning:" in stderr:
        raise RuntimeError(f"kcl properties for {folder}: exit {done.returncode}: {stderr}")
    written = read_properties(path)
    if written != wanted:
        wrong = sorted(
            f"{key}: wanted {wanted.get(key)!r}, written {written.get(key)!r}"
            for key in set(wanted) | set(written)
            if wanted.get(key) != written.get(key)
        )
        raise RuntimeError(f"kcl properties wrote {path} with other values: {'; '.join(wrong)}")
    return written


class Worker:
    """One workerId of an application, startable several times."""

    def __init__(self, settings, registry, *, folder, app, stream, worker_id, binary, args=("out",), extra=None):
        self.settings = settings
        self.registry = registry
        self.folder = folder
        self.worker_id = worker_id
        self.binary = binary
        self.out_dir = os.path.join(folder, "out")
        self.proc = None
        self.starts = 0
        self.started_ms = 0  # when the current (or last) daemon was started, epoch ms
        self.history = []  # every Proc of this worker
        os.makedirs(self.out_dir, exist_ok=True)
        link = os.path.join(folder, "child")
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(os.path.abspath(binary), link)
        props = dict(BASE_PROPERTIES)
        props.update(
            executableName=" ".join(["./child", *args]),
            streamName=stream,
            applicationName=app,
            workerId=worker_id,
            kinesisEndpoint=settings.kinesis_endpoint,
            dynamoDBEndpoint=settings.dynamodb_endpoint,
        )
        props.update(extra or {})
        self.properties = write_properties(settings.kcl, folder, props)  # what the file holds

    @property
    def grace_s(self):
        return int(self.properties["shutdownGraceMillis"]) / 1000

    def start(self):
        """Start the daemon JVM (one at a time per worker)."""
        if self.running():
            raise RuntimeError(f"{self.worker_id} is already running")
        self.starts += 1
        self.started_ms = int(time.time() * 1000)
        s = self.settings
        argv = [
            s.java,
            *s.java_opts,
            "-cp",
            # Only the verified, pinned jars: no folder a file could be planted in, and an
            # absolute properties path (the daemon tries a classpath resource first).
            s.daemon_classpath(),
            MAIN_CLASS,
            "--properties-file",
            os.path.join(self.folder, "kcl.properties"),
        ]
        self.proc = self.registry.spawn(
            f"daemon-{self.worker_id}-{self.starts}",
            argv,
            cwd=self.folder,
            env=s.process_env(),
            log_path=os.path.join(self.folder, f"daemon-{self.starts}.log"),
            role="daemon",
        )
        self.proc.child_binary = self.binary  # lets the registry recognise its children at clean-up
        self.history.append(self.proc)
        return self.proc

    def running(self):
        return self.proc is not None and self.proc.running()

    def children(self):
        """Live record-processor PIDs of the running daemon (remembered by the registry)."""
        if not self.running():
            return []
        return self.registry.note_children(self.proc.pid, self.binary)

    def sigterm(self, deadline_s=None):
        """SIGTERM the daemon and wait for it; (exit code or None, seconds taken)."""
        t0 = time.time()
        kids = self.children()
        os.kill(self.proc.pid, signal.SIGTERM)
        code = self.proc.wait(deadline_s if deadline_s is not None else self.grace_s + 20)
        if code is not None:
            self.registry.forget(self.proc)
        for pid in kids:
            self.registry.reaper.poll(pid)
        return code, time.time() - t0

    def kill9(self):
        """SIGKILL the daemon JVM; returns the child PIDs it had just before."""
        kids = self.children()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.registry.forget(self.proc)
        return kids

    def wait_exit(self, deadline_s):
        code = self.proc.wait(deadline_s)
        if code is not None:
            self.registry.forget(self.proc)
        return code

    def stop_quietly(self):
        """Stop by PID without checks (scenario clean-up): SIGTERM, then SIGKILL."""
        if self.running():
            self.children()
            self.registry.stop(self.proc, signal.SIGTERM, self.grace_s + 10)

    def incarnation_children(self):
        """PIDs of every record processor the current (or last) daemon started, from the
        `initialize` events in the sink (also those started while it was shutting down)."""
        from sink import Sink

        return sorted(
            {e.pid for e in Sink(self.out_dir).events() if e.kind == "initialize" and e.ms >= self.started_ms}
        )

    def log_path(self):
        return self.proc.log_path if self.proc else None

    def log_tail(self, lines=40):
        return self.proc.log_tail(lines) if self.proc else ""


def wait_processes_gone(registry, pids, deadline_s):
    """Poll until none of `pids` runs; returns the ones still running at the deadline."""
    end = time.time() + deadline_s
    while True:
        left = [pid for pid in pids if registry.reaper.alive(pid)]
        if not left or time.time() > end:
            return left
        time.sleep(0.1)

