//! [`LeaseHandle`]: what the shard worker of a held lease gets from the coordinator — the lease
//! as acquired, its status (held, shutdown requested, lost), the checkpoint write, and the
//! transfer at the end of a graceful handoff.

use std::sync::Arc;
use std::time::Duration;

use kcl_lease::{Lease, RenewVerdict, StoreError, UpdateError, interpret_renew_failure, ops};
use kcl_protocol::{DaemonError, ExtendedSequenceNumber};
use tokio::sync::watch;
use tokio::time::Instant;

use super::held::{HeldLease, LeaseStatus, LeaseWriter};

/// Why a transfer or an eviction was not written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseWriteError {
    /// The lease is not this worker's any more (taken, transferred, evicted, or not renewed for
    /// the failover time): nothing was written.
    #[error("the lease is lost")]
    Lost,
    /// No graceful handoff is pending for the lease.
    #[error("no graceful handoff is pending")]
    NoHandoff,
    /// The store failed; the write may be tried again (after `Unavailable` it may have landed:
    /// the next write's condition tells).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One lease held by this worker, as its shard worker uses it. Cheap to clone; every clone is
/// the same lease.
///
/// Every write for the lease — the renewer's, [`checkpoint`](LeaseHandle::checkpoint),
/// [`handoff_done`](LeaseHandle::handoff_done), the coordinator's eviction — is serialised and
/// conditioned on the counter (or the owners) the previous write left. A lease that is lost,
/// or that the worker has not renewed for `failoverTimeMillis`, gets no write any more
/// (fencing: a worker stopped by `SIGSTOP` and continued reports the lease lost and lands no
/// late checkpoint).
///
/// ```
/// use kcl_lease::{Lease, LeaseStore, MemoryStore, Table, block_on, ops};
/// use kcl_native::coordinator::{Coordinator, CoordinatorConfig, LeaseEvent, LeaseStatus, Role};
/// use kcl_protocol::{DaemonError, ExtendedSequenceNumber as E};
/// use std::sync::Arc;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let store = Arc::new(MemoryStore::new());
/// let lease = Lease::new("shardId-0", E::trim_horizon());
/// store.create_if_not_exists(&lease).await.unwrap();
/// store.update(Table::Lease, &ops::assign(&lease, "me")).await.unwrap(); // the leader's doing
///
/// let (coordinator, mut events) = Coordinator::start(store.clone(), CoordinatorConfig { role: Role::Follower, ..CoordinatorConfig::new("me") }).unwrap();
/// let Some(LeaseEvent::Acquired(handle)) = events.recv().await else { panic!() };
/// assert_eq!(handle.lease_key(), "shardId-0");
/// assert_eq!(handle.initial_checkpoint(), &E::trim_horizon());
/// handle.checkpoint(E::new("42", 0)).await.unwrap();
/// assert_eq!(store.item(Table::Lease, "shardId-0").unwrap()["checkpoint"].as_s(), Some("42"));
///
/// // Another worker takes the lease: the next renewal fails, the handle says lost.
/// let mut known = lease.clone();
/// known.lease_owner = Some("me".into());
/// store.update(Table::Lease, &ops::assign(&known, "other")).await.unwrap();
/// handle.lost().await;
/// assert_eq!(handle.status(), LeaseStatus::Lost);
/// assert_eq!(handle.checkpoint(E::new("43", 0)).await, Err(DaemonError::Shutdown));
/// coordinator.close().await;
/// # });
/// ```
#[derive(Clone)]
pub struct LeaseHandle {
    held: Arc<HeldLease>,
    writer: Arc<dyn LeaseWriter>,
}

impl std::fmt::Debug for LeaseHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseHandle")
            .field("lease_key", &self.lease_key())
            .field("status", &self.held.status())
            .finish_non_exhaustive()
    }
}

impl LeaseHandle {
    pub(crate) fn new(held: Arc<HeldLease>, writer: Arc<dyn LeaseWriter>) -> Self {
        LeaseHandle { held, writer }
    }

    pub(crate) fn held(&self) -> &Arc<HeldLease> {
        &self.held
    }

    pub(crate) fn writer(&self) -> &Arc<dyn LeaseWriter> {
        &self.writer
    }

    /// Whether two handles are the same acquisition of a lease.
    pub fn same_as(&self, other: &LeaseHandle) -> bool {
        Arc::ptr_eq(&self.held, &other.held)
    }

