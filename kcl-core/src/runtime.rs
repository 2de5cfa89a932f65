//! The runtime loop: one daemon action in, one hook called, exactly one status out.

use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::checkpoint::{Checkpointer, Phase, Progress, RetryPolicy};
use crate::deadline::{DeadlineAction, HookDeadline, Watchdog};
use crate::error::Result;
use crate::failure::FailurePolicy;
use crate::guard;
use crate::message::{
    ChildMessage, DaemonMessage, ParsedLine, ProcessRecordsMessage, ShutdownReason,
};
use crate::processor::RecordProcessor;
use crate::record::Record;
use crate::scan::ScannedBatch;
use crate::strategy::CheckpointStrategy;
use crate::transport::{Incoming, LineTransport, Transport};
use kcl_protocol::Position;
use std::time::Duration;

/// Configures and runs a [`RecordProcessor`] against the daemon.
///
/// [`run`] is `Runtime::new(processor).run()`. [`Runtime::run_on`] takes any reader and writer
/// instead of the process's stdin and stdout: the seam for transcript tests.
///
/// ```
/// use kcl_core::{from_fn, RetryPolicy, Runtime};
/// let processor = from_fn(|_batch, checkpointer| Ok(checkpointer.checkpoint()?));
/// let input = concat!(
///     r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#, "\n",
///     r#"{"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"495903382714902566081","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#, "\n",
///     r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#, "\n",
///     r#"{"action":"leaseLost"}"#, "\n",
/// );
/// let mut output = Vec::new();
/// Runtime::new(processor)
///     .checkpoint_retry(RetryPolicy::immediate(3))
///     .run_on(input.as_bytes(), &mut output)
///     .unwrap();
/// let lines: Vec<&str> = std::str::from_utf8(&output).unwrap().lines().filter(|l| !l.is_empty()).collect();
/// assert_eq!(lines, [
///     r#"{"action":"status","responseFor":"initialize"}"#,
///     r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
///     r#"{"action":"status","responseFor":"processRecords"}"#,
///     r#"{"action":"status","responseFor":"leaseLost"}"#,
/// ]);
/// ```
pub struct Runtime<P> {
    processor: P,
    settings: Settings,
}

/// The runtime's settings, as given to the engine.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) retry: RetryPolicy,
    pub(crate) strategy: CheckpointStrategy,
    pub(crate) failure: FailurePolicy,
    pub(crate) deadline: Option<HookDeadline>,
    pub(crate) signal_grace: Option<Duration>,
}

impl<P> Runtime<P> {
    /// A runtime with the default settings.
    ///
    /// ```
    /// let runtime = kcl_core::Runtime::new(kcl_core::from_fn(|_, _| Ok(())));
    /// let mut output = Vec::new();
    /// runtime.run_on(r#"{"action":"leaseLost"}"#.as_bytes(), &mut output).unwrap();
    /// assert_eq!(String::from_utf8(output).unwrap().trim(), r#"{"action":"status","responseFor":"leaseLost"}"#);
    /// ```
    pub fn new(processor: P) -> Self {
        Runtime {
            processor,
            settings: Settings::default(),
        }
    }

    /// How throttling and dependency errors of checkpoints are retried.
    ///
    /// With a single attempt, a throttled checkpoint is not asked again:
    ///
    /// ```
    /// # use kcl_core::{from_fn, RetryPolicy, Runtime};
    /// let input = concat!(
    ///     r#"{"action":"processRecords","records":[{"data":"eA==","partitionKey":"k","sequenceNumber":"1"}]}"#, "\n",
    ///     r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ThrottlingException"}"#, "\n",
    /// );
    /// let mut output = Vec::new();
    /// Runtime::new(from_fn(|_, cp| {
    ///     let _ = cp.checkpoint(); // the error reaches the handler after one attempt
    ///     Ok(())
    /// }))
    ///     .checkpoint_strategy(kcl_core::CheckpointStrategy::Manual)
    ///     .checkpoint_retry(RetryPolicy::immediate(1))
    ///     .run_on(input.as_bytes(), &mut output)
    ///     .unwrap();
    /// assert_eq!(String::from_utf8(output).unwrap().matches(r#""action":"checkpoint""#).count(), 1);
    /// ```
    pub fn checkpoint_retry(mut self, retry: RetryPolicy) -> Self {
        self.settings.retry = retry;
        self
    }

