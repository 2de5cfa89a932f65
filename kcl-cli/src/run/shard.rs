//! One shard: its child process and the daemon's side of the protocol with it.
//!
//! Exactly the Java daemon's rhythm: one action at a time; while an action is outstanding,
//! checkpoint requests are answered at once and the first status ends the wait; the status
//! must name the action; lines the daemon cannot parse are skipped; after the `leaseLost` or
//! `shardEnded` status the child's stdin is closed and the driver waits for it to exit.

use std::io::{BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kcl_protocol::daemon::{CheckpointRequest, ChildLine, LineReader, parse_child_line};
use kcl_protocol::message::{DaemonMessage, Initialize, ProcessRecordsMessage, WireRecord};
use kcl_protocol::{CheckpointOutcome, DaemonError, ExtendedSequenceNumber, Lease};
use kcl_protocol::{Position, StartingPosition};

use super::console::{Console, Totals, shorten};
use super::input::record_index;
use super::store::CheckpointStore;
use crate::run::EndAction;

/// A record on its way to a shard.
#[derive(Clone, Debug)]
pub struct ShardRecord {
    /// The sequence number.
    pub sequence_number: String,
    /// The payload.
    pub data: Vec<u8>,
    /// The partition key.
    pub partition_key: String,
    /// Epoch milliseconds.
    pub arrival: i64,
}

/// An injected checkpoint error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// Only this shard (index), or every shard.
    pub shard: Option<u32>,
    /// The 1-based number of the checkpoint request in its shard.
    pub nth: u64,
    /// The Java exception name to answer with.
    pub error: String,
}

/// How shards are driven (the same for all).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Program and arguments of the child.
    pub command: Vec<String>,
    /// Records per batch.
    pub batch_size: usize,
    /// What follows the last batch.
    pub end: EndAction,
    /// The daemon's timeoutInSeconds, if set.
    pub timeout: Option<Duration>,
    /// How long a child may take to exit after its stdin is closed.
    pub exit_timeout: Duration,
    /// Stop after this many batches.
    pub max_batches: Option<u64>,
    /// How long to wait for a batch to fill.
    pub linger: Duration,
    /// Print every protocol line.
    pub trace: bool,
    /// Injected checkpoint errors.
    pub injections: Vec<Injection>,
}

/// How a shard's child ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Never started.
    NotStarted,
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// Killed by the driver after it did not exit in time.
    Killed,
}

/// What happened on one shard.
#[derive(Clone, Debug)]
pub struct ShardReport {
    /// The shard id.
    pub shard_id: String,
    /// Records delivered in batches.
    pub delivered: u64,
    /// Records not delivered because they were at or before the stored checkpoint.
    pub resumed_past: u64,
    /// Batches answered with a status.
    pub batches: u64,
    /// Checkpoint requests.
    pub checkpoint_requests: u64,
    /// Checkpoints that changed the stored value.
    pub checkpoints_stored: u64,
    /// Requests answered with an error (judged or injected).
    pub checkpoint_errors: u64,
    /// Stdout lines the daemon would skip.
    pub skipped_lines: u64,
    /// The checkpoint at the start.
    pub initial: ExtendedSequenceNumber,
    /// The checkpoint at the end.
    pub last_checkpoint: ExtendedSequenceNumber,
    /// How the child ended.
    pub exit: Exit,
    /// Failures: the run exits non-zero if there is any.
    pub problems: Vec<String>,
    /// Things worth knowing that are not failures.
    pub notes: Vec<String>,
}

enum ReadEvent {
    Line(Vec<u8>),
    End(Option<String>),
}

/// Why the protocol with a child stopped early.
enum Stop {
    /// The real daemon would `System.exit(1)`.
    Exit1(String),
    /// The real daemon would `Runtime.halt(1)` (timeoutInSeconds).
    Halt(String),
}

/// Drives one shard to its end and reports.
pub struct ShardDriver {
    index: u32,
    shard_id: String,
    settings: Arc<Settings>,
    store: Arc<CheckpointStore>,
    console: Arc<Console>,
    totals: Arc<Totals>,
    stop: Arc<AtomicBool>,
    report: ShardReport,
    lease: Lease,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Option<Receiver<ReadEvent>>,
    stderr_done: Option<Receiver<()>>,
    skipped_shown: u64,
}

const SHOWN_SKIPPED_LINES: u64 = 20;

