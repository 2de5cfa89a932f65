//! The protocol's words, each spelled once: the daemon's actions and the Java exceptions its
//! checkpoint replies name.

use std::fmt;

/// An `action` the daemon sends to the child.
///
/// ```
/// use kcl_protocol::Action;
/// assert_eq!(Action::from_wire("processRecords"), Some(Action::ProcessRecords));
/// assert_eq!(Action::ShutdownRequested.as_str(), "shutdownRequested");
/// assert_eq!(Action::from_wire("ProcessRecords"), None); // names are case-sensitive
/// assert!(Action::ALL.iter().all(|a| Action::from_wire(a.as_str()) == Some(*a)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `initialize`: a lease on a shard was taken.
    Initialize,
    /// `processRecords`: a batch of records.
    ProcessRecords,
    /// `leaseLost`: another worker holds the lease now.
    LeaseLost,
    /// `shardEnded`: every record of the shard was delivered.
    ShardEnded,
    /// `shutdownRequested`: the worker shuts down or hands the lease over.
    ShutdownRequested,
    /// Legacy `shutdown` (KCL-Java 1.x), with a reason.
    Shutdown,
    /// `checkpoint`: the reply to a checkpoint request.
    Checkpoint,
}

impl Action {
    /// Every action, in the order of a lease's life.
    pub const ALL: [Action; 7] = [
        Action::Initialize,
        Action::ProcessRecords,
        Action::LeaseLost,
        Action::ShardEnded,
        Action::ShutdownRequested,
        Action::Shutdown,
        Action::Checkpoint,
    ];

    /// The name on the wire (what a status's `responseFor` echoes).
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Initialize => "initialize",
            Action::ProcessRecords => "processRecords",
            Action::LeaseLost => "leaseLost",
            Action::ShardEnded => "shardEnded",
            Action::ShutdownRequested => "shutdownRequested",
            Action::Shutdown => "shutdown",
            Action::Checkpoint => "checkpoint",
        }
    }

    /// The action with this wire name, if the daemon has one.
    pub fn from_wire(name: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == name)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Java exception the daemon names in a checkpoint reply's `error` (its simple class name).
///
/// ```
/// use kcl_protocol::DaemonError;
/// assert_eq!(DaemonError::Throttling.java_name(), "ThrottlingException");
/// assert_eq!(DaemonError::from_java_name("ShutdownException"), Some(DaemonError::Shutdown));
/// assert_eq!(DaemonError::from_java_name("NullPointerException"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DaemonError {
    /// `ThrottlingException`: the lease table was busy; worth a retry.
    Throttling,
    /// `ShutdownException`: the lease is gone; no checkpoint will succeed.
    Shutdown,
    /// `InvalidStateException`: no checkpointer now, or the lease table is unusable.
    InvalidState,
    /// `KinesisClientLibDependencyException`: DynamoDB failed; worth a retry.
    Dependency,
    /// `IllegalArgumentException`: the value is outside what may be checkpointed.
    IllegalArgument,
}

impl DaemonError {
    /// Every error the daemon's checkpointer throws by name.
    pub const ALL: [DaemonError; 5] = [
        DaemonError::Throttling,
        DaemonError::Shutdown,
        DaemonError::InvalidState,
        DaemonError::Dependency,
        DaemonError::IllegalArgument,
    ];

    /// The simple class name, as the reply's `error` carries it.
    pub const fn java_name(self) -> &'static str {
        match self {
            DaemonError::Throttling => "ThrottlingException",
            DaemonError::Shutdown => "ShutdownException",
            DaemonError::InvalidState => "InvalidStateException",
            DaemonError::Dependency => "KinesisClientLibDependencyException",
            DaemonError::IllegalArgument => "IllegalArgumentException",
        }
    }

    /// The error with this simple class name, if it is one of these.
    pub fn from_java_name(name: &str) -> Option<DaemonError> {
        DaemonError::ALL.into_iter().find(|e| e.java_name() == name)
    }
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.java_name())
    }
}

impl std::error::Error for DaemonError {}