    /// When the runtime checkpoints by itself (default: after every batch).
    ///
    /// ```
    /// use kcl_core::{from_fn, CheckpointStrategy, Runtime};
    /// let runtime = Runtime::new(from_fn(|_, _| Ok(()))).checkpoint_strategy(CheckpointStrategy::Manual);
    /// # let _ = runtime;
    /// ```
    pub fn checkpoint_strategy(mut self, strategy: CheckpointStrategy) -> Self {
        self.settings.strategy = strategy;
        self
    }

    /// How a failed batch is retried and what follows the last attempt (default: 3 attempts,
    /// then stop checkpointing the shard).
    ///
    /// ```
    /// use kcl_core::{from_fn, FailurePolicy, Runtime};
    /// let runtime = Runtime::new(from_fn(|_, _| Ok(()))).failure_policy(FailurePolicy::skip().attempts(5));
    /// # let _ = runtime;
    /// ```
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.settings.failure = policy;
        self
    }

    /// A deadline for each action's hooks (off by default): past it, the watchdog logs an error
    /// naming the shard, the action and the batch, and with [`DeadlineAction::Exit`] ends the
    /// process so that the worker restarts from the last checkpoint.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kcl_core::{from_fn, DeadlineAction, Runtime};
    /// let runtime = Runtime::new(from_fn(|_, _| Ok(()))).hook_deadline(Duration::from_secs(120), DeadlineAction::Exit);
    /// # let _ = runtime;
    /// ```
    pub fn hook_deadline(mut self, after: Duration, then: DeadlineAction) -> Self {
        self.settings.deadline = Some(HookDeadline { after, then });
        self
    }

    /// How long the process goes on after SIGINT or SIGTERM while the daemon sends nothing
    /// (default 30 s; the environment variable `KCL_SIGNAL_GRACE_MS` overrides it).
    ///
    /// Ctrl-C signals the whole process group: the daemon and every child. The daemon then shuts
    /// down gracefully (`shutdownRequested`, `leaseLost`) if `shutdownGraceMillis` allows it, and
    /// needs its children for that, so a signal does not end the child: it logs the signal and
    /// keeps answering until the daemon closes stdin. If no daemon action comes for this long
    /// after the signal, the process exits with code 0 between two actions (never while a hook
    /// runs). A second SIGINT exits at once with code 130. Only [`run`](Self::run) handles
    /// signals.
    ///
    /// ```
    /// use std::time::Duration;
    /// let runtime = kcl_core::Runtime::new(kcl_core::from_fn(|_, _| Ok(()))).signal_grace(Duration::from_secs(60));
    /// # let _ = runtime;
    /// ```
    pub fn signal_grace(mut self, grace: Duration) -> Self {
        self.settings.signal_grace = Some(grace);
        self
    }

    pub(crate) fn into_parts(self) -> (P, Settings) {
        (self.processor, self.settings)
    }
}

impl<P: RecordProcessor> Runtime<P> {
    /// The engine alone, for a driver other than the daemon's pipe (see [`crate::engine`]): the
    /// processor with these settings, handling typed events.
    ///
    /// ```
    /// let engine = kcl_core::Runtime::new(kcl_core::from_fn(|_, _| Ok(()))).shard_engine();
    /// # let _ = engine;
    /// ```
    pub fn shard_engine(self) -> crate::engine::ShardEngine<P> {
        crate::engine::ShardEngine::new(Engine::new(self.processor, self.settings))
    }

