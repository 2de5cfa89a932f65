//! MultiLangDaemon children on the native engine: a Java-free MultiLangDaemon.
//!
//! [`ChildProcesses`] is a [`ShardHandlers`] that starts the daemon's `executableName` for each
//! lease the worker processes, and speaks the MultiLangDaemon protocol with it exactly as the
//! Java daemon (KCL 3.1.3) does, so a child written for the Java daemon in any language (an
//! amazon_kclpy or aws-kcl application, a `kcl` binary) runs unchanged:
//!
//! - the child is started when the lease's processing starts (after its parent shards are
//!   done), one process per lease, with the engine's environment and working directory;
//!   `executableName` is split on spaces with no shell ([`kcl_properties::command_words`]);
//! - `initialize` (the lease's checkpoint), `processRecords` (records de-aggregated, filtered
//!   past the checkpoint, `data` in base64, `millisBehindLatest`), `shutdownRequested`
//!   (graceful handoff or worker stop), `leaseLost` and `shardEnded`, one at a time, each
//!   awaiting the child's status for it;
//! - checkpoint requests are judged by the daemon's rule book ([`kcl_protocol::Lease`] through
//!   the lease's [`LeaseDriver`]: no checkpointer during `initialize` and `leaseLost`, the range
//!   check, `SHARD_END` at the end of a shard), written to the lease table, and answered with
//!   the Java exception's name on failure;
//! - lines that are not messages are skipped and logged; a child's stderr goes to the log line
//!   by line (target `kcl_native::child`, with the shard id);
//! - after the status for `leaseLost` or `shardEnded` the child's stdin is closed, its stdout
//!   drained, and its exit awaited (for [`ChildProcesses::exit_wait`], 30 s by default; the
//!   Java daemon waits without end, a child still running then is killed here).
//!
//! **When a child fails** (it cannot be started, exits or closes its stdout while an action is
//! outstanding, answers with a status for another action), the Java daemon closes it and exits
//! with code 1, taking every shard of the worker down; so does this engine, through
//! [`Handled::Exit`]: the run ends with [`RunError::ProcessorExit`](crate::RunError) naming
//! the shard and the cause, after the other shards got `shutdownRequested` and every lease was
//! released (the Java daemon leaves them to expire). A failed `shutdownRequested` is only
//! logged, as the daemon does; the `leaseLost` that follows then finds the child gone and
//! fails: after a graceful lease handoff that ends the run with `ProcessorExit` as above; at a
//! stop ([`Stopper`](crate::Stopper), SIGINT/SIGTERM) it is logged and the run ends as the stop
//! does (`Ok`, every lease released): the Java daemon is then in its shutdown hook, where its
//! `System.exit(1)` cannot change the exit status either. With `timeoutInSeconds`, a child
//! that writes no message for that long is killed and the run ends the same way (the Java
//! daemon halts at once), even one that stopped reading its stdin (lines are written to it on
//! a thread of their own, as the daemon's writer does).
//!
//! ```no_run
//! use kcl_native::multilang::ChildProcesses;
//! use kcl_properties::Properties;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let properties = Properties::load("app.properties")?;
//!     let config = kcl_native::load_config("app.properties")?;
//!     let children = ChildProcesses::from_properties(&properties)?;
//!     kcl_native::run_blocking(config, children)?;
//!     Ok(())
//! }
//! ```

mod process;

use std::sync::Arc;
use std::time::Duration;

use kcl_core::engine::{Event, Handled};
use kcl_properties::Properties;
use kcl_protocol::message::{DaemonMessage, ProcessRecordsMessage, WireRecord};

use crate::coordinator::LeaseDriver;
use crate::factory::{ShardHandler, ShardHandlers, ShardInfo};
use process::{ChildProcess, Failure};

/// How long a child may take to exit after its stdin is closed, by default.
pub const DEFAULT_EXIT_WAIT: Duration = Duration::from_secs(30);