    /// The lease key (the shard id in single-stream mode).
    pub fn lease_key(&self) -> &str {
        &self.held.acquired().lease_key
    }

    /// The lease as read when this worker acquired it: its checkpoint, parents, hash range.
    pub fn lease(&self) -> &Lease {
        self.held.acquired()
    }

    /// The checkpoint as of the acquisition: where the shard's processing starts.
    pub fn initial_checkpoint(&self) -> &ExtendedSequenceNumber {
        &self.held.acquired().checkpoint
    }

    /// The status now (local self-expiry included: a lease not renewed for the failover time
    /// reads [`LeaseStatus::Lost`]).
    pub fn status(&self) -> LeaseStatus {
        self.held.status_at(Instant::now())
    }

    /// Whether the lease is lost.
    pub fn is_lost(&self) -> bool {
        self.status() == LeaseStatus::Lost
    }

    /// Whether a graceful handoff asked the shard to shut down (and the lease is not lost
    /// yet).
    pub fn is_shutdown_requested(&self) -> bool {
        self.status() == LeaseStatus::ShutdownRequested
    }

    /// A receiver of the published status (changes when the coordinator notices them; local
    /// self-expiry is published at the renewer's next period, or by [`status`] and the waits
    /// below at once).
    ///
    /// [`status`]: LeaseHandle::status
    pub fn watch(&self) -> watch::Receiver<LeaseStatus> {
        self.held.subscribe()
    }

    /// Waits until the status is at least `wanted` (in the order held → shutdown requested →
    /// lost) and returns it. Wakes at the lease's local expiry too.
    pub async fn wait_for(&self, wanted: LeaseStatus) -> LeaseStatus {
        let mut receiver = self.held.subscribe();
        loop {
            let status = self.status();
            if status >= wanted {
                return status;
            }
            // A renewal moves the expiry later without a status change: look again just
            // after the expiry as known now (expired means *older* than the failover time).
            let deadline = self.held.expires_at() + Duration::from_millis(1);
            let _ = tokio::time::timeout_at(deadline, receiver.changed()).await;
        }
    }

    /// Waits until the lease is lost.
    pub async fn lost(&self) {
        self.wait_for(LeaseStatus::Lost).await;
    }

    /// Waits until a graceful handoff asks the shard to shut down, or the lease is lost;
    /// returns which.
    pub async fn shutdown_requested(&self) -> LeaseStatus {
        self.wait_for(LeaseStatus::ShutdownRequested).await
    }

    /// Reports bytes of records delivered to the processor (the sum of their payload sizes,
    /// as Java's `ProcessTask` counts them): the renewer publishes them as `throughputKBps`,
    /// which a Java leader balances on. The [`LeaseDriver`](super::LeaseDriver) reports each
    /// batch itself.
    pub fn record_bytes(&self, bytes: u64) {
        self.held.record_bytes(bytes);
    }

    /// Writes a checkpoint (`ops::checkpoint`, conditioned on the counter last written) — the
    /// value as given: judging it is the caller's job ([`LeaseDriver`](super::LeaseDriver)
    /// does). The errors are the KCL's:
    ///
    /// - [`DaemonError::Shutdown`]: the lease is lost or locally expired (nothing was
    ///   attempted), or the condition failed (someone else wrote the lease: it is marked
    ///   lost);
    /// - [`DaemonError::Throttling`]: the store throttled the write;
    /// - [`DaemonError::Dependency`]: the store failed (the write may have landed: a retry is
    ///   recognised);
    /// - [`DaemonError::IllegalArgument`]: the store refused the write as invalid.
    pub async fn checkpoint(&self, value: ExtendedSequenceNumber) -> Result<(), DaemonError> {
        let mut state = self.held.writes().await;
        let mut adopted = false;
        loop {
            if !self.held.usable(Instant::now()) {
                return Err(DaemonError::Shutdown);
            }
            let write = ops::checkpoint(&state.lease, &value);
            match self.writer.update(&write).await {
                Ok(_) => {
                    // The lease as *we* know it, not the item returned: a handoff initiated
                    // meanwhile keeps the counter, and must be noticed by the next renewal.
                    let lease = &mut state.lease;
                    lease.lease_counter = lease.lease_counter.saturating_add(1);
                    lease.checkpoint = value;
                    lease.owner_switches_since_checkpoint = 0;
                    lease.pending_checkpoint = None;
                    lease.pending_checkpoint_state = None;
                    state.unsettled = false;
                    return Ok(());
                }
                Err(UpdateError::ConditionFailed(failed)) => {
                    // After a write of ours that may have landed, the counter may have moved
                    // by our own hand: the renewal's rule tells (owner me, counter + 1).
                    if state.unsettled
                        && !adopted
                        && let RenewVerdict::Spurious { counter } =
                            interpret_renew_failure(&state.lease, failed.current.as_ref())
                    {
                        state.lease.lease_counter = counter;
                        state.unsettled = false;
                        adopted = true;
                        continue;
                    }
                    tracing::info!(lease = %self.lease_key(), "checkpoint refused by its condition: lease lost");
                    self.held.mark_lost();
                    return Err(DaemonError::Shutdown);
                }
                Err(UpdateError::Store(error)) => {
                    tracing::warn!(lease = %self.lease_key(), %error, "checkpoint write failed");
                    return Err(match error {
                        StoreError::Throttled(_) => DaemonError::Throttling,
                        StoreError::Unavailable(_) => {
                            state.unsettled = true;
                            DaemonError::Dependency
                        }
                        StoreError::Invalid(_) => DaemonError::IllegalArgument,
                    });
                }
            }
        }
    }