    /// Runs on the process's stdin and stdout until stdin ends.
    ///
    /// Before reading anything it calls [`prepare`](crate::prepare): a `tracing` subscriber on
    /// stderr (honouring `RUST_LOG`) unless one is set; the daemon's stdin and stdout moved to
    /// private descriptors, with descriptor 1 pointing at stderr (so `println!` anywhere in the
    /// process cannot corrupt the protocol) and descriptor 0 at `/dev/null` (so nothing else
    /// reads the daemon's lines); SIGINT and SIGTERM handled as
    /// [`signal_grace`](Self::signal_grace) says.
    ///
    /// ```no_run
    /// use kcl_core::{from_fn, RetryPolicy, Runtime};
    /// use std::time::Duration;
    /// fn main() -> std::io::Result<()> {
    ///     let retry = RetryPolicy { max_attempts: 10, max_backoff: Duration::from_secs(30), ..RetryPolicy::default() };
    ///     Runtime::new(from_fn(|_, cp| Ok(cp.checkpoint()?)))
    ///         .checkpoint_retry(retry)
    ///         .run() // returns when the daemon closes stdin
    /// }
    /// ```
    pub fn run(self) -> io::Result<()> {
        crate::child::prepare()?;
        crate::signals::set_grace(
            self.settings
                .signal_grace
                .unwrap_or(crate::signals::DEFAULT_SIGNAL_GRACE),
        );
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let channel = crate::stdio::take()?;
            crate::signals::watch_input(channel.input.as_raw_fd());
            // Reads of at least the transport's chunk go straight to the pipe: no BufReader.
            let output = io::BufWriter::with_capacity(4096, channel.output);
            self.serve(channel.input, output, true)
        }
        #[cfg(not(unix))]
        {
            let (input, output) = crate::stdio::take()?;
            self.serve(
                input.lock(),
                io::BufWriter::with_capacity(4096, output),
                true,
            )
        }
    }

    /// [`run`](Self::run), then an exit code: success when stdin ended, failure (after logging
    /// why) when the channel to the daemon broke. What `#[kcl::main]` calls.
    ///
    /// ```no_run
    /// fn main() -> std::process::ExitCode {
    ///     kcl_core::Runtime::new(kcl_core::from_fn(|_, _| Ok(()))).run_main()
    /// }
    /// ```
    pub fn run_main(self) -> std::process::ExitCode {
        match self.run() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!("exiting with a failure: {error}");
                std::process::ExitCode::FAILURE
            }
        }
    }

    /// Runs on the given input and output until the input ends; returns an error only if the
    /// channel itself fails (the daemon is gone).
    ///
    /// Lines that are not messages are skipped; unknown actions are acknowledged:
    ///
    /// ```
    /// let input = concat!("Picked up JAVA_TOOL_OPTIONS: -Xmx1g\n", r#"{"action":"wave"}"#, "\n");
    /// let mut output = Vec::new();
    /// kcl_core::Runtime::new(kcl_core::from_fn(|_, _| Ok(())))
    ///     .run_on(input.as_bytes(), &mut output)
    ///     .unwrap();
    /// assert_eq!(String::from_utf8(output).unwrap().trim(), r#"{"action":"status","responseFor":"wave"}"#);
    /// ```
    pub fn run_on<R: Read, W: Write>(self, input: R, output: W) -> io::Result<()> {
        self.serve(input, output, false)
    }

    /// The loop; `signals`: tell the signal watcher when the process waits between actions.
    fn serve<R: Read, W: Write>(self, input: R, output: W, signals: bool) -> io::Result<()> {
        let mut transport = LineTransport::new(input, output);
        let mut engine = Engine::new(self.processor, self.settings);
        let result = serve_until_the_end(&mut engine, &mut transport, signals);
        // The processor's `Drop` is user code too.
        guard::drop_quietly(engine);
        result
    }
}

fn serve_until_the_end<P: RecordProcessor, R: Read, W: Write>(
    engine: &mut Engine<P>,
    transport: &mut LineTransport<R, W>,
    signals: bool,
) -> io::Result<()> {
    loop {
        if signals && !transport.has_unread_line() {
            crate::signals::waiting();
        }
        // Lines skipped while reading are logged with the shard they came for.
        let span = tracing::error_span!("shard", id = %engine.shard_id);
        let next = span.in_scope(|| transport.next_incoming());
        if signals {
            crate::signals::working();
        }
        let Some(incoming) = next? else { break };
        let handled = match incoming {
            Incoming::Batch(batch) => engine.handle_batch(batch, transport),
            Incoming::Parsed(parsed) => engine.handle(parsed, transport),
        };
        if let Err(error) = handled {
            // The daemon died while this action was in flight (its end of our stdout is closed;
            // stdin ends too, though this process may not have read that far yet). Nobody is
            // left to answer: that is the end of input, not a failure of this process.
            if error.kind() == io::ErrorKind::BrokenPipe {
                tracing::info!(
                    "the daemon is gone (stdout closed{}); exiting",
                    if transport.input_ended() {
                        ", stdin ended"
                    } else {
                        ""
                    }
                );
                return Ok(());
            }
            return Err(error);
        }
        if let Some(reason) = engine.exit_reason() {
            return Err(io::Error::other(reason.to_owned()));
        }
    }
    tracing::debug!(shard = %engine.shard_id, "stdin closed; exiting");
    Ok(())
}