/// Why a properties file gives no child to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChildConfigError {
    /// No `executableName`, or one whose program name is empty (it starts with a space).
    #[error(
        "executableName is missing or names no program (the daemon splits it on spaces: a leading space leaves the program name empty)"
    )]
    NoExecutable,
    /// `timeoutInSeconds` is not a number.
    #[error("timeoutInSeconds: {0}")]
    Timeout(String),
}

/// The [`ShardHandlers`] of a Java-free MultiLangDaemon: one child process per lease (see the
/// [module](self) documentation).
///
/// ```
/// use kcl_native::multilang::ChildProcesses;
/// use std::time::Duration;
///
/// let properties = kcl_properties::Properties::parse(b"executableName = python3 app.py\ntimeoutInSeconds = 60\n");
/// let children = ChildProcesses::from_properties(&properties).unwrap();
/// assert_eq!(children.command(), ["python3", "app.py"]);
/// assert_eq!(children.timeout(), Some(Duration::from_secs(60)));
/// ```
#[derive(Clone, Debug)]
pub struct ChildProcesses {
    settings: Arc<Settings>,
}

#[derive(Debug)]
struct Settings {
    command: Vec<String>,
    timeout: Option<Duration>,
    exit_wait: Duration,
}

impl ChildProcesses {
    /// Children started as `command` (program, then arguments), with no `timeoutInSeconds`.
    ///
    /// # Panics
    /// If `command` is empty.
    pub fn new<I, S>(command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let command: Vec<String> = command.into_iter().map(Into::into).collect();
        assert!(!command.is_empty(), "a child command needs a program");
        ChildProcesses {
            settings: Arc::new(Settings {
                command,
                timeout: None,
                exit_wait: DEFAULT_EXIT_WAIT,
            }),
        }
    }

    /// The children the daemon would start from its properties file: `executableName` and
    /// `timeoutInSeconds` (a positive number of seconds; unset, zero or negative: none).
    pub fn from_properties(properties: &Properties) -> Result<Self, ChildConfigError> {
        let command = properties
            .get("executableName")
            .and_then(kcl_properties::command_words)
            .filter(|words| !words.is_empty())
            .ok_or(ChildConfigError::NoExecutable)?;
        let timeout = properties
            .int("timeoutInSeconds")
            .map_err(|error| ChildConfigError::Timeout(error.to_string()))?
            .and_then(|seconds| u64::try_from(seconds).ok())
            .filter(|seconds| *seconds > 0)
            .map(Duration::from_secs);
        Ok(ChildProcesses::new(command).with_timeout(timeout))
    }

    /// With the daemon's `timeoutInSeconds`: the longest a child may go without writing a
    /// message while an action is outstanding.
    pub fn with_timeout(self, timeout: Option<Duration>) -> Self {
        self.with(|settings| settings.timeout = timeout)
    }

    /// How long a child may take to exit after its stdin is closed before it is killed
    /// ([`DEFAULT_EXIT_WAIT`]).
    pub fn exit_wait(self, wait: Duration) -> Self {
        self.with(|settings| settings.exit_wait = wait)
    }

    /// The program and its arguments.
    pub fn command(&self) -> &[String] {
        &self.settings.command
    }

    /// `timeoutInSeconds`, if set.
    pub fn timeout(&self) -> Option<Duration> {
        self.settings.timeout
    }

    fn with(self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings {
            command: self.settings.command.clone(),
            timeout: self.settings.timeout,
            exit_wait: self.settings.exit_wait,
        };
        change(&mut settings);
        ChildProcesses {
            settings: Arc::new(settings),
        }
    }
}

impl ShardHandlers for ChildProcesses {
    type Handler = ChildShard;

    fn handler(&self, shard: &ShardInfo) -> ChildShard {
        ChildShard {
            settings: self.settings.clone(),
            shard_id: shard.shard_id.clone(),
            state: State::NotStarted,
        }
    }
}

/// One lease's child process, driven as the Java daemon drives it (built by
/// [`ChildProcesses`]).
#[derive(Debug)]
pub struct ChildShard {
    settings: Arc<Settings>,
    shard_id: String,
    state: State,
}

#[derive(Debug)]
enum State {
    NotStarted,
    Running(Box<ChildProcessSlot>),
    /// After `leaseLost` or `shardEnded`, or a failure: no child any more.
    Closed,
}

