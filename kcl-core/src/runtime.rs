//! The public runtime: the [`Runtime`] builder, the entry points that run a processor on the
//! daemon's pipe ([`run`], [`run_main`], [`Runtime::run_on`]), and the loop that feeds the
//! engine (`crate::engine`) one line at a time.

use std::io::{self, Read, Write};
use std::time::Duration;

use crate::checkpoint::RetryPolicy;
use crate::deadline::{DeadlineAction, HookDeadline};
use crate::engine::Engine;
use crate::failure::FailurePolicy;
use crate::guard;
use crate::processor::RecordProcessor;
use crate::strategy::CheckpointStrategy;
use crate::transport::{Incoming, LineTransport};

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
            use std::os::fd::AsFd;
            use std::os::fd::AsRawFd;
            let channel = crate::stdio::take()?;
            crate::pipe_size::apply(channel.input.as_fd());
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
            return Err(io::Error::other(crate::failure::PolicyExit::new(reason)));
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