/// Runs `processor` as a MultiLangDaemon child on stdin/stdout with the default settings.
///
/// ```no_run
/// use kcl_core::{Batch, Checkpointer, RecordProcessor, Result};
/// struct Printer;
/// impl RecordProcessor for Printer {
///     fn process_records(&mut self, batch: &Batch, cp: &mut Checkpointer<'_>) -> Result<()> {
///         for record in batch {
///             println!("{:?}", record.data()); // lands on stderr: stdout belongs to the daemon
///         }
///         cp.checkpoint()?;
///         Ok(())
///     }
/// }
/// fn main() -> std::io::Result<()> {
///     kcl_core::run(Printer)
/// }
/// ```
pub fn run<P: RecordProcessor>(processor: P) -> io::Result<()> {
    Runtime::new(processor).run()
}

/// Runs a configured runtime on stdin/stdout and returns the process's exit code (the same as
/// [`Runtime::run_main`], with the processor bound checked here, once).
///
/// The processor is built before the process is [prepared](crate::prepare): prints and
/// programs started while building it still reach the real stdout and stdin. [`run_main_with`]
/// prepares first.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     let processor = kcl_core::from_fn(|_, _| Ok(()));
///     kcl_core::run_main(kcl_core::Runtime::new(processor).checkpoint_strategy(kcl_core::CheckpointStrategy::Manual))
/// }
/// ```
pub fn run_main<P: RecordProcessor>(runtime: Runtime<P>) -> std::process::ExitCode {
    runtime.run_main()
}

/// [Prepares](crate::prepare) the process (private stdin and stdout, signals, logging), then
/// builds the runtime and runs it on stdin/stdout; returns the exit code. What `#[kcl::main]`
/// expands to: code that builds the processor can print, read stdin and start programs without
/// touching the daemon's pipes.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     kcl_core::run_main_with(|| {
///         println!("lands on stderr"); // the processor is built after the pipes are moved
///         kcl_core::Runtime::new(kcl_core::from_fn(|_, _| Ok(())))
///     })
/// }
/// ```
pub fn run_main_with<P: RecordProcessor>(
    build: impl FnOnce() -> Runtime<P>,
) -> std::process::ExitCode {
    if let Err(error) = crate::child::prepare() {
        tracing::error!("cannot set up the process as a daemon child: {error}");
        return std::process::ExitCode::FAILURE;
    }
    build().run_main()
}

/// One shard's state machine: dispatches each daemon message to the processor.
pub(crate) struct Engine<P> {
    pub(crate) processor: P,
    pub(crate) progress: Progress,
    pub(crate) shard_id: Arc<str>,
    pub(crate) retry: RetryPolicy,
    strategy: CheckpointStrategy,
    pub(crate) failure: FailurePolicy,
    /// Set when the failure policy says to end the process.
    pub(crate) exit: Option<String>,
    pub(crate) watchdog: Option<Watchdog>,
}

impl<P: RecordProcessor> Engine<P> {
    pub(crate) fn new(processor: P, settings: Settings) -> Self {
        Engine {
            processor,
            progress: Progress::default(),
            shard_id: Arc::from("<uninitialized>"),
            retry: settings.retry,
            strategy: settings.strategy,
            failure: settings.failure,
            exit: None,
            watchdog: settings.deadline.map(Watchdog::start),
        }
    }

    /// Why the process must end (failure policy `exit`), once it must.
    pub(crate) fn exit_reason(&self) -> Option<&str> {
        self.exit.as_deref()
    }

    pub(crate) fn processor(&self) -> &P {
        &self.processor
    }

    pub(crate) fn processor_mut(&mut self) -> &mut P {
        &mut self.processor
    }

