//! The KCL MultiLangDaemon's wire protocol, without I/O: the rule book both ends of the pipe
//! share.
//!
//! - [`message`]: the messages in both directions, the child's tolerant reader of the daemon's
//!   lines and the daemon's exact (Jackson) form of them.
//! - [`Position`], [`SequenceNumber`], [`StartingPosition`]: where a record is in a shard;
//!   [`ExtendedSequenceNumber`]: a checkpoint value with the sentinels and Java's order.
//! - [`LeaseCheckpointer`]: how the daemon judges a checkpoint request.
//! - `daemon` (feature `daemon`): the daemon's strict reader of a child's lines.
//!
//! - [`Action`], [`DaemonError`]: the protocol's words, spelled once.
//!
//! No tracing, threads or processes: everything here is a pure function of its input.
//!
//! ```
//! use kcl_protocol::{ExtendedSequenceNumber as E, LeaseCheckpointer, CheckpointOutcome};
//! let mut lease = LeaseCheckpointer::new(E::trim_horizon());
//! lease.records_delivered(E::new("100", 0));
//! assert_eq!(lease.checkpoint(Some("100"), None), Ok(CheckpointOutcome::Stored(E::new("100", 0))));
//! ```
#![warn(missing_docs, unreachable_pub)]

#[cfg(feature = "daemon")]
pub mod daemon;
mod extended;
mod lease;
pub mod message;
// Inline sequence numbers: `as_str` over bytes copied from a `&str`.
#[allow(unsafe_code)]
mod position;
mod vocab;

pub use extended::{ExtendedSequenceNumber, NotASequenceNumber, SENTINELS, java_digit};
pub use lease::{CheckpointOutcome, Lease, LeaseCheckpointer};
pub use position::{Position, SequenceNumber, StartingPosition};
pub use vocab::{Action, DaemonError};
