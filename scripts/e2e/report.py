"""Checks, per-scenario results and the closing summary.

One check = one line `PASS name detail` or `FAIL name detail`. A failed check can name the logs
that explain it (daemon logs); their tails are printed under the FAIL line. The very last line of
a run is `N passed, N failed`.
"""

import sys
import time
from dataclasses import dataclass, field


def out(text=""):
    print(text, flush=True)


def note(text):
    """Progress information (not a check)."""
    print(f"  .. {text}", flush=True)


@dataclass
class Row:
    number: int
    title: str
    put: int = 0
    handled: int = 0
    duplicated: int = 0
    lost: int = 0
    seconds: float = 0.0
    passed: int = 0
    failed: int = 0
    remark: str = ""


@dataclass
class Report:
    passed: int = 0
    failed: int = 0
    rows: list = field(default_factory=list)
    current: Row = None
    started: float = field(default_factory=time.time)

    def check(self, name, ok, detail="", logs=()):
        """Record one assertion; on failure print the tail of each log in `logs`
        (objects with `log_tail()` and `log_path()`, or paths)."""
        ok = bool(ok)
        self.passed += ok
        self.failed += not ok
        if self.current:
            self.current.passed += ok
            self.current.failed += not ok
        out(f"{'PASS' if ok else 'FAIL'} {name} {detail}".rstrip())
        if not ok:
            for log in logs:
                self.tail(log)
        return ok

    def tail(self, log, lines=30):
        if log is None:
            return
        if isinstance(log, str):
            path = log
            try:
                with open(path, errors="replace") as f:
                    text = "".join(f.readlines()[-lines:])
            except OSError:
                text = ""
        else:
            path, text = log.log_path(), log.log_tail(lines)
        if path:
            out(f"  ---- last {lines} lines of {path}")
            for line in text.splitlines():
                out(f"  | {line[:400]}")
            out("  ----")

    def begin(self, number, title):
        self.current = Row(number, title)
        self.rows.append(self.current)
        self._t0 = time.time()
        out(f"\n== scenario {number}: {title}")
        return self.current

    def end(self):
        if self.current:
            self.current.seconds = time.time() - self._t0
            out(f"== scenario {self.current.number} took {self.current.seconds:.0f} s")
        self.current = None

    def summary(self):
        total = time.time() - self.started
        out(f"\n{'scenario':<44} {'put':>6} {'handled':>8} {'dup':>4} {'lost':>5} {'time':>5}  checks")
        for r in self.rows:
            out(
                f"{r.number!s:<2} {r.title[:41]:<41} {r.put:>6} {r.handled:>8} {r.duplicated:>4} {r.lost:>5}"
                f" {r.seconds:>4.0f}s  {r.passed}/{r.passed + r.failed}"
                + (f"  {r.remark}" if r.remark else "")
            )
        out(f"total {total:.0f} s (including emulator start-up)")
        out(f"{self.passed} passed, {self.failed} failed")
        sys.stdout.flush()
