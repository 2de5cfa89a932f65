//! [`RunError`]: why a worker's run ended other than by a stop.

use crate::coordinator::StartError;

/// Why [`run`](crate::run) (or a [`Supervisor`](super::Supervisor)) ended with an error.
///
/// ```
/// let error = kcl_native::RunError::ProcessorExit {
///     shard: "shardId-000000000003".into(),
///     reason: "poison record".into(),
/// };
/// assert!(error.to_string().contains("shardId-000000000003"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration (or its file) is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The tokio runtime of [`run_blocking`](crate::run_blocking) did not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The lease tables could not be created or read.
    #[error("lease tables: {0}")]
    Tables(String),
    /// The lease coordinator did not start (an invalid setting, a role not implemented yet).
    #[error("the lease coordinator did not start: {0}")]
    Start(#[from] StartError),
    /// A processor's failure policy `exit` fired, or a MultiLangDaemon child failed
    /// ([`multilang`](crate::multilang)): its lease was evicted, the other shards were shut down
    /// gracefully, and the run ends, as a MultiLangDaemon child (or the daemon) would exit.
    #[error("shard {shard}: the worker ends: {reason}")]
    ProcessorExit {
        /// The shard.
        shard: String,
        /// The engine's reason (the records and the cause).
        reason: String,
    },
    /// A shard failed in a way that waiting will not cure (reading refused for good, the
    /// processor's thread gone); its lease was evicted and the others shut down gracefully.
    #[error("shard {shard}: {reason}")]
    Shard {
        /// The shard.
        shard: String,
        /// What failed.
        reason: String,
    },
    /// Stopped at once by a second signal (or [`Stopper::stop_now`](super::Stopper::stop_now)):
    /// no final checkpoints; the leases were left to expire.
    #[error("stopped at once: no final checkpoints, the leases will expire")]
    StoppedNow,
    /// The coordinator's lease discovery ended unexpectedly.
    #[error("the lease coordinator stopped unexpectedly")]
    CoordinatorStopped,
}