    /// Ends a graceful handoff once the processor's `shutdownRequested` returned: writes the
    /// transfer (`ops::assign(lease, new owner)`: conditioned on `leaseOwner` = the new owner
    /// and `checkpointOwner` = this worker; removes `checkpointOwner`, counter + 1), after
    /// which the lease is lost to this worker. If it is not called within
    /// `gracefulLeaseHandoffTimeoutMillis`, the coordinator writes the same transfer itself.
    pub async fn handoff_done(&self) -> Result<(), LeaseWriteError> {
        let mut state = self.held.writes().await;
        if !self.held.usable(Instant::now()) {
            return Err(LeaseWriteError::Lost);
        }
        let handing_over = state.lease.checkpoint_owner.is_some()
            && self.held.status() == LeaseStatus::ShutdownRequested;
        let Some(new_owner) = state.lease.lease_owner.clone().filter(|_| handing_over) else {
            return Err(LeaseWriteError::NoHandoff);
        };
        let write = ops::assign(&state.lease, &new_owner);
        let result = self.finish(&write, "transfer").await;
        if result.is_ok() {
            let lease = &mut state.lease;
            lease.lease_counter = lease.lease_counter.saturating_add(1);
            lease.checkpoint_owner = None;
            tracing::info!(lease = %self.lease_key(), %new_owner, "lease handed over");
        }
        result
    }

    /// Evicts the lease (`ops::evict`: conditioned on the owners as known; removes
    /// `leaseOwner` — unless a handoff is pending, then the new owner keeps it — and
    /// `checkpointOwner`, counter + 1), after which it is lost to this worker.
    pub(crate) async fn evict(&self) -> Result<(), LeaseWriteError> {
        let mut state = self.held.writes().await;
        if !self.held.usable(Instant::now()) {
            return Err(LeaseWriteError::Lost);
        }
        let write = ops::evict(&state.lease);
        let result = self.finish(&write, "eviction").await;
        if result.is_ok() {
            let lease = &mut state.lease;
            lease.lease_counter = lease.lease_counter.saturating_add(1);
            if lease.checkpoint_owner.take().is_none() {
                lease.lease_owner = None;
            }
            tracing::info!(lease = %self.lease_key(), "lease evicted");
        }
        result
    }

    /// A write that ends this worker's hold on the lease: lost after it lands, and after a
    /// refused condition (someone else changed the owners).
    async fn finish(&self, write: &kcl_lease::Write, what: &str) -> Result<(), LeaseWriteError> {
        match self.writer.update(write).await {
            Ok(_) => {
                self.held.mark_lost();
                Ok(())
            }
            Err(UpdateError::ConditionFailed(_)) => {
                tracing::info!(lease = %self.lease_key(), what, "refused by its condition: lease lost");
                self.held.mark_lost();
                Err(LeaseWriteError::Lost)
            }
            Err(UpdateError::Store(error)) => {
                tracing::warn!(lease = %self.lease_key(), what, %error, "write failed");
                Err(LeaseWriteError::Store(error))
            }
        }
    }
}
