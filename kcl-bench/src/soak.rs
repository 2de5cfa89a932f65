//! A soak run: many batches through one child with random checkpoint errors in the replies,
//! sampling the child's resident memory along the way.

use std::io::{self, BufRead, Write};
use std::process::Stdio;
use std::time::Instant;

use kcl_core::driver::{parse_child_line, ChildLine};

use crate::child::Running;
use crate::proc_stats;
use crate::workload::{initialize_line, Workload};

/// What a soak run saw.
pub struct SoakReport {
    pub records: u64,
    pub batches: u64,
    pub checkpoints: u64,
    pub injected_errors: u64,
    pub rss_after_first_batches_kib: Option<u64>,
    pub rss_at_end_kib: Option<u64>,
    pub peak_rss_kib: Option<u64>,
    pub seconds: f64,
}

/// xorshift, seeded.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Streams `workload` through `command` (lines built batch by batch, so memory on this side stays
/// small too); a checkpoint reply is an error with probability `error_percent` / 100
/// (ThrottlingException, KinesisClientLibDependencyException), which the child retries.
pub fn run(
    command: &[String],
    workload: Workload,
    error_percent: u64,
    seed: u64,
) -> io::Result<SoakReport> {
    let (mut child, _) = Running::spawn(command, Stdio::inherit())?;
    let mut random = Random(seed | 1);
    let started = Instant::now();
    let mut report = SoakReport {
        records: 0,
        batches: 0,
        checkpoints: 0,
        injected_errors: 0,
        rss_after_first_batches_kib: None,
        rss_at_end_kib: None,
        peak_rss_kib: None,
        seconds: 0.0,
    };
    child.send(&initialize_line())?;
    child.await_status_with("initialize", |_| None)?;
    let mut n = 0u64;
    for batch in 0..workload.batches {
        let line = crate::workload::batch_line(workload, &mut n, batch);
        child.send(&line)?;
        report.records += workload.records as u64;
        report.batches += 1;
        let mut checkpoints = 0;
        let mut injected = 0;
        child.await_status_with("processRecords", |_| {
            checkpoints += 1;
            if random.next() % 100 < error_percent {
                injected += 1;
                Some(if random.next() % 2 == 0 {
                    "ThrottlingException"
                } else {
                    "KinesisClientLibDependencyException"
                })
            } else {
                None
            }
        })?;
        report.checkpoints += checkpoints;
        report.injected_errors += injected;
        if batch == 9 {
            report.rss_after_first_batches_kib = proc_stats::rss_kib(child.pid());
        }
    }
    report.rss_at_end_kib = proc_stats::rss_kib(child.pid());
    report.peak_rss_kib = proc_stats::peak_rss_kib(child.pid());
    report.seconds = started.elapsed().as_secs_f64();
    child.send(b"{\"action\":\"shardEnded\"}\n")?;
    child.await_status_with("shardEnded", |_| None)?;
    let status = child.finish()?;
    if !status.success() {
        return Err(io::Error::other(format!("child exited with {status}")));
    }
    Ok(report)
}

impl Running {
    pub fn send(&mut self, line: &[u8]) -> io::Result<()> {
        self.stdin_mut().write_all(line)?;
        self.stdin_mut().flush()
    }

    /// Reads until the status for `action`; `reply` chooses each checkpoint reply's error.
    pub fn await_status_with(
        &mut self,
        action: &str,
        mut reply: impl FnMut(&kcl_core::driver::CheckpointRequest) -> Option<&'static str>,
    ) -> io::Result<()> {
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.stdout_mut().read_until(b'\n', &mut line)? == 0 {
                return Err(io::Error::other(format!(
                    "child closed stdout while {action} was pending"
                )));
            }
            match parse_child_line(&line) {
                ChildLine::Status { response_for } if response_for.as_deref() == Some(action) => {
                    return Ok(())
                }
                ChildLine::Status { response_for } => {
                    return Err(io::Error::other(format!(
                        "status for {response_for:?} while {action} was pending"
                    )))
                }
                ChildLine::Checkpoint(request) => {
                    let error = reply(&request);
                    let mut answer = request.reply_json(error).into_bytes();
                    answer.push(b'\n');
                    self.send(&answer)?;
                }
                _ => {}
            }
        }
    }
}
