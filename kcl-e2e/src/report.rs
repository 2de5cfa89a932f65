//! Checks and the scenario's row, printed as the Python suite prints them (scripts/e2e/
//! report.py): one `PASS name detail` / `FAIL name detail` line per check, then the row
//! `scenario put handled dup lost time checks`. A scenario ends with [`Report::finish`], which
//! fails the test if any check failed, naming them.

use std::time::{Duration, Instant};

use crate::ledger::Tally;

/// The checks of one scenario and its timing.
#[derive(Debug)]
pub struct Report {
    number: String,
    title: String,
    started: Instant,
    passed: usize,
    failed: Vec<String>,
}

/// A finished scenario's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The scenario's number (`1`, `1n`, ...).
    pub number: String,
    /// Its title.
    pub title: String,
    /// The ledger's reconciliation.
    pub tally: Tally,
    /// How long it took.
    pub took: Duration,
    /// Checks passed.
    pub passed: usize,
    /// Checks failed (names).
    pub failed: Vec<String>,
    /// A remark for the row.
    pub remark: String,
}

impl Row {
    /// The header of the table.
    pub fn header() -> String {
        format!(
            "{:<44} {:>6} {:>8} {:>4} {:>5} {:>5}  checks",
            "scenario", "put", "handled", "dup", "lost", "time"
        )
    }

    /// The row, as the Python suite's summary prints it.
    pub fn line(&self) -> String {
        let title: String = self.title.chars().take(41).collect();
        let mut line = format!(
            "{:<2} {:<41} {:>6} {:>8} {:>4} {:>5} {:>4.0}s  {}/{}",
            self.number,
            title,
            self.tally.put,
            self.tally.handled,
            self.tally.duplicated,
            self.tally.lost,
            self.took.as_secs_f64(),
            self.passed,
            self.passed + self.failed.len()
        );
        if !self.remark.is_empty() {
            line.push_str("  ");
            line.push_str(&self.remark);
        }
        line
    }
}

impl Report {
    /// Starts a scenario: prints `== scenario N: title`.
    pub fn begin(number: &str, title: &str) -> Report {
        println!("\n== scenario {number}: {title}");
        Report {
            number: number.to_owned(),
            title: title.to_owned(),
            started: Instant::now(),
            passed: 0,
            failed: Vec::new(),
        }
    }

    /// Records one assertion and prints its line; returns `ok`.
    pub fn check(&mut self, name: &str, ok: bool, detail: impl AsRef<str>) -> bool {
        let detail = detail.as_ref();
        println!("{} {name} {detail}", if ok { "PASS" } else { "FAIL" });
        if ok {
            self.passed += 1;
        } else {
            self.failed.push(format!("{name} {detail}"));
        }
        ok
    }

    /// Progress information (not a check).
    pub fn note(&self, text: impl AsRef<str>) {
        println!("  .. {}", text.as_ref());
    }

    /// How long the scenario has run.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether a check failed so far.
    pub fn failing(&self) -> bool {
        !self.failed.is_empty()
    }

    /// Ends the scenario: prints the table (header and row) and returns the row.
    pub fn finish(self, tally: Tally, remark: &str) -> Row {
        let row = Row {
            number: self.number,
            title: self.title,
            tally,
            took: self.started.elapsed(),
            passed: self.passed,
            failed: self.failed,
            remark: remark.to_owned(),
        };
        println!(
            "== scenario {} took {:.0} s",
            row.number,
            row.took.as_secs_f64()
        );
        println!("{}", Row::header());
        println!("{}", row.line());
        println!("{} passed, {} failed", row.passed, row.failed.len());
        row
    }
}

impl Row {
    /// Panics (fails the test) naming every failed check.
    pub fn assert_passed(&self) {
        assert!(
            self.failed.is_empty(),
            "scenario {}: {} of {} checks failed:\n  {}",
            self.number,
            self.failed.len(),
            self.passed + self.failed.len(),
            self.failed.join("\n  ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_lines_up_with_the_header() {
        let mut report = Report::begin("1", "records across 2 shards, checkpoints");
        report.check("a", true, "");
        report.check("b", false, "why");
        let tally = Tally {
            put: 1000,
            handled: 999,
            lost: 1,
            ..Tally::default()
        };
        let row = report.finish(tally, "");
        assert!(
            row.line()
                .starts_with("1  records across 2 shards, checkpoints")
        );
        assert!(row.line().ends_with("  1/2"), "{}", row.line());
        assert_eq!(row.failed, ["b why"]);
        assert!(std::panic::catch_unwind(|| row.assert_passed()).is_err());
    }
}
