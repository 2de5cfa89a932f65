//! The table `kcl run` prints at the end (stdout).

use std::fmt::Write as _;
use std::time::Duration;

use super::shard::{Exit, ShardReport, describe};
use crate::error::{Error, Result};

/// Everything the summary shows.
pub(super) struct Summary<'a> {
    /// One report per shard.
    pub shards: &'a [ShardReport],
    /// Records read from the input.
    pub read: u64,
    /// Records per shard that could not be handed to it (its child had stopped).
    pub undelivered: &'a [u64],
    /// Wall time.
    pub elapsed: Duration,
    /// The checkpoint file.
    pub checkpoint_file: String,
    /// An input error, if reading stopped on one.
    pub input_error: Option<String>,
}

impl Summary<'_> {
    /// Whether anything failed.
    pub(super) fn failed(&self) -> bool {
        self.input_error.is_some() || self.shards.iter().any(|s| !s.problems.is_empty())
    }

    /// The command's result: interrupted (by a signal that set `interrupted`) when nothing
    /// failed, else failed when a shard or the input did.
    pub(super) fn outcome(&self, interrupted: bool) -> Result<()> {
        if interrupted && !self.failed() {
            return Err(Error::Interrupted);
        }
        if self.failed() {
            let failed = self
                .shards
                .iter()
                .filter(|r| !r.problems.is_empty())
                .count();
            return Err(Error::failed(format!(
                "{failed} of {} shards failed{} (details above)",
                self.shards.len(),
                if self.input_error.is_some() {
                    ", and the input had an error"
                } else {
                    ""
                }
            )));
        }
        Ok(())
    }

    /// The text: a table, the totals, then problems and notes per shard.
    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        let header = [
            "shard",
            "records",
            "resumed",
            "batches",
            "checkpoints",
            "refused",
            "junk",
            "checkpoint",
            "exit",
            "result",
        ];
        let mut rows: Vec<Vec<String>> = Vec::new();
        for (index, shard) in self.shards.iter().enumerate() {
            let undelivered = self.undelivered.get(index).copied().unwrap_or(0);
            rows.push(vec![
                shard.shard_id.clone(),
                if undelivered > 0 {
                    format!("{} (+{undelivered} not sent)", shard.delivered)
                } else {
                    shard.delivered.to_string()
                },
                shard.resumed_past.to_string(),
                shard.batches.to_string(),
                shard.checkpoint_requests.to_string(),
                shard.checkpoint_errors.to_string(),
                shard.skipped_lines.to_string(),
                describe(&shard.last_checkpoint),
                match shard.exit {
                    Exit::NotStarted => "-".into(),
                    Exit::Code(code) => code.to_string(),
                    Exit::Signal(signal) => format!("signal {signal}"),
                    Exit::Killed => "killed".into(),
                },
                if shard.problems.is_empty() {
                    "ok".into()
                } else {
                    "FAILED".into()
                },
            ]);
        }
        let total = |f: fn(&ShardReport) -> u64| self.shards.iter().map(f).sum::<u64>();
        rows.push(vec![
            "total".into(),
            total(|s| s.delivered).to_string(),
            total(|s| s.resumed_past).to_string(),
            total(|s| s.batches).to_string(),
            total(|s| s.checkpoint_requests).to_string(),
            total(|s| s.checkpoint_errors).to_string(),
            total(|s| s.skipped_lines).to_string(),
            String::new(),
            String::new(),
            if self.failed() { "FAILED" } else { "ok" }.into(),
        ]);
        let widths: Vec<usize> = (0..header.len())
            .map(|column| {
                rows.iter()
                    .map(|row| row[column].chars().count())
                    .chain([header[column].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut line = |cells: &[&str]| {
            let mut text = String::new();
            for (column, cell) in cells.iter().enumerate() {
                let pad = widths[column] - cell.chars().count();
                if column == 0 || column == 7 || column == 9 {
                    let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
                } else {
                    let _ = write!(text, "{}{cell}  ", " ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(&header);
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(&cells);
        }
        let seconds = self.elapsed.as_secs_f64();
        let delivered = total(|s| s.delivered);
        let _ = writeln!(
            out,
            "{} records read, {delivered} delivered in {:.2} s ({:.0} records/s); checkpoints in {}",
            self.read,
            seconds,
            if seconds > 0.0 {
                delivered as f64 / seconds
            } else {
                0.0
            },
            self.checkpoint_file
        );
        if let Some(error) = &self.input_error {
            let _ = writeln!(out, "input: {error}");
        }
        for shard in self.shards {
            for problem in &shard.problems {
                let _ = writeln!(out, "{}: FAILED: {problem}", shard.shard_id);
            }
            for note in &shard.notes {
                let _ = writeln!(out, "{}: note: {note}", shard.shard_id);
            }
        }
        out
    }
}
