"""Processes: start them with a log and a PID file, find their children, stop them by PID.

Rules this module enforces for the whole suite:
- every process the driver starts is registered here, its PID written to `<run>/pids/<name>.pid`
  together with its command line, and is stopped by that PID (never by name);
- the driver is a "child subreaper" (Linux prctl), so the record processors of a daemon that was
  killed with SIGKILL are re-parented to the driver instead of init: the driver can then reap
  them and read their exit status;
- at exit (normal end, failure, Ctrl-C, SIGTERM) `Registry.cleanup` stops what is still running:
  daemons first, then any record-processor process seen during the run, then the emulators;
- one run at a time per cache folder: the driver holds an exclusive lock on `<cache>/e2e.lock`
  for its whole life (a second suite or demo on the same cache refuses to start), and only while
  holding it are leftovers of an earlier run that was itself killed stopped (its PID files are
  still there, its driver, recorded in `<run>/driver.pid`, is gone, and the process with that PID
  still has the recorded command line);
- a record processor is recognised by its binary or `./child` command line AND a working
  directory inside this run's folder, so a reused PID is never taken for one.
"""

import ctypes
import fcntl
import glob
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Make orphaned descendants re-parent to this process (Linux only; best effort)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def read_cmdline(pid):
    """The command line of a live process as one string ('' if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def read_cwd(pid):
    try:
        return os.path.realpath(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return ""


def is_within(path, folder):
    """Is `path` `folder` itself or inside it (both real paths)?"""
    folder = os.path.realpath(folder)
    return bool(path) and (path == folder or path.startswith(folder + os.sep))


def hold_suite_lock(cache):
    """Take the cache's run lock for the life of this process (the returned file must stay
    open); exit with a clear message if another run of the suite holds it."""
    path = os.path.join(cache, "e2e.lock")
    lock = open(path, "a+")  # not inherited by the processes the driver starts (PEP 446)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise SystemExit(
            f"[e2e] another run of the suite (pid {holder}) is using {cache}: wait for it, or set "
            f"KCL_E2E_CACHE to another folder (its ports must differ too: KCL_E2E_*_PORT)"
        )
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def read_exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def find_processes(binary, cwd=None):
    """Live PIDs running `binary` (matched by /proc/PID/exe), optionally only those whose
    working directory is `cwd` (a daemon's children inherit its working directory)."""
    want = os.path.realpath(binary)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if read_exe(pid) != want or state_of(pid) in (None, "Z"):
            continue
        if cwd is not None:
            try:
                if os.path.realpath(os.readlink(f"/proc/{pid}/cwd")) != os.path.realpath(cwd):
                    continue
            except OSError:
                continue
        found.append(pid)
    return sorted(found)


def parent_of(pid):
    """The parent PID of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1])


def state_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def children_of(pid):
    """PIDs of the live direct children of `pid`."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and parent_of(int(entry)) == pid and state_of(int(entry)) != "Z":
            kids.append(int(entry))
    return sorted(kids)


class Reaper:
    """Collects exit statuses of processes re-parented to the driver (see become_subreaper)."""

    def __init__(self):
        self.statuses = {}

    def poll(self, pid):
        """Reap `pid` if it is our child and has exited; return its exit code (or -signal)."""
        if pid in self.statuses:
            return self.statuses[pid]
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done == 0:
            return None
        code = os.waitstatus_to_exitcode(status)
        self.statuses[pid] = code
        return code

    def alive(self, pid):
        """True while the process runs (a zombie counts as gone)."""
        self.poll(pid)
        if pid in self.statuses:
            return False
        state = state_of(pid)
        return state is not None and state != "Z"


class Proc:
    """One process started by the driver."""

    def __init__(self, name, popen, log_path, pid_file, role):
        self.name = name
        self.popen = popen
        self.pid = popen.pid
        self.log_path = log_path
        self.pid_file = pid_file
        self.role = role
        self.started = time.time()

    def running(self):
        return self.popen.poll() is None

    def wait(self, timeout):
        """Exit code, or None if still running after `timeout` seconds."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


class Registry:
    """Every process of the run, so that none is left behind."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.pid_dir = os.path.join(run_dir, "pids")
        os.makedirs(self.pid_dir, exist_ok=True)
        with open(os.path.join(run_dir, "driver.pid"), "w") as f:
            f.write(f"{os.getpid()}\n{read_cmdline(os.getpid())}\n")
        self.procs = []
        self.reaper = Reaper()
        # Record-processor processes seen during the run: pid -> the binary they run.
        self.children = {}
        self.cleaned = False

    def spawn(self, name, argv, *, cwd, env, log_path, role):
        """Start `argv` with stdout and stderr into `log_path`, in its own session (so a Ctrl-C
        in the terminal reaches only the driver, which then stops everything by PID)."""
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        log = open(log_path, "ab")
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        pid_file = os.path.join(self.pid_dir, f"{name}.{popen.pid}.pid")
        with open(pid_file, "w") as f:
            f.write(f"{popen.pid}\n{read_cmdline(popen.pid) or ' '.join(argv)}\n")
        proc = Proc(name, popen, log_path, pid_file, role)
        self.procs.append(proc)
        return proc

    def forget(self, proc):
        if proc.popen.poll() is not None:
            try:
                os.remove(proc.pid_file)
            except OSError:
                pass

    def stop(self, proc, sig=signal.SIGTERM, timeout=10.0):
        """Signal `proc` by its PID, wait up to `timeout` s, then SIGKILL. Returns the exit code."""
        if proc.popen.poll() is None:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
            code = proc.wait(timeout)
            if code is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.popen.wait()
        self.forget(proc)
        return proc.popen.returncode

    def note_children(self, daemon_pid, binary):
        """Remember the current children of a daemon (to check and stop them later)."""
        kids = children_of(daemon_pid)
        for pid in kids:
            self.children.setdefault(pid, binary)
        return kids

    def is_our_child_process(self, pid, binary):
        """Still the record processor we saw (guards against PID reuse)?"""
        exe = read_exe(pid)
        # The daemon runs it as ./child (a symlink to the binary in the worker folder); a script
        # shows its interpreter as exe, so the command line is checked too.
        return (
            self.reaper.alive(pid)
            and is_within(read_cwd(pid), self.run_dir)
            and (os.path.realpath(binary) == exe or read_cmdline(pid).startswith("./child"))
        )

    def stray_children(self):
        """Record processors seen during the run that are still alive."""
        return [pid for pid, binary in self.children.items() if self.is_our_child_process(pid, binary)]

    def cleanup(self, keep_roles=()):
        """Stop everything still running, by PID: daemons, record processors, then emulators."""
        if self.cleaned:
            return
        self.cleaned = True
        for role in ("daemon", "emulator"):
            if role in keep_roles:
                continue
            for proc in reversed(self.procs):
                if proc.role != role or proc.popen.poll() is not None:
                    self.forget(proc)
                    continue
                if role == "daemon" and getattr(proc, "child_binary", None):
                    self.note_children(proc.pid, proc.child_binary)
                self.stop(proc, signal.SIGTERM, 8.0 if role == "daemon" else 5.0)
            if role == "daemon":
                self._stop_strays()

    def _stop_strays(self):
        deadline = time.time() + 5
        while self.stray_children() and time.time() < deadline:
            time.sleep(0.1)
        for pid in self.stray_children():
            print(f"[e2e] stopping record processor pid {pid} left by a daemon", file=sys.stderr)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.reaper.poll(pid)


def driver_alive(run_dir):
    """Is the driver that made `run_dir` still running (its PID with its command line)?"""
    try:
        with open(os.path.join(run_dir, "driver.pid")) as f:
            pid_text, cmdline = (f.read().split("\n", 1) + [""])[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return False
    return pid != os.getpid() and bool(cmdline.strip()) and read_cmdline(pid) == cmdline.strip()


def stop_leftovers(cache):
    """Stop processes of earlier runs whose PID files remain (the run was killed hard), if the
    PID still runs the recorded command line and the run's driver is gone. Call it only while
    holding the suite lock (hold_suite_lock). Returns what was stopped."""
    stopped = []
    for pid_file in glob.glob(os.path.join(cache, "runs", "*", "pids", "*.pid")):
        if driver_alive(os.path.dirname(os.path.dirname(pid_file))):
            continue  # its driver still runs: not a leftover
        try:
            with open(pid_file) as f:
                pid_text, cmdline = (f.read().split("\n", 1) + [""])[:2]
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        cmdline = cmdline.strip()
        if cmdline and read_cmdline(pid) == cmdline:
            try:
                os.kill(pid, signal.SIGKILL)
                stopped.append(f"{pid} ({cmdline[:80]})")
            except ProcessLookupError:
                pass
        try:
            os.remove(pid_file)
        except OSError:
            pass
    # Wait until they are really gone (a zombie holds no port any more).
    deadline = time.time() + 10
    while time.time() < deadline and any(state_of(int(s.split()[0])) not in (None, "Z") for s in stopped):
        time.sleep(0.1)
    return stopped
