//! Stderr output of `kcl run`: child stderr (prefixed with the shard id), notices, traces and a
//! progress line that does not get mixed up with them.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::Progress;

/// Counters shared by all shards, for progress lines and the summary.
#[derive(Debug, Default)]
pub(super) struct Totals {
    /// Records delivered.
    pub records: AtomicU64,
    /// Batches answered.
    pub batches: AtomicU64,
    /// Checkpoint requests answered.
    pub checkpoints: AtomicU64,
    /// Checkpoint requests answered with an error.
    pub checkpoint_errors: AtomicU64,
}

/// The shared stderr writer.
pub(super) struct Console {
    mode: Progress,
    tty: bool,
    every: u64,
    started: Instant,
    /// Whether a progress line (without newline) is on screen.
    showing: Mutex<bool>,
}

impl Console {
    /// A console for the given progress mode.
    pub(super) fn new(mode: Progress, every: u64) -> Console {
        Console {
            mode,
            tty: std::io::stderr().is_terminal(),
            every: every.max(1),
            started: Instant::now(),
            showing: Mutex::new(false),
        }
    }

    /// Whether progress is drawn every second on a terminal.
    pub(super) fn live(&self) -> bool {
        self.mode == Progress::Auto && self.tty
    }

    /// Writes a line to stderr, above the progress line if there is one.
    pub(super) fn line(&self, text: &str) {
        let mut showing = self.showing.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        if *showing {
            let _ = err.write_all(b"\r\x1b[2K");
            *showing = false;
        }
        let _ = err.write_all(text.as_bytes());
        let _ = err.write_all(b"\n");
    }

    /// The progress text for `totals`.
    pub(super) fn progress_text(&self, totals: &Totals) -> String {
        format!(
            "[kcl run] {} records, {} batches, {} checkpoints ({} refused), {:.1} s",
            totals.records.load(Ordering::Relaxed),
            totals.batches.load(Ordering::Relaxed),
            totals.checkpoints.load(Ordering::Relaxed),
            totals.checkpoint_errors.load(Ordering::Relaxed),
            self.started.elapsed().as_secs_f64()
        )
    }

    /// Redraws the live progress line (terminal mode).
    pub(super) fn tick(&self, totals: &Totals) {
        if !self.live() || self.started.elapsed().as_secs() < 1 {
            return;
        }
        let text = self.progress_text(totals);
        let mut showing = self.showing.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{text}");
        let _ = err.flush();
        *showing = true;
    }

    /// Called after each batch: prints a progress line every N batches (non-terminal mode).
    pub(super) fn batch_done(&self, totals: &Totals, batches: u64) {
        let lines = match self.mode {
            Progress::Never => false,
            Progress::Always => true,
            Progress::Auto => !self.tty,
        };
        if lines && batches.is_multiple_of(self.every) {
            self.line(&self.progress_text(totals));
        }
    }

    /// Removes the live progress line.
    pub(super) fn clear(&self) {
        let mut showing = self.showing.lock().unwrap_or_else(|e| e.into_inner());
        if *showing {
            let _ = std::io::stderr().lock().write_all(b"\r\x1b[2K");
            *showing = false;
        }
    }
}

/// `text` cut to `limit` characters, with the full size noted.
pub(super) fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let cut: String = text.chars().take(limit).collect();
    format!("{cut}… ({} bytes)", text.len())
}
