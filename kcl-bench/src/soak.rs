//! A soak run: the workload's records streamed through a child (`examples/file_sink`) by a
//! driver that plays the daemon with the KCL's rule book, sampling the child's resident memory.
//!
//! * Every checkpoint request is judged by [`LeaseCheckpointer`] (the project's model of the
//!   KCL's `ShardRecordProcessorCheckpointer`, also used by `kcl run` and the test daemon); the
//!   stored checkpoint is what it accepted. Some accepted requests are answered instead with a
//!   retryable error (`ThrottlingException`, `KinesisClientLibDependencyException`), nothing
//!   stored, as when DynamoDB throttles the write (half of the time the first retry fails too);
//!   once per run, in the steady phase, all the attempts of one checkpoint call are, so the
//!   child's retry budget runs out.
//! * After the first `steady_batches` batches (no kills: resident memory is measured over that
//!   one process's life), the child is killed with SIGKILL at random points (after a status;
//!   at a checkpoint request before answering it; while it handles a batch; after the checkpoint
//!   was stored but before the reply) and a new one is started with `initialize` at the stored
//!   checkpoint, which gets every record after it again, like the daemon does after a crash.
//!
//! Violations of the rules below are collected (the run goes on) and returned in the report:
//!
//! * (a) no request is refused: the child never asks for a position outside
//!   [last checkpoint, largest delivered] (`IllegalArgumentException`) nor checkpoints during
//!   `initialize` (`InvalidStateException`);
//! * (b) when a batch is answered, the stored checkpoint is its last record, unless the child
//!   gave up on that very position after its whole retry budget failed with injected errors
//!   (then the next batch's checkpoint, at its own last record, must cover it: checked the same
//!   way on that batch);
//! * (c) every injected retryable error is followed by a retry at the same position, unless it
//!   was the last attempt of the child's retry budget (`RetryPolicy::default().max_attempts`
//!   unless told otherwise): a child gives up only after a whole number of budgets;
//! * at the end, `shardEnded` stores `SHARD_END`;
//! * restarts make progress: after 20 kills in a row that restart at or before the furthest
//!   restart point so far, the run stops (a checkpoint that never advances).
//!
//! What the children wrote is checked by `scripts/soak.sh` from the sink file and the per-process
//! log of the report (where each process started, what it was delivered and asked to checkpoint,
//! where its output starts in the sink file).

use std::cmp::Ordering;
use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use kcl_protocol::daemon::{CheckpointRequest, ChildLine, parse_child_line};
use kcl_protocol::message::DaemonMessage;
use kcl_protocol::{
    Action, CheckpointOutcome, DaemonError, ExtendedSequenceNumber as Esn, LeaseCheckpointer,
    Position, StartingPosition,
};
use serde::Serialize;

use crate::child::Running;
use crate::proc_stats;
use crate::workload::{Random, Workload, initialize_line_at, records_line, sequence};

/// How a soak run is driven.
pub struct SoakConfig {
    /// `batches` x `records`: the stream's records, numbered 1..=N.
    pub workload: Workload,
    /// Share (in %) of checkpoint requests answered with a retryable error.
    pub error_percent: u64,
    pub seed: u64,
    /// Mean number of records delivered between kills after the steady phase; 0: no kills.
    pub kill_every: u64,
    /// The first batches, through one process without kills (memory is measured there).
    pub steady_batches: usize,
    /// The child's checkpoint attempts per position (the first included) before it gives up.
    pub retry_attempts: u32,
    /// The child's output file: its size is noted before each process starts.
    pub sink_file: Option<PathBuf>,
}

/// One child process's life, for the sink check.
#[derive(Serialize, Clone, Debug, Default)]
pub struct ProcessLog {
    /// Records up to this number were checkpointed when it started (0: none).
    pub start: u64,
    /// Size of the sink file when it started (its output begins there).
    pub sink_offset: Option<u64>,
    /// The largest record number delivered to it.
    pub delivered: u64,
    /// The largest record number it asked to checkpoint in a request that was not refused
    /// (answered or not): it claims to have written everything up to there.
    pub requested: u64,
    /// Records up to this number were checkpointed when it was killed or ended.
    pub stored: u64,
    /// How it was killed; `None`: it ended with the run.
    pub killed: Option<&'static str>,
}