impl ShardDriver {
    /// A driver for shard `index`.
    pub fn new(
        index: u32,
        settings: Arc<Settings>,
        store: Arc<CheckpointStore>,
        console: Arc<Console>,
        totals: Arc<Totals>,
        stop: Arc<AtomicBool>,
    ) -> ShardDriver {
        let shard_id = super::input::shard_id(index);
        let initial = store
            .get(&shard_id)
            .unwrap_or_else(ExtendedSequenceNumber::trim_horizon);
        ShardDriver {
            index,
            report: ShardReport {
                shard_id: shard_id.clone(),
                delivered: 0,
                resumed_past: 0,
                batches: 0,
                checkpoint_requests: 0,
                checkpoints_stored: 0,
                checkpoint_errors: 0,
                skipped_lines: 0,
                initial: initial.clone(),
                last_checkpoint: initial.clone(),
                exit: Exit::NotStarted,
                problems: Vec::new(),
                notes: Vec::new(),
            },
            lease: Lease::new(initial),
            shard_id,
            settings,
            store,
            console,
            totals,
            stop,
            child: None,
            stdin: None,
            lines: None,
            stderr_done: None,
            skipped_shown: 0,
        }
    }

    /// Runs the shard: records come from `records` until it is closed.
    pub fn run(mut self, records: Receiver<ShardRecord>) -> ShardReport {
        if self.report.initial.is_shard_end() {
            self.report.notes.push(
                "the checkpoint file says SHARD_END: the shard is finished, so (like the KCL) no child was started; pass --fresh to replay it".into(),
            );
            return self.report;
        }
        if let Err(problem) = self.spawn() {
            self.report.problems.push(problem);
            return self.report;
        }
        let outcome = self.protocol(&records);
        drop(records);
        match outcome {
            Ok(()) => {}
            Err(Stop::Exit1(why)) => self.report.problems.push(format!(
                "{why} — the real daemon would exit 1 here (stopping every shard of the worker)"
            )),
            Err(Stop::Halt(why)) => self.report.problems.push(format!(
                "{why} — the real daemon would halt (Runtime.halt(1), timeoutInSeconds)"
            )),
        }
        self.finish_child();
        self.report.last_checkpoint = self.lease.checkpointer().last().clone();
        self.report
    }

    fn say(&self, text: &str) {
        self.console.line(&format!("[{}] {text}", self.shard_id));
    }

