//! Why a checkpoint did not happen: the daemon's answers and the local failures, typed.

use std::io;

use kcl_protocol::DaemonError;

use super::progress::Stall;

/// Why a checkpoint did not happen.
///
/// The first six variants are the daemon's answers (the Java exception's simple class name); the
/// others are raised locally.
///
/// ```
/// use kcl_core::CheckpointError;
/// let e = CheckpointError::from_daemon("ThrottlingException");
/// assert_eq!(e, CheckpointError::Throttling);
/// assert!(e.is_retryable());
/// assert!(CheckpointError::from_daemon("ShutdownException").is_lease_lost());
/// assert_eq!(CheckpointError::from_daemon("NullPointerException"), CheckpointError::Other("NullPointerException".into()));
/// ```
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// `ThrottlingException`: DynamoDB throughput exceeded (retried with backoff before surfacing).
    #[error("ThrottlingException: the lease table is throttling checkpoint writes")]
    Throttling,
    /// `ShutdownException`: this worker no longer holds the lease. Never retried; every later
    /// checkpoint of this shard fails the same way without contacting the daemon.
    #[error(
        "ShutdownException: this worker no longer holds the lease; nothing more can be checkpointed on this shard"
    )]
    Shutdown,
    /// `InvalidStateException`: no checkpointer in this phase, or the lease table is missing.
    #[error("InvalidStateException: the daemon cannot checkpoint now")]
    InvalidState,
    /// `KinesisClientLibDependencyException`: a dependency (DynamoDB) failed (retried before surfacing).
    #[error(
        "KinesisClientLibDependencyException: a dependency of the daemon failed while checkpointing"
    )]
    Dependency,
    /// `IllegalArgumentException`: the position is outside [last checkpoint, largest delivered] or not a number.
    #[error(
        "IllegalArgumentException: the daemon refused the position (outside the delivered range or not a sequence number)"
    )]
    IllegalArgument,
    /// Any other exception name the daemon sent.
    #[error("{0}: the daemon failed to checkpoint")]
    Other(String),
    /// Refused locally: the position lies past a record whose batch failed, so checkpointing it
    /// would lose that record.
    #[error("refused to checkpoint {requested}: {stall}")]
    PastFailure {
        /// What was asked for (`everything delivered` for a null checkpoint).
        requested: String,
        /// Where the shard stalled.
        stall: Box<Stall>,
    },
    /// The daemon closed the channel before answering.
    #[error("the daemon closed stdin before answering the checkpoint request")]
    ChannelClosed,
    /// The daemon sent another message where a checkpoint reply was expected.
    #[error("expected a checkpoint reply, the daemon sent `{0}`")]
    UnexpectedReply(String),
    /// Reading or writing the channel failed.
    #[error("checkpoint channel failed: {0}")]
    Io(String),
}

impl CheckpointError {
    /// Maps the daemon's `error` string to a variant.
    ///
    /// ```
    /// use kcl_core::CheckpointError;
    /// assert_eq!(CheckpointError::from_daemon("InvalidStateException"), CheckpointError::InvalidState);
    /// let unknown = CheckpointError::from_daemon("OutOfMemoryError");
    /// assert_eq!(unknown, CheckpointError::Other("OutOfMemoryError".into()));
    /// assert_eq!(unknown.to_string(), "OutOfMemoryError: the daemon failed to checkpoint");
    /// ```
    pub fn from_daemon(error: &str) -> Self {
        match DaemonError::from_java_name(error) {
            Some(DaemonError::Throttling) => CheckpointError::Throttling,
            Some(DaemonError::Shutdown) => CheckpointError::Shutdown,
            Some(DaemonError::InvalidState) => CheckpointError::InvalidState,
            Some(DaemonError::Dependency) => CheckpointError::Dependency,
            Some(DaemonError::IllegalArgument) => CheckpointError::IllegalArgument,
            None => CheckpointError::Other(error.to_owned()),
        }
    }

    /// Whether the daemon may succeed if asked again later (throttling, dependency failure).
    ///
    /// ```
    /// use kcl_core::CheckpointError;
    /// assert!(CheckpointError::Throttling.is_retryable());
    /// assert!(CheckpointError::from_daemon("KinesisClientLibDependencyException").is_retryable());
    /// assert!(!CheckpointError::Shutdown.is_retryable());
    /// assert!(!CheckpointError::IllegalArgument.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CheckpointError::Throttling | CheckpointError::Dependency
        )
    }

    /// Whether the lease is gone (`ShutdownException`).
    ///
    /// ```
    /// use kcl_core::CheckpointError;
    /// assert!(CheckpointError::from_daemon("ShutdownException").is_lease_lost());
    /// assert!(!CheckpointError::InvalidState.is_lease_lost());
    /// assert!(!CheckpointError::ChannelClosed.is_lease_lost());
    /// ```
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, CheckpointError::Shutdown)
    }

    /// Whether nothing more can be checkpointed by this process: the lease moved
    /// (`ShutdownException`) or the daemon is gone (stdin closed, the pipe broke). Returned from
    /// a handler, such an error is answered with a status and nothing else: no retry, no
    /// `on_failure`, no exit; the next owner of the lease resumes from the last checkpoint.
    ///
    /// ```
    /// use kcl_core::CheckpointError;
    /// assert!(CheckpointError::Shutdown.is_final());
    /// assert!(CheckpointError::ChannelClosed.is_final());
    /// assert!(CheckpointError::Io("Broken pipe".into()).is_final());
    /// assert!(!CheckpointError::Throttling.is_final());
    /// assert!(!CheckpointError::IllegalArgument.is_final());
    /// ```
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            CheckpointError::Shutdown | CheckpointError::ChannelClosed | CheckpointError::Io(_)
        )
    }
}

impl From<io::Error> for CheckpointError {
    fn from(error: io::Error) -> Self {
        CheckpointError::Io(error.to_string())
    }
}