/// What a soak run saw.
#[derive(Serialize, Debug, Default)]
pub struct SoakReport {
    pub seed: u64,
    /// Distinct records in the stream.
    pub records: u64,
    /// Records sent, redeliveries included.
    pub records_delivered: u64,
    pub batches: u64,
    pub steady_batches: u64,
    pub checkpoints: u64,
    pub stored: u64,
    pub unchanged: u64,
    pub refused: u64,
    pub injected_errors: u64,
    pub retries: u64,
    pub retry_budget: u32,
    /// Injected errors that were the last attempt of the child's retry budget.
    pub retry_budget_exhausted: u64,
    /// Batches answered with their last record not stored because the child gave up.
    pub batches_given_up: u64,
    pub batches_judged: u64,
    pub skipped_lines: u64,
    pub kills: u64,
    pub kills_after_status: u64,
    pub kills_before_checkpoint_answer: u64,
    pub kills_while_handling: u64,
    pub kills_after_checkpoint_stored: u64,
    pub restarts: u64,
    pub shard_end_stored: bool,
    /// Violations of (a), (b), (c), the end of the shard.
    pub refused_violations: u64,
    pub not_at_last_violations: u64,
    pub retry_violations: u64,
    pub shard_end_violations: u64,
    pub progress_violations: u64,
    /// The first violations of each kind, described.
    pub violations: Vec<String>,
    pub processes: Vec<ProcessLog>,
    pub rss_after_10_batches_kib: Option<u64>,
    pub rss_at_end_of_steady_kib: Option<u64>,
    pub peak_rss_kib: Option<u64>,
    pub seconds: f64,
}

impl SoakReport {
    pub fn violations_total(&self) -> u64 {
        self.refused_violations
            + self.not_at_last_violations
            + self.retry_violations
            + self.shard_end_violations
            + self.progress_violations
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    /// After the batch's status: nothing in flight.
    AfterStatus,
    /// At the batch's first checkpoint request (not refused), before judging or answering it:
    /// the batch is written but not checkpointed, so it is delivered and written again.
    BeforeCheckpointAnswer,
    /// A random moment (up to 8 ms) after the batch was sent: part of it may be written.
    WhileHandling,
    /// After the first checkpoint of the batch was stored, before the reply.
    AfterCheckpointStored,
}

impl Kill {
    fn name(self) -> &'static str {
        match self {
            Kill::AfterStatus => "after status",
            Kill::BeforeCheckpointAnswer => "before checkpoint answer",
            Kill::WhileHandling => "while handling",
            Kill::AfterCheckpointStored => "after checkpoint stored",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Violation {
    Refused,
    NotAtLast,
    Retry,
    ShardEnd,
    Progress,
}

/// How a batch ended.
enum BatchEnd {
    Answered,
    Killed,
}

/// A request's position as the child wrote it (a retry must repeat it exactly).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Asked {
    sequence_number: Option<String>,
    sub_sequence_number: Option<i64>,
}

impl Asked {
    fn of(request: &CheckpointRequest) -> Self {
        Asked {
            sequence_number: request.sequence_number.clone(),
            sub_sequence_number: request.sub_sequence_number,
        }
    }
}

impl fmt::Display for Asked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sequence_number {
            None => f.write_str("null (everything delivered)"),
            Some(sequence) => match self.sub_sequence_number {
                Some(sub) => write!(f, "{sequence}/{sub}"),
                None => write!(f, "{sequence}"),
            },
        }
    }
}

/// A retryable error injected for a request, awaiting its retry.
struct Injected {
    asked: Asked,
    /// Consecutive attempts at this position so far (across calls: when one call's budget is
    /// spent, the child may ask again, with a new budget).
    attempt: u32,
    error: &'static str,
}

/// Violations described in the report, per kind.
const MAX_DESCRIBED_VIOLATIONS: u64 = 3;

/// A run whose restarts stop advancing (the stored checkpoint stays put) ends after this many.
const MAX_KILLS_WITHOUT_PROGRESS: u32 = 20;

struct Daemon<'a> {
    command: &'a [String],
    config: &'a SoakConfig,
    total: u64,
    random: Random,
    child: Option<Running>,
    judge: LeaseCheckpointer,
    process: ProcessLog,
    report: SoakReport,
}

