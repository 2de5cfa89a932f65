//! The end of a shard (Java's `ShutdownTask` with reason `SHARD_END`): the child leases first
//! (`plan::shards::shard_end`: each child's lease created if missing, `childShardIds` on the
//! parent), then `shardEnded`, which must checkpoint `SHARD_END` so the children can start.
//! Each step is tried again after a pause until it is done, the lease is lost, or the worker
//! stops.

use std::collections::BTreeSet;

use kcl_core::engine::Event;
use kcl_lease::plan::{self, ChildShard};
use kcl_lease::{Decoded, Lease, LeaseStore, Table, UpdateError, decode};
use tokio::sync::watch;

use super::{Outcome, ProcessorThread, ShardContext, deliver, end_of_lease, stopping};
use crate::coordinator::LeaseHandle;
use crate::factory::ShardHandlers;
use crate::kinesis::{self, KinesisReader};

/// How a pause between two tries of a shard-end step ended.
enum Pause {
    /// Try again.
    Again,
    /// The lease was lost or handed over (and the processor told): the shard worker ends so.
    End(Outcome),
    /// The worker shuts down: the thread waits for the `leaseLost` after the eviction.
    Stop,
}

impl<S, K, F> ShardContext<S, K, F>
where
    S: LeaseStore + Send + Sync + 'static,
    K: KinesisReader + Clone,
    F: ShardHandlers,
{
    /// Creates the child leases, then delivers `shardEnded` until `SHARD_END` is
    /// checkpointed.
    pub(super) async fn shard_end(
        &self,
        handle: &LeaseHandle,
        mut thread: ProcessorThread,
        children: &[kinesis::ChildShard],
        stop: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let shard = handle.lease_key().to_owned();
        let children: Vec<ChildShard> = children
            .iter()
            .map(|child| {
                ChildShard::new(
                    &child.shard_id,
                    child.parent_shards.iter().cloned(),
                    (child.hash_range.start, child.hash_range.end),
                )
            })
            .collect();
        loop {
            match self.create_children(handle.lease(), &children).await {
                Ok(created) => {
                    let ids: Vec<&str> = children.iter().map(|c| c.shard_id.as_str()).collect();
                    tracing::info!(%shard, children = ?ids, created, "shard end: child leases written");
                    break;
                }
                Err(error) => tracing::warn!(
                    %shard,
                    %error,
                    pause = ?self.settings.retry_pause,
                    "shard end: the child leases are not written yet; trying again"
                ),
            }
            match self.pause(handle, &mut thread, stop).await {
                Pause::Again => {}
                Pause::End(outcome) => return outcome,
                Pause::Stop => return Outcome::Stopped(Some(thread)),
            }
        }

        if handle.initial_checkpoint().is_shard_end() {
            tracing::info!(%shard, "the lease is at SHARD_END already: no shardEnded");
            return Outcome::Finished(Box::new(handle.lease().clone()));
        }
        let mut attempt = 1u32;
        loop {
            let reply = match deliver(&mut thread, Event::ShardEnded).await {
                Ok(reply) => reply,
                Err(outcome) => return outcome,
            };
            if reply.checkpoint.is_shard_end() {
                tracing::info!(%shard, "shard ended: SHARD_END checkpointed, the child shards may start");
                return Outcome::Finished(Box::new(handle.lease().clone()));
            }
            tracing::error!(
                %shard,
                attempt,
                checkpoint = %reply.checkpoint,
                pause = ?self.settings.retry_pause,
                "the processor did not checkpoint SHARD_END in shardEnded: the child shards stay \
                 blocked until it does; delivering shardEnded again (the Java KCL retries its \
                 shutdown task the same way)"
            );
            attempt = attempt.saturating_add(1);
            match self.pause(handle, &mut thread, stop).await {
                Pause::Again => {}
                Pause::End(outcome) => return outcome,
                Pause::Stop => return Outcome::Stopped(Some(thread)),
            }
        }
    }

    /// Waits before a step is tried again, unless the lease ends or the worker stops first.
    async fn pause(
        &self,
        handle: &LeaseHandle,
        thread: &mut ProcessorThread,
        stop: &mut watch::Receiver<bool>,
    ) -> Pause {
        tokio::select! {
            biased;
            status = handle.shutdown_requested() => {
                Pause::End(end_of_lease(handle, thread, status).await)
            }
            () = stopping(stop) => Pause::Stop,
            () = tokio::time::sleep(self.settings.retry_pause) => Pause::Again,
        }
    }

    /// The child leases and `childShardIds` on the parent; how many leases this call created.
    /// What the plan needs of the table (the children's and the merge parents' leases) is read
    /// consistently first, as Java's `getLease`.
    async fn create_children(
        &self,
        parent: &Lease,
        children: &[ChildShard],
    ) -> Result<usize, String> {
        let mut keys = BTreeSet::new();
        for child in children {
            keys.insert(child.shard_id.as_str());
            keys.extend(child.parent_shards.iter().map(String::as_str));
        }
        keys.remove(parent.lease_key.as_str());
        let mut known = vec![parent.clone()];
        for key in keys {
            let item = self
                .store
                .get(Table::Lease, key, true)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(item) = item {
                match decode(&item) {
                    Ok(Decoded::Lease(lease)) => known.push(lease),
                    Ok(Decoded::NotALease { .. }) => {}
                    Err(error) => return Err(error.to_string()),
                }
            }
        }
        let plan = plan::shard_end(parent, children, &known).map_err(|e| e.to_string())?;
        let mut created = 0;
        for child in &plan.children {
            if self
                .store
                .create_if_not_exists(child)
                .await
                .map_err(|e| e.to_string())?
            {
                created += 1;
            }
        }
        if let Some(update) = &plan.update_parent {
            match self.store.update(Table::Lease, update).await {
                Ok(_) => {}
                // The parent lease is gone (deleted by a cleanup): nothing to note it on.
                Err(UpdateError::ConditionFailed(_)) => {}
                Err(UpdateError::Store(error)) => return Err(error.to_string()),
            }
        }
        Ok(created)
    }
}
