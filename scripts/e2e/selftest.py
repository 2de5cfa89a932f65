"""Tests of the suite's own process handling (standard library only; run by scripts/test.sh):

- one run per cache folder: a second driver on the same cache refuses to start;
- leftovers of a killed run are stopped, but never the processes of a run whose driver still runs;
- a live process with a reused PID outside the run folder is never taken for a record processor;
- a listener on a non-loopback address anywhere in an emulator's process tree is seen;
- each worker's properties reach `kcl properties` through its flag or `--set` and are read back
  as written; a warning of the tool fails the worker (these two need target/debug/kcl, built by
  `cargo build -p kcl-cli`, and are skipped without it);
- the ledgers of `kcl produce --ledger` (scenario 10) are read line by line as they grow: a torn
  last line waits for its end, a record sent alone counts with sub-sequence number 0, the
  undelivered ones are kept apart (skipped where botocore, which stream.py needs, is missing).

    python3 scripts/e2e/selftest.py
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import daemon  # noqa: E402
import netstat  # noqa: E402
import procs  # noqa: E402
import settings  # noqa: E402

KCL = settings.kcl_path(os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))

HOLD_LOCK = """
import sys, time
sys.path.insert(0, sys.argv[1])
import procs
lock = procs.hold_suite_lock(sys.argv[2])
print("locked", flush=True)
time.sleep(60)
"""


def sleeper(cwd, seconds=60):
    """A process that runs `sleep` in `cwd`, in its own session (like the suite's processes),
    returned once it has exec'd (so /proc shows its own command line)."""
    proc = subprocess.Popen(["sleep", str(seconds)], cwd=cwd, start_new_session=True)
    deadline = time.time() + 5
    while procs.read_cmdline(proc.pid) != f"sleep {seconds}" and time.time() < deadline:
        time.sleep(0.01)
    return proc


def write_pid_file(run_dir, name, proc):
    pids = os.path.join(run_dir, "pids")
    os.makedirs(pids, exist_ok=True)
    with open(os.path.join(pids, f"{name}.{proc.pid}.pid"), "w") as f:
        f.write(f"{proc.pid}\n{procs.read_cmdline(proc.pid)}\n")


def write_driver_pid(run_dir, proc):
    with open(os.path.join(run_dir, "driver.pid"), "w") as f:
        f.write(f"{proc.pid}\n{procs.read_cmdline(proc.pid)}\n")


class SuiteProcesses(unittest.TestCase):
    def setUp(self):
        self.cache = tempfile.mkdtemp(prefix="kcl-e2e-selftest-")
        self.started = []

    def tearDown(self):
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        shutil.rmtree(self.cache, ignore_errors=True)

    def start(self, proc):
        self.started.append(proc)
        return proc

    def test_a_second_run_on_the_same_cache_refuses_to_start(self):
        holder = self.start(
            subprocess.Popen(
                [sys.executable, "-c", HOLD_LOCK, os.path.dirname(os.path.abspath(__file__)), self.cache],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
        self.assertEqual(holder.stdout.readline().strip(), "locked")
        with self.assertRaises(SystemExit) as refused:
            procs.hold_suite_lock(self.cache)
        self.assertIn(f"pid {holder.pid}", str(refused.exception.code))
        holder.kill()
        holder.wait()
        lock = procs.hold_suite_lock(self.cache)  # free again once the holder is gone
        lock.close()

    def test_leftovers_of_a_live_run_are_not_stopped(self):
        live_run = os.path.join(self.cache, "runs", "1")
        dead_run = os.path.join(self.cache, "runs", "2")
        os.makedirs(live_run)
        os.makedirs(dead_run)
        driver = self.start(sleeper(self.cache))  # stands for a driver still running run 1
        write_driver_pid(live_run, driver)
        gone = subprocess.Popen(["true"])
        gone.wait()
        with open(os.path.join(dead_run, "driver.pid"), "w") as f:
            f.write(f"{gone.pid}\nsomething that no longer runs\n")
        of_live = self.start(sleeper(live_run))
        of_dead = self.start(sleeper(dead_run))
        write_pid_file(live_run, "daemon-w1-1", of_live)
        write_pid_file(dead_run, "daemon-w1-1", of_dead)
        stopped = procs.stop_leftovers(self.cache)
        self.assertEqual([s.split()[0] for s in stopped], [str(of_dead.pid)])
        self.assertIsNone(of_live.poll(), "a process of a run whose driver still runs was stopped")
        self.assertEqual(of_dead.wait(5), -signal.SIGKILL)

    def test_a_reused_pid_outside_the_run_folder_is_no_record_processor(self):
        run_dir = os.path.join(self.cache, "runs", "1")
        elsewhere = os.path.join(self.cache, "elsewhere")
        os.makedirs(os.path.join(run_dir, "w1"))
        os.makedirs(elsewhere)
        registry = procs.Registry(run_dir)
        binary = shutil.which("sleep")
        inside = self.start(sleeper(os.path.join(run_dir, "w1")))
        outside = self.start(sleeper(elsewhere))
        self.assertTrue(registry.is_our_child_process(inside.pid, binary))
        self.assertFalse(registry.is_our_child_process(outside.pid, binary))

    def test_a_listener_on_every_address_is_seen_in_the_process_tree(self):
        script = (
            "import socket, subprocess, sys, time\n"
            "if sys.argv[1] == 'parent':\n"
            "    subprocess.Popen([sys.executable, __file__, 'child'])\n"
            "else:\n"
            "    s = socket.socket()\n"
            "    s.bind(('0.0.0.0', 0))\n"
            "    s.listen()\n"
            "time.sleep(60)\n"
        )
        path = os.path.join(self.cache, "listener.py")
        with open(path, "w") as f:
            f.write(script)
        loopback = socket.socket()
        loopback.bind(("127.0.0.1", 0))
        loopback.listen()
        parent = self.start(subprocess.Popen([sys.executable, path, "parent"], start_new_session=True))
        deadline = time.time() + 10
        found = []
        while time.time() < deadline and not found:
            found = netstat.listening_sockets_of(parent.pid)
            time.sleep(0.1)
        os.killpg(parent.pid, signal.SIGKILL)
        self.assertEqual(len(found), 1, found)
        self.assertTrue(found[0].startswith("0.0.0.0:"), found)
        self.assertFalse(netstat.is_loopback(found[0].rsplit(":", 1)[0]))
        mine = netstat.listening_sockets_of(os.getpid())
        self.assertEqual(mine, [f"127.0.0.1:{loopback.getsockname()[1]}"])
        self.assertTrue(netstat.is_loopback("127.0.0.1") and netstat.is_loopback("::1"))
        loopback.close()


class PropertiesFile(unittest.TestCase):
    WANTED = {
        **daemon.BASE_PROPERTIES,
        "executableName": "./child out skip",
        "streamName": "s",
        "applicationName": "s-app",
        "workerId": "w1",
        "kinesisEndpoint": "http://127.0.0.1:1",
        "dynamoDBEndpoint": "http://127.0.0.1:2",
        "workerMetricsReporterFreqInMillis": "1000",
        "shutdownGraceMillis": "10000",
    }

    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="kcl-e2e-selftest-")
        os.symlink(shutil.which("true"), os.path.join(self.folder, "child"))

    def tearDown(self):
        shutil.rmtree(self.folder, ignore_errors=True)

    def test_each_key_goes_through_its_flag_or_set(self):
        argv = daemon.properties_argv("kcl", "out.properties", self.WANTED)
        self.assertEqual(argv[:5], ["kcl", "properties", "--output", "out.properties", "--force"])
        pairs = list(zip(argv[5::2], argv[6::2]))
        self.assertEqual(len(pairs) * 2, len(argv) - 5)
        self.assertIn(("--initial-position", "trim-horizon"), pairs)
        self.assertIn(("--retrieval-mode", "polling"), pairs)
        self.assertIn(("--metrics", "none"), pairs)
        self.assertIn(("--executable", "./child out skip"), pairs)
        self.assertIn(("--set", "maxRecords=100"), pairs)
        flags = {flag for flag, _ in daemon.FLAGS.values()}
        self.assertEqual({f for f, _ in pairs} - {"--set"}, flags)

    def test_reading_back_skips_comments_and_refuses_escapes(self):
        path = os.path.join(self.folder, "kcl.properties")
        with open(path, "w") as f:
            f.write("# a comment\n! another\n\nexecutableName = ./child out\nmaxRecords=100\n")
        self.assertEqual(daemon.read_properties(path), {"executableName": "./child out", "maxRecords": "100"})
        with open(path, "a") as f:
            f.write("streamName = a\\\n  b\n")
        with self.assertRaises(ValueError):
            daemon.read_properties(path)

    @unittest.skipUnless(os.access(KCL, os.X_OK), f"{KCL} is not built (cargo build -p kcl-cli)")
    def test_kcl_properties_writes_what_the_worker_wants(self):
        self.assertEqual(daemon.write_properties(KCL, self.folder, self.WANTED), self.WANTED)
        with open(os.path.join(self.folder, "kcl.properties")) as f:
            self.assertIn("written by `kcl properties`", f.read())

    @unittest.skipUnless(os.access(KCL, os.X_OK), f"{KCL} is not built (cargo build -p kcl-cli)")
    def test_a_warning_of_kcl_properties_fails_the_worker(self):
        for change in ({"maxRecords": "0"}, {"executableName": "./missing out"}, {"maxRecord": "100"}):
            with self.subTest(change=change), self.assertRaises(RuntimeError) as failed:
                daemon.write_properties(KCL, self.folder, {**self.WANTED, **change})
            key = next(iter(change))
            self.assertIn(key if key != "executableName" else "./missing", str(failed.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