/// Streams the workload through `command` as described in the module documentation.
pub fn run(command: &[String], config: &SoakConfig) -> io::Result<SoakReport> {
    let total = (config.workload.batches * config.workload.records) as u64;
    let steady = config.steady_batches.min(config.workload.batches);
    let mut daemon = Daemon {
        command,
        config,
        total,
        random: Random::new(config.seed),
        child: None,
        judge: LeaseCheckpointer::new(Esn::trim_horizon()),
        process: ProcessLog::default(),
        report: SoakReport {
            seed: config.seed,
            records: total,
            steady_batches: steady as u64,
            retry_budget: config.retry_attempts,
            ..SoakReport::default()
        },
    };
    let started = Instant::now();
    daemon.start_child(Esn::trim_horizon())?;
    let per_batch = config.workload.records as u64;
    // One batch of the steady phase fails every attempt: the child's retry budget runs out.
    let exhaust_at = (steady >= 2).then_some(steady / 2);
    let mut countdown = daemon.gap();
    let mut cursor = 0u64; // the last record delivered to the current child
    let mut batch = 0usize;
    let (mut furthest_start, mut kills_without_progress) = (0u64, 0u32);
    while cursor < total {
        let count = per_batch.min(total - cursor);
        let kill = if batch >= steady && config.kill_every > 0 {
            if countdown <= count {
                countdown = daemon.gap();
                Some(daemon.kill_kind())
            } else {
                countdown -= count;
                None
            }
        } else {
            None
        };
        let end = daemon.batch(cursor + 1, count, batch, kill, exhaust_at == Some(batch))?;
        batch += 1;
        let pid = daemon.child.as_ref().map(Running::pid);
        if batch == 10 && steady >= 10 {
            daemon.report.rss_after_10_batches_kib = pid.and_then(proc_stats::rss_kib);
        }
        if batch == steady {
            daemon.report.rss_at_end_of_steady_kib = pid.and_then(proc_stats::rss_kib);
            daemon.report.peak_rss_kib = pid.and_then(proc_stats::peak_rss_kib);
        }
        cursor = match end {
            BatchEnd::Answered => cursor + count,
            // The new child resumes after the stored checkpoint.
            BatchEnd::Killed => daemon.process.start,
        };
        if matches!(end, BatchEnd::Killed) {
            if cursor > furthest_start {
                (furthest_start, kills_without_progress) = (cursor, 0);
            } else {
                kills_without_progress += 1;
            }
            if kills_without_progress >= MAX_KILLS_WITHOUT_PROGRESS {
                let message = format!(
                    "no progress: {kills_without_progress} kills in a row restarted at or before record {furthest_start} (stored checkpoint {}); records after {furthest_start} are never delivered",
                    daemon.judge.last()
                );
                daemon.violation(Violation::Progress, message);
                return daemon.stop(started);
            }
        }
    }
    daemon.shard_ended()?;
    daemon.report.seconds = started.elapsed().as_secs_f64();
    Ok(daemon.report)
}

