//! Parent blocking (Java's `BlockOnParentShardTask`): a child shard is processed only once every
//! parent lease is at `SHARD_END` (or gone), looked at again every
//! `parentShardPollIntervalMillis`.

use kcl_lease::plan::is_blocked_on_parents;
use kcl_lease::{Decoded, Lease, LeaseStore, StoreError, Table, decode};
use tokio::sync::watch;

use super::{ShardContext, stopping};
use crate::coordinator::{LeaseHandle, LeaseStatus};

/// How the wait for the parents ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Waited {
    /// The parents are done: process the shard.
    Ready,
    /// The lease was lost meanwhile.
    Lost,
    /// A leader handed the lease to another worker meanwhile.
    HandedOver,
    /// The worker shuts down.
    Stopped,
}

impl<S: LeaseStore, K, F> ShardContext<S, K, F> {
    /// Waits while a parent of the lease is not finished.
    pub(super) async fn wait_for_parents(
        &self,
        handle: &LeaseHandle,
        stop: &mut watch::Receiver<bool>,
    ) -> Waited {
        let lease = handle.lease();
        if lease.parent_shard_ids.is_empty() {
            return Waited::Ready;
        }
        let mut logged = false;
        loop {
            match self.blocked_on_parents(lease).await {
                Ok(false) => return Waited::Ready,
                Ok(true) if !logged => {
                    logged = true;
                    tracing::info!(
                        shard = %lease.lease_key,
                        parents = ?lease.parent_shard_ids,
                        poll = ?self.settings.parent_poll,
                        "waiting for the parent shards to be processed to SHARD_END"
                    );
                }
                Ok(true) => {}
                Err(error) => {
                    tracing::warn!(shard = %lease.lease_key, %error, "cannot read the parent leases; trying again");
                }
            }
            tokio::select! {
                biased;
                status = handle.shutdown_requested() => {
                    return if status == LeaseStatus::Lost { Waited::Lost } else { Waited::HandedOver };
                }
                () = stopping(stop) => return Waited::Stopped,
                () = tokio::time::sleep(self.settings.parent_poll) => {}
            }
        }
    }

    /// Whether a parent of `lease` has a lease not at `SHARD_END` (each read consistently, as
    /// Java's `getLease`). An unreadable parent lease counts as unfinished.
    async fn blocked_on_parents(&self, lease: &Lease) -> Result<bool, StoreError> {
        let mut parents = Vec::new();
        for parent in &lease.parent_shard_ids {
            let Some(item) = self.store.get(Table::Lease, parent, true).await? else {
                continue;
            };
            match decode(&item) {
                Ok(Decoded::Lease(parent)) => parents.push(parent),
                Ok(Decoded::NotALease { .. }) => {}
                Err(error) => {
                    tracing::warn!(shard = %lease.lease_key, %error, "a parent lease cannot be read: waiting");
                    return Ok(true);
                }
            }
        }
        Ok(is_blocked_on_parents(lease, &parents))
    }
}