    /// Handles one parsed line; writes the status it calls for.
    pub(crate) fn handle(
        &mut self,
        parsed: ParsedLine,
        transport: &mut dyn Transport,
    ) -> io::Result<()> {
        if let ParsedLine::Message(DaemonMessage::Initialize(init)) = &parsed {
            self.shard_id = Arc::from(init.shard_id.as_str());
            crate::signals::set_shard(&init.shard_id);
        }
        let span = tracing::error_span!("shard", id = %self.shard_id);
        let _entered = span.enter();
        let response_for = match parsed {
            ParsedLine::Blank | ParsedLine::Junk { .. } => return Ok(()),
            ParsedLine::Message(DaemonMessage::CheckpointReply(reply)) => {
                tracing::warn!(
                    "ignoring a checkpoint reply that answers no request (sequenceNumber {:?}, error {:?})",
                    reply.sequence_number,
                    reply.error
                );
                return Ok(());
            }
            ParsedLine::Message(message) => {
                let action = message.action();
                self.dispatch(message, transport);
                if self.exit.is_some() {
                    return Ok(()); // the failure policy ends the process: no status
                }
                action.to_owned()
            }
            ParsedLine::UnknownAction(action) => {
                tracing::warn!(
                    "unknown action {action:?}: no hook called; acknowledging it with a status so the daemon goes on"
                );
                action
            }
            ParsedLine::Malformed { action, cause } => {
                if action == "checkpoint" {
                    tracing::warn!(
                        "ignoring a malformed checkpoint reply that answers no request: {cause}"
                    );
                    return Ok(());
                }
                tracing::error!("malformed {action:?} message ({cause}); no hook called");
                let consequence = match action.as_str() {
                    "processRecords" => {
                        "the batch's records are unknown, so they count as not handled"
                    }
                    "initialize" => "the processor is not initialized, so no batch will be handled",
                    _ => "",
                };
                if !consequence.is_empty() {
                    let stall = self.progress.stall(None);
                    tracing::error!("{consequence}: {stall}");
                }
                action
            }
        };
        transport.send(&ChildMessage::Status { response_for })
    }

    /// Handles a `processRecords` decoded by the fast path; writes its status.
    pub(crate) fn handle_batch(
        &mut self,
        batch: ScannedBatch,
        transport: &mut dyn Transport,
    ) -> io::Result<()> {
        let span = tracing::error_span!("shard", id = %self.shard_id);
        let _entered = span.enter();
        let ScannedBatch {
            records,
            first,
            last,
            count,
            millis_behind_latest,
            buffer,
        } = batch;
        self.process_batch(first, last, count, records, millis_behind_latest, transport);
        // Unless user code kept records, the line's buffer can be read into again.
        if let Ok(buffer) = Arc::try_unwrap(buffer) {
            transport.recycle(buffer);
        }
        if self.exit.is_some() {
            return Ok(());
        }
        transport.send(&ChildMessage::Status {
            response_for: "processRecords".to_owned(),
        })
    }

    /// Handles a batch of records decoded by whoever drives the engine ([`crate::engine`]).
    pub(crate) fn handle_decoded(
        &mut self,
        records: Vec<Record>,
        millis_behind_latest: Option<u64>,
        transport: &mut dyn Transport,
    ) {
        let span = tracing::error_span!("shard", id = %self.shard_id);
        let _entered = span.enter();
        let count = records.len();
        let first = records.first().map(|r| r.position().clone());
        let last = records.last().map(|r| r.position().clone());
        self.process_batch(
            first,
            last,
            count,
            Ok(records),
            millis_behind_latest,
            transport,
        );
    }

    fn dispatch(&mut self, message: DaemonMessage, transport: &mut dyn Transport) {
        match message {
            DaemonMessage::Initialize(init) => {
                self.progress.checkpointed = init.starting_position.checkpoint().cloned();
                self.progress.last_checkpoint_at = Some(std::time::Instant::now());
                tracing::debug!(starting_position = ?init.starting_position, "initialize");
                let processor = &mut self.processor;
                let cause = Self::timed(&self.watchdog, "initialize", &self.shard_id, || {
                    guard::call_hook(|| processor.initialize(&init))
                });
                if let Some(cause) = cause {
                    tracing::error!("initialize hook {cause}");
                    let stall = self.progress.stall(None);
                    tracing::error!(
                        "the processor is not initialized, so no batch will be handled: {stall}"
                    );
                }
            }
            DaemonMessage::ProcessRecords(batch) => self.process_records(batch, transport),
            DaemonMessage::LeaseLost => self.lease_lost(),
            DaemonMessage::ShardEnded => self.shard_ended(transport),
            DaemonMessage::ShutdownRequested => self.shutdown_requested(transport),
            DaemonMessage::Shutdown(reason) => match reason {
                ShutdownReason::Terminate => self.shard_ended(transport),
                ShutdownReason::Requested => self.shutdown_requested(transport),
                ShutdownReason::Zombie => self.lease_lost(),
                ShutdownReason::Other(reason) => {
                    tracing::warn!(
                        "legacy shutdown with unknown reason {reason:?}: handled as a lost lease"
                    );
                    self.lease_lost()
                }
            },
            DaemonMessage::CheckpointReply(_) => unreachable!("handled by the caller"),
        }
    }

