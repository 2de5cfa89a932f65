"""Driver of the end-to-end suite (run through scripts/e2e.sh, with the cache's Python).

    main.py [N ...]            run scenarios N: none is left here, every one moved to the Rust
                               harness (kcl-e2e/tests/daemon.rs, daemon_more.rs: `bash
                               scripts/e2e.sh rust`); without arguments it says so and exits 0
    main.py demo [EXE ARGS]    the "run it for real" demo (see demo.py)

Prints one `PASS name detail` / `FAIL name detail` line per check, a table per scenario (records
put, handled, duplicated, lost, duration) and, as its very last line, `N passed, N failed`.
Exit status 1 if any check failed.
"""

import atexit
import os
import random
import shutil
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import procs  # noqa: E402
from context import Ctx  # noqa: E402
from emulators import Emulators  # noqa: E402
from report import Report, note, out  # noqa: E402
from netstat import is_loopback  # noqa: E402
from settings import Settings  # noqa: E402

# In running order: none left. Every scenario moved to the Rust harness (kcl-e2e/tests/daemon.rs,
# daemon_more.rs).
SCENARIOS = {}
def selection(args):
    """Scenario ids in running order: `N` selects N and its declared pass Nd (if any), `Nd` only
    that pass."""
    wanted = set()
    for arg in args or SCENARIOS:
        wanted |= {arg, f"{arg}d"} & set(SCENARIOS)
    return [number for number in SCENARIOS if number in wanted]


SUITE_LOCK = None


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)


def prune_runs(settings, keep=20):
    """Keep the logs of the last `keep` runs only."""
    runs = os.path.join(settings.cache, "runs")
    folders = sorted((os.path.join(runs, n) for n in os.listdir(runs)), key=os.path.getmtime)
    for folder in folders[:-keep]:
        if folder != settings.run_dir:
            shutil.rmtree(folder, ignore_errors=True)


def prepare():
    """Settings, registry, clean-up hooks: shared by the suite and the demo."""
    settings = Settings.from_env()
    global SUITE_LOCK
    try:
        SUITE_LOCK = procs.hold_suite_lock(settings.cache)  # held until the driver exits
    except SystemExit:
        shutil.rmtree(settings.run_dir, ignore_errors=True)
        raise
    for leftover in procs.stop_leftovers(settings.cache):
        print(f"[e2e] stopped a process left by an earlier run: {leftover}", file=sys.stderr)
    prune_runs(settings)
    registry = procs.Registry(settings.run_dir)
    procs.become_subreaper()
    atexit.register(registry.cleanup)
    # Ctrl-C must raise KeyboardInterrupt even if the driver was started with SIGINT ignored
    # (background jobs of a non-interactive shell are).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    return settings, registry


def run_suite(args):
    settings, registry = prepare()
    report = Report()
    ctx = Ctx(settings, registry, report, random.Random(settings.seed))
    wanted = selection(args)
    out(f"kcl end-to-end suite: real KCL 3.1.3 MultiLangDaemon, scenarios {' '.join(wanted)}")
    out(f"run folder {settings.run_dir} (daemon, child and emulator logs); seed {settings.seed}")
    emulators = Emulators(settings, registry)
    try:
        t0 = time.time()
        emulators.start()
        addresses = emulators.addresses()
        listeners = emulators.listeners()
        everything = [item for items in listeners.values() for item in items]
        report.check(
            "setup-emulators-on-loopback-only",
            all(a == {"127.0.0.1"} for a in addresses.values())
            and all(items for items in listeners.values())
            and all(is_loopback(item.rsplit(":", 1)[0]) for item in everything),
            f"kinesis-local :{settings.kinesis_port} (tls :{settings.kinesis_tls_port}), moto_server "
            f":{settings.dynamodb_port}, listening on {sorted(set().union(*addresses.values()))}, "
            f"up in {time.time() - t0:.1f}s; every listening socket of theirs: "
            + "; ".join(f"{name} {' '.join(items) or 'none found'}" for name, items in listeners.items()),
        )
        settings.daemon_classpath()  # raises (a failed setup) when the wheel's jars are not the pinned ones
        report.check("setup-daemon-jars-are-the-pinned-ones", True, settings.jars_checked)
        for number in wanted:
            title, function = SCENARIOS[number]
            report.begin(number, title)
            before = len(ctx.workers)
            try:
                function(ctx)
            except Exception as error:  # noqa: BLE001 - one scenario's failure must not stop the rest
                report.check(f"s{number}-completed", False, f"{type(error).__name__}: {error}")
                traceback.print_exc(file=sys.stdout)
                for w in ctx.workers[before:]:
                    report.tail(w)
            finally:
                ctx.stop_workers()
                report.end()
    except (KeyboardInterrupt, SystemExit) as stop:
        why = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else f"signal (exit {stop.code})"
        report.check("suite-interrupted", False, why)
    except Exception as error:  # noqa: BLE001
        report.check("setup", False, f"{type(error).__name__}: {error}")
        traceback.print_exc(file=sys.stdout)
        for proc in (emulators.kinesis, emulators.dynamodb):
            if proc:
                report.tail(proc.log_path)
    finally:
        note("stopping everything that was started (by PID)")
        ctx.stop_workers()
        registry.cleanup()
        left = [p.name for p in registry.procs if p.running()]
        strays = registry.stray_children()
        if left or strays:
            report.check("teardown-nothing-left-running", False, f"processes={left} record-processors={strays}")
        report.summary()
    return 1 if report.failed else 0


def main(argv):
    if argv and argv[0] == "demo":
        import demo

        settings, registry = prepare()
        return demo.run(settings, registry, argv[1:])
    bad = [a for a in argv if a not in SCENARIOS]
    if bad:
        print(__doc__, file=sys.stderr)
        return 2
    if not SCENARIOS:
        print("every end-to-end scenario moved to the Rust harness: bash scripts/e2e.sh rust")
        return 0
    return run_suite(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