impl Daemon<'_> {
    /// Records until the next kill: uniform in 1..=2 x kill_every.
    fn gap(&mut self) -> u64 {
        1 + self.random.below(2 * self.config.kill_every.max(1))
    }

    fn kill_kind(&mut self) -> Kill {
        // The first kill leaves a written, unanswered batch behind: every run has duplicates.
        if self.report.kills == 0 {
            return Kill::BeforeCheckpointAnswer;
        }
        match self.random.below(100) {
            0..=19 => Kill::AfterStatus,
            20..=54 => Kill::BeforeCheckpointAnswer,
            55..=79 => Kill::WhileHandling,
            _ => Kill::AfterCheckpointStored,
        }
    }

    fn violation(&mut self, kind: Violation, message: String) {
        let counter = match kind {
            Violation::Refused => &mut self.report.refused_violations,
            Violation::NotAtLast => &mut self.report.not_at_last_violations,
            Violation::Retry => &mut self.report.retry_violations,
            Violation::ShardEnd => &mut self.report.shard_end_violations,
            Violation::Progress => &mut self.report.progress_violations,
        };
        *counter += 1;
        if *counter <= MAX_DESCRIBED_VIOLATIONS {
            self.report.violations.push(message);
        }
    }

    fn child(&mut self) -> &mut Running {
        self.child.as_mut().expect("a child is running")
    }

    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let child = self.child();
        child.stdin_mut().write_all(line)?;
        child.stdin_mut().flush()
    }

    fn read(&mut self, pending: Action) -> io::Result<ChildLine> {
        let mut line = Vec::new();
        if self.child().stdout_mut().read_until(b'\n', &mut line)? == 0 {
            return Err(io::Error::other(format!(
                "child closed stdout while {pending} was pending"
            )));
        }
        Ok(parse_child_line(&line))
    }

    fn reply(&mut self, request: &CheckpointRequest, error: Option<&str>) -> io::Result<()> {
        let mut answer = request.reply_json(error).into_bytes();
        answer.push(b'\n');
        self.send(&answer)
    }

    /// How many of the stream's records a checkpoint at `value` covers.
    fn covered(&self, value: &Esn) -> u64 {
        let (mut low, mut high) = (0u64, self.total); // covered(low) holds
        while low < high {
            let middle = low + (high - low).div_ceil(2);
            let record = Esn::new(sequence(middle), 0);
            if matches!(record.compare(value), Ok(Ordering::Less | Ordering::Equal)) {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        low
    }

    /// What a request asks to checkpoint, as the judge reads it.
    fn requested_value(&self, asked: &Asked) -> Esn {
        match &asked.sequence_number {
            None => self.judge.largest_permitted().clone(),
            Some(sequence) => Esn::new(sequence.clone(), asked.sub_sequence_number.unwrap_or(0)),
        }
    }

    /// Starts a child whose lease resumes at `stored` (the judge's last checkpoint).
    fn start_child(&mut self, stored: Esn) -> io::Result<()> {
        let sink_offset = self
            .config
            .sink_file
            .as_ref()
            .map(|path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
        let start = self.covered(&stored);
        let starting_position = if stored.is_sentinel() {
            StartingPosition::TrimHorizon
        } else {
            let sub = u64::try_from(stored.sub_sequence_number()).unwrap_or(0);
            StartingPosition::Checkpoint(Position::new(stored.sequence_number(), sub))
        };
        let (child, _) = Running::spawn(self.command, Stdio::inherit())?;
        self.child = Some(child);
        self.judge = LeaseCheckpointer::new(stored);
        self.process = ProcessLog {
            start,
            sink_offset,
            delivered: start,
            requested: start,
            stored: start,
            killed: None,
        };
        self.send(&initialize_line_at(starting_position))?;
        loop {
            match self.read(Action::Initialize)? {
                ChildLine::Status { response_for }
                    if response_for.as_deref() == Some(Action::Initialize.as_str()) =>
                {
                    return Ok(());
                }
                ChildLine::Status { response_for } => {
                    return Err(io::Error::other(format!(
                        "status for {response_for:?} while initialize was pending"
                    )));
                }
                ChildLine::Checkpoint(request) => {
                    self.report.checkpoints += 1;
                    self.report.refused += 1;
                    self.violation(
                        Violation::Refused,
                        format!(
                            "(a) checkpoint at {} during initialize: refused with InvalidStateException",
                            Asked::of(&request)
                        ),
                    );
                    self.reply(&request, Some(DaemonError::InvalidState.java_name()))?;
                }
                _ => self.report.skipped_lines += 1,
            }
        }
    }

    /// SIGKILL, then a new child from the stored checkpoint.
    fn kill_and_restart(&mut self, how: Kill) -> io::Result<BatchEnd> {
        if let Some(child) = self.child.take() {
            child.kill()?;
        }
        self.report.kills += 1;
        *match how {
            Kill::AfterStatus => &mut self.report.kills_after_status,
            Kill::BeforeCheckpointAnswer => &mut self.report.kills_before_checkpoint_answer,
            Kill::WhileHandling => &mut self.report.kills_while_handling,
            Kill::AfterCheckpointStored => &mut self.report.kills_after_checkpoint_stored,
        } += 1;
        let stored = self.judge.last().clone();
        let mut ended = std::mem::take(&mut self.process);
        ended.stored = self.covered(&stored);
        ended.killed = Some(how.name());
        self.report.processes.push(ended);
        self.start_child(stored)?;
        self.report.restarts += 1;
        Ok(BatchEnd::Killed)
    }

    /// Delivers records `first ..= first + count - 1` as one batch and judges what the child does
    /// until it answers (or is killed).
    fn batch(
        &mut self,
        first: u64,
        count: u64,
        number: usize,
        kill: Option<Kill>,
        exhaust: bool,
    ) -> io::Result<BatchEnd> {
        let last = first + count - 1;
        let last_value = Esn::new(sequence(last), 0);
        let span = format!("batch {number} (records {first}..={last})");
        self.judge.records_delivered(last_value.clone());
        self.process.delivered = last;
        let line = records_line(
            first,
            count as usize,
            self.config.workload.payload_bytes,
            number,
        );
        self.send(&line)?;
        self.report.batches += 1;
        self.report.records_delivered += count;
        if kill == Some(Kill::WhileHandling) {
            std::thread::sleep(Duration::from_micros(self.random.below(8_000)));
            return self.kill_and_restart(Kill::WhileHandling);
        }
        let budget = self.config.retry_attempts.max(1);
        let mut injected: Option<Injected> = None;
        // The last position the child gave up on after its whole budget failed.
        let mut exhausted: Option<Asked> = None;
        // Injected errors still due for the retries of the current position.
        let mut burst = 0u64;
        loop {
            let request = match self.read(Action::ProcessRecords)? {
                ChildLine::Status { response_for }
                    if response_for.as_deref() == Some(Action::ProcessRecords.as_str()) =>
                {
                    break;
                }
                ChildLine::Status { response_for } => {
                    return Err(io::Error::other(format!(
                        "{span}: status for {response_for:?} while processRecords was pending"
                    )));
                }
                ChildLine::Checkpoint(request) => request,
                _ => {
                    self.report.skipped_lines += 1;
                    continue;
                }
            };
            self.report.checkpoints += 1;
            let asked = Asked::of(&request);
            let mut attempt = 1;
            if let Some(previous) = injected.take() {
                if previous.asked == asked {
                    // A retry, or a new call at the same position after the budget ran out (the
                    // runtime's own checkpoint after a handler whose checkpoint failed).
                    self.report.retries += 1;
                    attempt = previous.attempt + 1;
                } else if previous.attempt % budget == 0 {
                    exhausted = Some(previous.asked);
                } else {
                    self.violation(
                        Violation::Retry,
                        format!(
                            "(c) {span}: {} for the checkpoint at {} (attempt {} of {budget}) was followed by a checkpoint at {asked}, not by a retry",
                            previous.error, previous.asked, previous.attempt
                        ),
                    );
                }
            }
            // The KCL checks the range before it writes to the lease table.
            if let Err(error) = self
                .judge
                .clone()
                .checkpoint(asked.sequence_number.as_deref(), asked.sub_sequence_number)
            {
                self.report.refused += 1;
                let message = format!(
                    "(a) {span}: checkpoint at {asked} refused with {error}: outside [last checkpoint {}, largest delivered {}]",
                    self.judge.last(),
                    self.judge.largest_permitted()
                );
                self.violation(Violation::Refused, message);
                self.reply(&request, Some(error.java_name()))?;
                continue;
            }
            let claimed = self.covered(&self.requested_value(&asked));
            self.process.requested = self.process.requested.max(claimed);
            if kill == Some(Kill::BeforeCheckpointAnswer) {
                return self.kill_and_restart(Kill::BeforeCheckpointAnswer);
            }
            if attempt == 1 {
                burst = 0;
            }
            let inject = if exhaust {
                attempt <= budget // the next call at this position succeeds
            } else if burst > 0 {
                burst -= 1;
                true
            } else if self.random.below(100) < self.config.error_percent {
                // Half of the random errors fail the retry too.
                burst = self.random.below(2);
                true
            } else {
                false
            };
            if inject {
                let error = if self.random.next() % 2 == 0 {
                    DaemonError::Throttling
                } else {
                    DaemonError::Dependency
                }
                .java_name();
                self.report.injected_errors += 1;
                if attempt % budget == 0 {
                    self.report.retry_budget_exhausted += 1;
                }
                injected = Some(Injected {
                    asked,
                    attempt,
                    error,
                });
                self.reply(&request, Some(error))?;
                continue;
            }
            match self
                .judge
                .checkpoint(asked.sequence_number.as_deref(), asked.sub_sequence_number)
            {
                Ok(CheckpointOutcome::Stored(_)) => self.report.stored += 1,
                Ok(CheckpointOutcome::Unchanged) => self.report.unchanged += 1,
                Err(_) => unreachable!("judged on a copy just before"),
            }
            if kill == Some(Kill::AfterCheckpointStored) {
                return self.kill_and_restart(Kill::AfterCheckpointStored);
            }
            self.reply(&request, None)?;
        }
        // The status: retries are done.
        if let Some(previous) = injected {
            if previous.attempt % budget == 0 {
                exhausted = Some(previous.asked);
            } else {
                self.violation(
                    Violation::Retry,
                    format!(
                        "(c) {span}: {} for the checkpoint at {} (attempt {} of {budget}) was not retried: the child answered processRecords",
                        previous.error, previous.asked, previous.attempt
                    ),
                );
            }
        }
        self.report.batches_judged += 1;
        if self.judge.last() != &last_value {
            let gave_up_on_last = exhausted
                .as_ref()
                .is_some_and(|asked| self.requested_value(asked) == last_value);
            if gave_up_on_last {
                self.report.batches_given_up += 1;
            } else {
                let message = format!(
                    "(b) {span}: the stored checkpoint is {} once the batch is answered, not its last record {last_value}",
                    self.judge.last()
                );
                self.violation(Violation::NotAtLast, message);
            }
        }
        self.process.stored = self.covered(&self.judge.last().clone());
        if kill.is_some() {
            // Also a kill meant for a checkpoint request that never came.
            return self.kill_and_restart(Kill::AfterStatus);
        }
        Ok(BatchEnd::Answered)
    }

    /// Ends a run that cannot finish: stdin closed, no `shardEnded`.
    fn stop(mut self, started: Instant) -> io::Result<SoakReport> {
        let mut ended = std::mem::take(&mut self.process);
        ended.stored = self.covered(&self.judge.last().clone());
        self.report.processes.push(ended);
        self.child.take().expect("a child is running").finish()?;
        self.report.seconds = started.elapsed().as_secs_f64();
        Ok(self.report)
    }

    /// `shardEnded`: the child checkpoints the end of the shard; then stdin is closed.
    fn shard_ended(&mut self) -> io::Result<()> {
        self.judge.shard_ended();
        self.send(format!("{}\n", DaemonMessage::ShardEnded.to_json()).as_bytes())?;
        loop {
            let request = match self.read(Action::ShardEnded)? {
                ChildLine::Status { response_for }
                    if response_for.as_deref() == Some(Action::ShardEnded.as_str()) =>
                {
                    break;
                }
                ChildLine::Status { response_for } => {
                    return Err(io::Error::other(format!(
                        "status for {response_for:?} while shardEnded was pending"
                    )));
                }
                ChildLine::Checkpoint(request) => request,
                _ => {
                    self.report.skipped_lines += 1;
                    continue;
                }
            };
            self.report.checkpoints += 1;
            let asked = Asked::of(&request);
            match self
                .judge
                .checkpoint(asked.sequence_number.as_deref(), asked.sub_sequence_number)
            {
                Ok(CheckpointOutcome::Stored(_)) => self.report.stored += 1,
                Ok(CheckpointOutcome::Unchanged) => self.report.unchanged += 1,
                Err(error) => {
                    self.report.refused += 1;
                    let message = format!(
                        "(a) shardEnded: checkpoint at {asked} refused with {error} (last checkpoint {})",
                        self.judge.last()
                    );
                    self.violation(Violation::Refused, message);
                    self.reply(&request, Some(error.java_name()))?;
                    continue;
                }
            }
            self.reply(&request, None)?;
        }
        self.report.shard_end_stored = self.judge.last().is_shard_end();
        if !self.report.shard_end_stored {
            let message = format!(
                "shardEnded: the stored checkpoint is {}, not SHARD_END",
                self.judge.last()
            );
            self.violation(Violation::ShardEnd, message);
        }
        let mut ended = std::mem::take(&mut self.process);
        ended.stored = if self.report.shard_end_stored {
            self.total
        } else {
            self.covered(&self.judge.last().clone())
        };
        self.report.processes.push(ended);
        let status = self.child.take().expect("a child is running").finish()?;
        if !status.success() {
            return Err(io::Error::other(format!("child exited with {status}")));
        }
        Ok(())
    }
}