    fn process_records(&mut self, message: ProcessRecordsMessage, transport: &mut dyn Transport) {
        let count = message.records.len();
        let first = message.records.first().map(|r| r.position());
        let last = message.records.last().map(|r| r.position());
        let lag = message.millis_behind_latest;
        let records = Record::batch_from_wire(message.records);
        self.process_batch(first, last, count, records, lag, transport);
    }

    /// The body of `processRecords`, whichever parser decoded the batch.
    fn process_batch(
        &mut self,
        first: Option<Position>,
        last: Option<Position>,
        count: usize,
        records: std::result::Result<Vec<Record>, crate::record::PayloadError>,
        lag: Option<u64>,
        transport: &mut dyn Transport,
    ) {
        if last.is_some() && self.progress.delivered < last {
            self.progress.delivered = last.clone();
        }
        let range = match (&first, &last) {
            (Some(first), Some(last)) => format!("{count} records, {first} ..= {last}"),
            _ => "0 records".to_owned(),
        };
        if let Some(stall) = &self.progress.stall {
            tracing::error!(
                "refusing batch ({range}) without calling the handler: {stall}; restart the worker to retry from the last checkpoint"
            );
            return;
        }
        let records = match records {
            Ok(records) => records,
            Err(error) => {
                self.fail_batch(first, &range, &format!("could not be decoded: {error}"));
                return;
            }
        };
        self.handle_records(records, lag, &range, transport);
    }