    fn spawn(&mut self) -> Result<(), String> {
        let (program, args) = self
            .settings
            .command
            .split_first()
            .ok_or("no processor command")?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            // Ctrl-C reaches `kcl run` only, which then shuts the children down gracefully.
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let mut child = command.spawn().map_err(|e| {
            format!(
                "cannot start the child {:?}: {e} — the real daemon would exit 1",
                self.settings.command.join(" ")
            )
        })?;
        self.stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("{}-stdout", self.shard_id))
            .spawn(move || {
                let mut reader = LineReader::new(BufReader::with_capacity(1 << 16, stdout));
                loop {
                    match reader.next_line() {
                        Ok(Some(line)) => {
                            if tx.send(ReadEvent::Line(line)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => {
                            let _ = tx.send(ReadEvent::End(None));
                            return;
                        }
                        Err(error) => {
                            let _ = tx.send(ReadEvent::End(Some(error.to_string())));
                            return;
                        }
                    }
                }
            })
            .expect("thread starts");
        let (done_tx, done_rx) = mpsc::channel();
        let console = self.console.clone();
        let prefix = format!("[{}] ", self.shard_id);
        std::thread::Builder::new()
            .name(format!("{}-stderr", self.shard_id))
            .spawn(move || {
                let mut reader = LineReader::new(BufReader::new(stderr));
                while let Ok(Some(line)) = reader.next_line() {
                    console.line(&format!("{prefix}{}", String::from_utf8_lossy(&line)));
                }
                let _ = done_tx.send(());
            })
            .expect("thread starts");
        self.child = Some(child);
        self.lines = Some(rx);
        self.stderr_done = Some(done_rx);
        Ok(())
    }

    fn protocol(&mut self, records: &Receiver<ShardRecord>) -> Result<(), Stop> {
        let initial = self.report.initial.clone();
        let starting_position = StartingPosition::from_wire(
            Some(initial.sequence_number()),
            Some(initial.sub_sequence_number().max(0) as u64),
        );
        let initialize = DaemonMessage::Initialize(Initialize {
            shard_id: self.shard_id.clone(),
            starting_position,
        });
        self.exchange(&initialize)?;

        let mut end = self.settings.end;
        loop {
            if let Some(max) = self.settings.max_batches
                && self.report.batches >= max
            {
                self.report
                    .notes
                    .push(format!("stopped after {max} batches (--max-batches)"));
                break;
            }
            let Some(batch) = self.next_batch(records) else {
                break;
            };
            if self.stop.load(Ordering::Relaxed) && batch.is_empty() {
                end = EndAction::ShutdownRequested;
                break;
            }
            if batch.is_empty() {
                continue;
            }
            self.deliver(batch)?;
        }
        if self.stop.load(Ordering::Relaxed) {
            end = EndAction::ShutdownRequested;
            self.report.notes.push(
                "interrupted: ended like a daemon shutdown (shutdownRequested, then leaseLost)"
                    .into(),
            );
        }
        match end {
            EndAction::LeaseLost => {
                self.exchange(&DaemonMessage::LeaseLost)?;
            }
            EndAction::ShardEnded => {
                self.exchange(&DaemonMessage::ShardEnded)?;
                if !self.lease.checkpointer().last().is_shard_end() {
                    self.report.problems.push(format!(
                        "the child answered shardEnded without checkpointing the end of the shard (the checkpoint stays at {}): the KCL would retry the shard's shutdown forever and its child shards would never start; checkpoint with no sequence number (or at the last record, if not already checkpointed there) in shard_ended",
                        describe(self.lease.checkpointer().last())
                    ));
                }
            }
            EndAction::ShutdownRequested => {
                let shutdown = DaemonMessage::ShutdownRequested;
                self.send_message(&shutdown)?;
                match self.await_status(shutdown.action()) {
                    Ok(()) => {}
                    // The daemon only logs a failed shutdown notification, then goes on.
                    Err(Stop::Exit1(why)) => self.report.notes.push(format!(
                        "{why} — the daemon only logs \"Child process failed to complete shutdown notification\" and goes on with leaseLost"
                    )),
                    Err(halt) => return Err(halt),
                }
                self.exchange(&DaemonMessage::LeaseLost)?;
            }
        }
        Ok(())
    }

    /// Up to `batch_size` records (fewer if the input is slow or ends); `None` when the input is
    /// finished and nothing is left. Records at or before the initial checkpoint are dropped.
    fn next_batch(&mut self, records: &Receiver<ShardRecord>) -> Option<Vec<ShardRecord>> {
        let mut batch = Vec::new();
        let mut deadline: Option<Instant> = None;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Some(batch);
            }
            let wait = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_millis(100),
            };
            match records.recv_timeout(wait) {
                Ok(record) => {
                    if self.already_checkpointed(&record) {
                        self.report.resumed_past += 1;
                        continue;
                    }
                    batch.push(record);
                    if batch.len() >= self.settings.batch_size {
                        return Some(batch);
                    }
                    deadline.get_or_insert_with(|| Instant::now() + self.settings.linger);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Some(batch);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return if batch.is_empty() { None } else { Some(batch) };
                }
            }
        }
    }

    fn already_checkpointed(&self, record: &ShardRecord) -> bool {
        let position = ExtendedSequenceNumber::new(record.sequence_number.clone(), 0);
        matches!(
            position.compare(&self.report.initial),
            Ok(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
        )
    }

    fn deliver(&mut self, batch: Vec<ShardRecord>) -> Result<(), Stop> {
        let last = batch.last().expect("batches are not empty");
        let now = now_millis();
        let millis_behind_latest = (now - last.arrival).max(0) as u64;
        let count = batch.len() as u64;
        let records = batch
            .into_iter()
            .map(|record| {
                let position = Position::new(record.sequence_number, 0);
                WireRecord::new(
                    &record.data,
                    record.partition_key,
                    &position,
                    Some(record.arrival),
                )
            })
            .collect();
        let message = DaemonMessage::ProcessRecords(ProcessRecordsMessage {
            records,
            millis_behind_latest: Some(millis_behind_latest),
        });
        self.exchange(&message)?;
        self.report.batches += 1;
        self.report.delivered += count;
        self.totals.records.fetch_add(count, Ordering::Relaxed);
        let batches = self.totals.batches.fetch_add(1, Ordering::Relaxed) + 1;
        self.console.batch_done(&self.totals, batches);
        Ok(())
    }

    /// Sends `message` and waits for the child's status for it.
    fn exchange(&mut self, message: &DaemonMessage) -> Result<(), Stop> {
        self.send_message(message)?;
        self.await_status(message.action())
    }

    /// Sends `message`, after telling the lease which action is now in progress.
    fn send_message(&mut self, message: &DaemonMessage) -> Result<(), Stop> {
        self.lease.sending(message);
        self.send(&message.to_json(), message.action())
    }

    fn send(&mut self, line: &str, action: &str) -> Result<(), Stop> {
        if self.settings.trace {
            self.say(&format!("D> {}", shorten(line, 300)));
        }
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(Stop::Exit1(format!(
                "cannot send {action}: the child's stdin is closed"
            )));
        };
        let mut framed = Vec::with_capacity(line.len() + 1);
        framed.extend_from_slice(line.as_bytes());
        framed.push(b'\n');
        stdin
            .write_all(&framed)
            .and_then(|_| stdin.flush())
            .map_err(|e| {
                Stop::Exit1(format!(
                    "writing {action} to the child's stdin failed ({e}): the child is gone"
                ))
            })
    }

    /// Reads the child's lines until the status for `action`; answers checkpoint requests (the
    /// lease knows whether this action gives a checkpointer).
    fn await_status(&mut self, action: &'static str) -> Result<(), Stop> {
        let started = Instant::now();
        let mut last_message = Instant::now();
        let mut next_notice = Duration::from_secs(15);
        loop {
            let wait = match self.settings.timeout {
                Some(timeout) => timeout
                    .saturating_sub(last_message.elapsed())
                    .min(Duration::from_secs(1)),
                None => Duration::from_secs(1),
            };
            let event = self
                .lines
                .as_ref()
                .expect("the child runs")
                .recv_timeout(wait);
            let line = match event {
                Ok(ReadEvent::Line(line)) => line,
                Ok(ReadEvent::End(error)) => {
                    let why = match error {
                        Some(error) => format!("reading the child's stdout failed ({error})"),
                        None => "the child closed its stdout (it exited?)".to_string(),
                    };
                    return Err(Stop::Exit1(format!("{why} while {action} was outstanding")));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Stop::Exit1(format!(
                        "the child's stdout ended while {action} was outstanding"
                    )));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(timeout) = self.settings.timeout {
                        if last_message.elapsed() >= timeout {
                            return Err(Stop::Halt(format!(
                                "no message from the child for {:.1} s while {action} was outstanding",
                                timeout.as_secs_f64()
                            )));
                        }
                    } else if started.elapsed() >= next_notice {
                        self.say(&format!(
                            "still waiting for the status of {action} ({} s); the real daemon waits forever unless timeoutInSeconds is set (--timeout)",
                            started.elapsed().as_secs()
                        ));
                        next_notice *= 2;
                    }
                    continue;
                }
            };
            if self.settings.trace && !line.iter().all(u8::is_ascii_whitespace) {
                self.say(&format!(
                    "C< {}",
                    shorten(&String::from_utf8_lossy(&line), 300)
                ));
            }
            match parse_child_line(&line) {
                ChildLine::Blank => {}
                ChildLine::Skipped { reason } => {
                    self.report.skipped_lines += 1;
                    if self.skipped_shown < SHOWN_SKIPPED_LINES {
                        self.skipped_shown += 1;
                        self.say(&format!(
                            "stdout line skipped by the daemon ({reason}): {}",
                            shorten(&String::from_utf8_lossy(&line), 200)
                        ));
                        if self.skipped_shown == SHOWN_SKIPPED_LINES {
                            self.say("(further skipped lines are only counted)");
                        }
                    }
                }
                ChildLine::OtherMessage { action: other } => {
                    last_message = Instant::now();
                    self.say(&format!(
                        "the child wrote a {other} message; the daemon reads it and ignores it"
                    ));
                }
                ChildLine::Checkpoint(request) => {
                    last_message = Instant::now();
                    let error = self.judge(&request);
                    let reply = request.reply_json(error.as_deref());
                    self.send(&reply, "a checkpoint reply")?;
                }
                ChildLine::Status { response_for } => {
                    if response_for.as_deref() == Some(action) {
                        return Ok(());
                    }
                    return Err(Stop::Exit1(format!(
                        "the child answered {action} with a status for {}",
                        match response_for {
                            Some(other) => format!("{other:?}"),
                            None => "nothing (responseFor missing or null)".to_string(),
                        }
                    )));
                }
            }
        }
    }

    /// The daemon's answer to a checkpoint request: `None` = success.
    fn judge(&mut self, request: &CheckpointRequest) -> Option<String> {
        self.report.checkpoint_requests += 1;
        self.totals.checkpoints.fetch_add(1, Ordering::Relaxed);
        let nth = self.report.checkpoint_requests;
        let injected = self
            .settings
            .injections
            .iter()
            .find(|i| i.nth == nth && i.shard.is_none_or(|s| s == self.index))
            .map(|i| i.error.clone());
        let error = if let Some(error) = injected {
            self.say(&format!(
                "checkpoint request {nth} answered with {error} (--checkpoint-error)"
            ));
            Some(error)
        } else {
            let last = self.lease.checkpointer().last().clone();
            let largest = self.lease.checkpointer().largest_permitted().clone();
            match self.lease.checkpoint(
                request.sequence_number.as_deref(),
                request.sub_sequence_number,
            ) {
                Ok(CheckpointOutcome::Stored(value)) => {
                    self.report.checkpoints_stored += 1;
                    match self.store.set(&self.shard_id, &value) {
                        Ok(()) => None,
                        Err(error) => {
                            self.report
                                .problems
                                .push(format!("the checkpoint file could not be written: {error}"));
                            Some("KinesisClientLibDependencyException".to_string())
                        }
                    }
                }
                Ok(CheckpointOutcome::Unchanged) => None,
                // This action gives no checkpointer (initialize, leaseLost).
                Err(error @ DaemonError::InvalidState) => Some(error.to_string()),
                Err(name) => {
                    self.say(&format!(
                        "checkpoint at {} refused ({name}): the KCL accepts only [last checkpoint {}, largest delivered {}]",
                        match &request.sequence_number {
                            Some(sequence) => format!(
                                "{:?}/{}",
                                sequence,
                                request.sub_sequence_number.map_or("null".into(), |n| n.to_string())
                            ),
                            None => "null".into(),
                        },
                        describe(&last),
                        describe(&largest)
                    ));
                    Some(name.to_string())
                }
            }
        };
        if error.is_some() {
            self.report.checkpoint_errors += 1;
            self.totals
                .checkpoint_errors
                .fetch_add(1, Ordering::Relaxed);
        }
        error
    }

    /// Closes the child's stdin, drains its stdout, and waits (bounded) for it to exit.
    fn finish_child(&mut self) {
        drop(self.stdin.take());
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + self.settings.exit_timeout;
        if let Some(lines) = self.lines.take() {
            while let Ok(ReadEvent::Line(line)) =
                lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                if matches!(parse_child_line(&line), ChildLine::Blank) {
                    continue;
                }
                self.say(&format!(
                    "line after the end (the daemon drains and logs it): {}",
                    shorten(&String::from_utf8_lossy(&line), 200)
                ));
            }
        }
        let status = wait_until(&mut child, deadline);
        self.report.exit = match status {
            Some(status) => exit_of(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                self.report.problems.push(format!(
                    "the child did not exit within {:.1} s after its stdin was closed, so it was killed; the real daemon would wait forever",
                    self.settings.exit_timeout.as_secs_f64()
                ));
                Exit::Killed
            }
        };
        match self.report.exit {
            Exit::Code(0) | Exit::Killed | Exit::NotStarted => {}
            Exit::Code(code) => self
                .report
                .problems
                .push(format!("the child exited with code {code}")),
            Exit::Signal(signal) => self
                .report
                .problems
                .push(format!("the child was killed by signal {signal}")),
        }
        if let Some(done) = self.stderr_done.take() {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
    }
}

fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    }
}

fn exit_of(status: ExitStatus) -> Exit {
    if let Some(code) = status.code() {
        return Exit::Code(code);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Exit::Signal(signal);
        }
    }
    Exit::Code(-1)
}

/// The wall clock in epoch milliseconds, as the daemon stamps arrivals and lag.
pub(super) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A checkpoint for people: `record 42` for this tool's sequence numbers, else the value.
pub fn describe(value: &ExtendedSequenceNumber) -> String {
    match record_index(value.sequence_number()) {
        Some(index) if value.sub_sequence_number() == 0 => format!("record {}", index + 1),
        Some(index) => format!("record {}/{}", index + 1, value.sub_sequence_number()),
        None if value.sub_sequence_number() == 0 => value.sequence_number().to_string(),
        None => value.to_string(),
    }
}