/// The child, boxed so that `State` stays small.
struct ChildProcessSlot(ChildProcess);

impl std::fmt::Debug for ChildProcessSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChildProcess")
    }
}

impl ShardHandler for ChildShard {
    fn handle(&mut self, event: Event, driver: &mut LeaseDriver) -> Handled {
        driver.sending(&event);
        let message = match event {
            Event::Initialize(init) => {
                if let Err(handled) = self.start() {
                    return handled;
                }
                DaemonMessage::Initialize(init)
            }
            Event::Records {
                records,
                millis_behind_latest,
            } => DaemonMessage::ProcessRecords(ProcessRecordsMessage {
                records: records
                    .iter()
                    .map(|record| {
                        WireRecord::new(
                            record.data(),
                            record.partition_key(),
                            record.position(),
                            record.approximate_arrival_millis(),
                        )
                    })
                    .collect(),
                millis_behind_latest,
            }),
            Event::LeaseLost => DaemonMessage::LeaseLost,
            Event::ShardEnded => DaemonMessage::ShardEnded,
            Event::ShutdownRequested => DaemonMessage::ShutdownRequested,
        };
        let action = message.action();
        let State::Running(slot) = &mut self.state else {
            // As the Java daemon's processor after its child is gone: logged, nothing sent.
            tracing::info!(shard = %self.shard_id, "{action}: the child already ended; nothing sent");
            return Handled::Done;
        };
        let mut judge = |request: &kcl_protocol::daemon::CheckpointRequest| {
            driver
                .checkpoint_request(
                    request.sequence_number.as_deref(),
                    request.sub_sequence_number,
                )
                .err()
                .map(|error| error.java_name().to_owned())
        };
        let result = slot.0.exchange(action, &message.to_json(), &mut judge);
        match (result, action) {
            (Ok(()), "leaseLost" | "shardEnded") => {
                self.close();
                Handled::Done
            }
            (Ok(()), _) => Handled::Done,
            (Err(Failure::Exit(reason)), "shutdownRequested") => {
                tracing::warn!(shard = %self.shard_id, %reason, "the child failed to complete the shutdown notification (as the daemon, going on)");
                Handled::Done
            }
            (Err(failure), _) => self.fail(action, failure),
        }
    }
}

impl ChildShard {
    fn start(&mut self) -> Result<(), Handled> {
        let command = &self.settings.command;
        match ChildProcess::spawn(&self.shard_id, command, self.settings.timeout) {
            Ok(child) => {
                self.state = State::Running(Box::new(ChildProcessSlot(child)));
                Ok(())
            }
            Err(error) => {
                self.state = State::Closed;
                Err(Handled::Exit(format!(
                    "cannot start the child {:?}: {error} (the MultiLangDaemon exits here)",
                    command.join(" ")
                )))
            }
        }
    }

    /// The child's normal end: stdin closed, stdout drained, exit awaited.
    fn close(&mut self) {
        if let State::Running(slot) = std::mem::replace(&mut self.state, State::Closed) {
            slot.0.finish(self.settings.exit_wait);
        }
    }

    /// An action failed: the child is closed (killed on a timeout) and the worker ends, as the
    /// Java daemon exits.
    fn fail(&mut self, action: &str, failure: Failure) -> Handled {
        let reason = format!("{} (the MultiLangDaemon exits here)", failure.reason());
        tracing::error!(shard = %self.shard_id, action, "{reason}");
        if let State::Running(slot) = std::mem::replace(&mut self.state, State::Closed) {
            match failure {
                Failure::Timeout(_) => slot.0.kill(),
                Failure::Exit(_) => {
                    slot.0.finish(self.settings.exit_wait);
                }
            }
        }
        Handled::Exit(reason)
    }
}

impl Drop for ChildShard {
    /// A shard thread that ends without `leaseLost` (the worker stopped at once) still closes
    /// its child.
    fn drop(&mut self) {
        if let State::Running(slot) = std::mem::replace(&mut self.state, State::Closed) {
            slot.0.finish(Duration::from_secs(1));
        }
    }
}