    pub(crate) fn arm_watchdog(&self, what: String) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.arm(what);
        }
    }

    pub(crate) fn disarm_watchdog(&self) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.disarm();
        }
    }

    /// Runs `call` (a hook) with the hook deadline armed.
    fn timed<T>(
        watchdog: &Option<Watchdog>,
        hook: &str,
        shard_id: &str,
        call: impl FnOnce() -> T,
    ) -> T {
        if let Some(watchdog) = watchdog {
            watchdog.arm(format!("the {hook} hook on shard {shard_id}"));
        }
        let outcome = call();
        if let Some(watchdog) = watchdog {
            watchdog.disarm();
        }
        outcome
    }

    /// Calls a hook that may checkpoint (`shutdownRequested`, `shardEnded`), timed by the
    /// deadline (not while it waits for checkpoint replies); how it failed, if it did.
    fn call_checkpointing_hook(
        &mut self,
        hook: &str,
        phase: Phase,
        transport: &mut dyn Transport,
        call: impl FnOnce(&mut P, &mut Checkpointer<'_>) -> Result<()>,
    ) -> Option<String> {
        let processor = &mut self.processor;
        let progress = &mut self.progress;
        let (retry, watchdog) = (&self.retry, &self.watchdog);
        Self::timed(watchdog, hook, &self.shard_id, || {
            guard::call_hook(|| {
                let mut checkpointer = Checkpointer::new(transport, progress, retry, phase)
                    .timed_by(watchdog.as_ref());
                call(processor, &mut checkpointer)
            })
        })
    }

    pub(crate) fn mark_handled(&mut self, records: &[Record]) {
        if let Some(last) = records.last() {
            self.progress.handled_since_checkpoint += records.len() as u64;
            self.advance_handled(last.position());
        }
    }

    /// A record skipped after the others (counted when it was skipped): every delivered record
    /// up to it is now handled.
    pub(crate) fn mark_handled_through(&mut self, position: Position) {
        self.advance_handled(&position);
    }

    fn advance_handled(&mut self, position: &Position) {
        if self.progress.handled.as_ref() < Some(position) {
            self.progress.handled = Some(position.clone());
        }
    }

    /// Checkpoints what was handled if the strategy (or the handler) says it is time.
    pub(crate) fn checkpoint_if_due(&mut self, transport: &mut dyn Transport) {
        let progress = &mut self.progress;
        let since = progress
            .last_checkpoint_at
            .get_or_insert_with(std::time::Instant::now)
            .elapsed();
        let requested = std::mem::take(&mut progress.requested);
        let due = requested
            || self
                .strategy
                .is_due(progress.handled_since_checkpoint, since);
        let Some(handled) = progress.handled.clone() else {
            return;
        };
        if !due
            || progress.lease_lost
            || progress.channel_closed
            || progress.checkpointed.as_ref() >= Some(&handled)
        {
            return;
        }
        let mut checkpointer =
            Checkpointer::new(transport, progress, &self.retry, Phase::ProcessRecords);
        if let Err(error) = checkpointer.checkpoint_position(&handled) {
            tracing::warn!(
                "checkpoint at {handled} failed: {error}; the next one covers these records"
            );
        }
    }

    pub(crate) fn fail_batch(&mut self, first: Option<Position>, range: &str, cause: &str) {
        if first.is_none() {
            tracing::error!("empty batch: {cause}; no record is affected");
            return;
        }
        let stall = self.progress.stall(first);
        tracing::error!(
            "batch ({range}) failed: {cause}. The shard stalls: {stall}; later batches are refused until the worker restarts from the last checkpoint"
        );
    }

    fn lease_lost(&mut self) {
        let processor = &mut self.processor;
        let cause = Self::timed(&self.watchdog, "leaseLost", &self.shard_id, || {
            guard::call_hook(|| processor.lease_lost())
        });
        if let Some(cause) = cause {
            tracing::error!("lease_lost hook {cause}");
        }
    }

    /// After a hook that may checkpoint: what it asked for with `request_checkpoint` or
    /// `Checkpoint::Now` (what was handled, now).
    fn checkpoint_requested(&mut self, phase: Phase, transport: &mut dyn Transport) {
        if !std::mem::take(&mut self.progress.requested) || self.progress.lease_lost {
            return;
        }
        let mut checkpointer = Checkpointer::new(transport, &mut self.progress, &self.retry, phase);
        if let Err(error) = checkpointer.checkpoint_handled() {
            tracing::warn!("the checkpoint the hook asked for failed: {error}");
        }
    }

    fn shutdown_requested(&mut self, transport: &mut dyn Transport) {
        self.progress.requested = false;
        let cause = self.call_checkpointing_hook(
            "shutdownRequested",
            Phase::ShutdownRequested,
            transport,
            |processor, checkpointer| processor.shutdown_requested(checkpointer),
        );
        if let Some(cause) = cause {
            tracing::error!("shutdown_requested hook {cause}");
            return;
        }
        self.checkpoint_requested(Phase::ShutdownRequested, transport);
    }

    fn shard_ended(&mut self, transport: &mut dyn Transport) {
        self.progress.requested = false;
        let cause = self.call_checkpointing_hook(
            "shardEnded",
            Phase::ShardEnded,
            transport,
            |processor, checkpointer| processor.shard_ended(checkpointer),
        );
        if let Some(cause) = cause {
            tracing::error!(
                "shard_ended hook {cause}; the end of the shard is not checkpointed: the daemon keeps the lease and the shard's children cannot start until the worker restarts and the shard is processed again"
            );
            return;
        }
        self.checkpoint_requested(Phase::ShardEnded, transport);
        if self.progress.shard_end_checkpointed || self.progress.lease_lost {
            return;
        }
        if let Some(stall) = &self.progress.stall {
            tracing::error!(
                "the shard ended but cannot be completed: {stall}; its child shards wait until the worker restarts and the shard is processed again"
            );
            return;
        }
        if !self.progress.all_handled() {
            return;
        }
        tracing::warn!(
            "shard_ended returned without checkpointing the end of the shard; checkpointing it now so the child shards can start"
        );
        let mut checkpointer = Checkpointer::new(
            transport,
            &mut self.progress,
            &self.retry,
            Phase::ShardEnded,
        );
        if let Err(error) = checkpointer.checkpoint() {
            tracing::error!("checkpointing the end of the shard failed: {error}");
        }
    }
}
