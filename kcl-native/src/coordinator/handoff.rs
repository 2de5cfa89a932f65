//! The forced end of a graceful handoff (Java's `LeaseGracefulShutdownHandler`): if the shard
//! worker has not called [`LeaseHandle::handoff_done`] within `gracefulLeaseHandoffTimeoutMillis`
//! of the request, the coordinator writes the transfer itself, even while the processor is
//! still in `shutdownRequested` (its later checkpoints are refused: the lease is lost).

use std::time::Duration;

use super::LeaseHandle;
use super::LeaseWriteError;

/// How often a transfer that failed on the store is tried again (Java checks every 2 s).
const RETRY: Duration = Duration::from_secs(2);

/// Starts the watchdog of a handoff just requested for `handle`'s lease.
pub(crate) fn watch(handle: LeaseHandle, timeout: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        loop {
            if handle.is_lost() {
                return; // transferred by the worker, taken, or expired
            }
            match handle.handoff_done().await {
                Ok(()) => {
                    tracing::info!(lease = %handle.lease_key(), timeout_ms = timeout.as_millis() as u64,
                        "the shard did not finish its graceful handoff in time: transferred anyway");
                    return;
                }
                Err(LeaseWriteError::Lost | LeaseWriteError::NoHandoff) => return,
                Err(LeaseWriteError::Store(_)) => tokio::time::sleep(RETRY).await,
            }
        }
    });
}
