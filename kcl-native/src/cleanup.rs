//! The cleanup of finished leases, as the Java KCL 3.1.3's `leases/LeaseCleanupManager.java`
//! does it.
//!
//! - **What is queued**: the lease of every shard this worker ended (`ShutdownTask`
//!   `takeShardEndAction`: after the `SHARD_END` checkpoint, or when the shard ended without
//!   children: a shard Kinesis no longer knows, or a lease already at `SHARD_END`). A worker
//!   only ever cleans up the leases it finished; a lease key is queued once.
//! - **When**: every `lease_cleanup_interval` (Java's `leaseCleanupIntervalMillis`, 1 min) the
//!   queue is looked at; the completed-shard check runs once `completed_lease_cleanup_interval`
//!   (5 min) passed since the start or since the last completed lease was deleted, the
//!   garbage check once `garbage_lease_cleanup_interval` (30 min) passed likewise (Java's two
//!   stopwatches). A lease not cleaned up stays queued for the next look.
//! - **Completed shard** (`cleanupLeaseForCompletedShard`, only with
//!   `cleanupLeasesUponShardCompletion`): the lease is read again (consistently). Gone (deleted
//!   by another worker, for instance a Java worker's cleanup: C17) counts as cleaned up. Its
//!   children are its `childShardIds`, else asked of Kinesis (`getChildShards`: a `LATEST`
//!   iterator and one `GetRecords`, whose `ChildShards` are then written on the lease). It is
//!   deleted ([`kcl_lease::ops::delete`], unconditional as `deleteLease`) once every child has
//!   a lease whose checkpoint is neither `TRIM_HORIZON` nor `AT_TIMESTAMP` and none of its
//!   parents has a lease left ([`kcl_lease::plan::is_eligible_for_cleanup`]).
//! - **Garbage shard** (`cleanupLeaseForGarbageShard`): when asking Kinesis for the children
//!   answers `ResourceNotFoundException` (the shard or stream is gone), the lease is deleted.
//!
//! After a delete the coordinator still holds the lease until its next renewal fails (Java
//! likewise): the lease is then lost, with no shard worker left to tell.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kcl_lease::plan::is_eligible_for_cleanup;
use kcl_lease::{Decoded, Lease, LeaseStore, Table, UpdateError, decode, ops};
use kcl_producer::api::StreamRef;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::kinesis::{IteratorStart, KinesisReader, ReadError};

/// When the cleanup looks at its queue (the Java KCL's `LeaseCleanupConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CleanupSettings {
    /// `cleanupLeasesUponShardCompletion`: whether completed leases are deleted (garbage leases
    /// are, either way).
    pub(crate) completed_enabled: bool,
    /// `leaseCleanupIntervalMillis`.
    pub(crate) interval: Duration,
    /// `completedLeaseCleanupIntervalMillis`.
    pub(crate) completed_interval: Duration,
    /// `garbageLeaseCleanupIntervalMillis`.
    pub(crate) garbage_interval: Duration,
}

/// What one look at a queued lease did (Java's `LeaseCleanupResult`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cleaned {
    completed: bool,
    garbage: bool,
    children_present: bool,
    not_found: bool,
}

impl Cleaned {
    fn cleaned_up(self) -> bool {
        self.completed || self.garbage
    }
}

/// The cleanup of one worker's finished leases (see the [module](self) documentation).
pub(crate) struct LeaseCleanup<S, K> {
    store: Arc<S>,
    reader: K,
    stream: StreamRef,
    settings: CleanupSettings,
    queue: Vec<Lease>,
    completed_since: Instant,
    garbage_since: Instant,
}

impl<S, K> LeaseCleanup<S, K>
where
    S: LeaseStore + Send + Sync + 'static,
    K: KinesisReader,
{
    /// A cleanup with an empty queue; its two intervals start now.
    pub(crate) fn new(
        store: Arc<S>,
        reader: K,
        stream: StreamRef,
        settings: CleanupSettings,
    ) -> Self {
        let now = Instant::now();
        LeaseCleanup {
            store,
            reader,
            stream,
            settings,
            queue: Vec::new(),
            completed_since: now,
            garbage_since: now,
        }
    }

    /// Queues a finished lease (once per lease key).
    pub(crate) fn enqueue(&mut self, lease: Lease) {
        if self
            .queue
            .iter()
            .any(|queued| queued.lease_key == lease.lease_key)
        {
            return;
        }
        tracing::debug!(lease = %lease.lease_key, "queued for cleanup");
        self.queue.push(lease);
    }

    /// Runs until `inbox` closes: queues what arrives, looks at the queue every interval.
    pub(crate) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Lease>) {
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                lease = inbox.recv() => match lease {
                    Some(lease) => self.enqueue(lease),
                    None => return,
                },
                _ = tick.tick() => self.clean_up().await,
            }
        }
    }

    /// One look at the queue (Java's `cleanupLeases`).
    pub(crate) async fn clean_up(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        let completed_due = self.completed_since.elapsed() >= self.settings.completed_interval;
        let garbage_due = self.garbage_since.elapsed() >= self.settings.garbage_interval;
        if !(completed_due || garbage_due) {
            return;
        }
        let mut any_completed = false;
        let mut any_garbage = false;
        let mut kept = Vec::new();
        for lease in std::mem::take(&mut self.queue) {
            let key = lease.lease_key.clone();
            match self
                .clean_up_lease(&lease, completed_due, garbage_due)
                .await
            {
                Ok(cleaned) if cleaned.cleaned_up() => {
                    any_completed |= cleaned.completed;
                    any_garbage |= cleaned.garbage;
                    tracing::info!(lease = %key, ?cleaned, "finished lease cleaned up");
                }
                Ok(cleaned) => {
                    tracing::debug!(lease = %key, ?cleaned, "finished lease not cleaned up yet");
                    kept.push(lease);
                }
                Err(error) => {
                    tracing::warn!(lease = %key, %error, "lease cleanup failed; trying again at the next look");
                    kept.push(lease);
                }
            }
        }
        if any_completed {
            self.completed_since = Instant::now();
        }
        if any_garbage {
            self.garbage_since = Instant::now();
        }
        self.queue = kept;
    }

    /// One queued lease (Java's `cleanupLease`).
    async fn clean_up_lease(
        &self,
        lease: &Lease,
        completed_due: bool,
        garbage_due: bool,
    ) -> Result<Cleaned, String> {
        let mut cleaned = Cleaned::default();
        let mut asked_kinesis = false;
        if self.settings.completed_enabled && completed_due {
            let Some(stored) = self.lease(&lease.lease_key).await? else {
                tracing::info!(lease = %lease.lease_key, "the finished lease is gone already (another worker deleted it)");
                cleaned.completed = true;
                return Ok(cleaned);
            };
            let mut children = stored.child_shard_ids.clone();
            if children.is_empty() {
                asked_kinesis = true;
                match self.children_from_kinesis(&lease.lease_key).await {
                    Err(ReadError::ResourceNotFound { message }) => {
                        return self.delete_garbage(lease, &message).await;
                    }
                    Err(error) => return Err(error.to_string()),
                    Ok(ids) if ids.is_empty() => tracing::error!(
                        lease = %lease.lease_key,
                        "Kinesis names no child shards of this finished shard: its lease stays"
                    ),
                    Ok(ids) => {
                        cleaned.children_present = true;
                        children = ids;
                        let mut named = lease.clone();
                        named.child_shard_ids = children.clone();
                        if let Some(write) = ops::update_meta(&named, ops::Meta::ChildShards) {
                            match self.store.update(Table::Lease, &write).await {
                                Ok(_) | Err(UpdateError::ConditionFailed(_)) => {}
                                Err(UpdateError::Store(error)) => return Err(error.to_string()),
                            }
                        }
                    }
                }
            } else {
                cleaned.children_present = true;
            }
            match self.completed_and_started(lease, &stored, &children).await {
                Ok(true) => {
                    self.delete(lease).await?;
                    tracing::info!(
                        lease = %lease.lease_key,
                        children = ?children,
                        "deleted the finished lease: processing of its child shards has begun"
                    );
                    cleaned.completed = true;
                }
                Ok(false) => {}
                // As Java, a failure here still lets the garbage check run.
                Err(error) => {
                    tracing::warn!(lease = %lease.lease_key, %error, "cannot check the finished lease")
                }
            }
        }
        if !asked_kinesis && garbage_due {
            match self.children_from_kinesis(&lease.lease_key).await {
                Err(ReadError::ResourceNotFound { message }) => {
                    return self.delete_garbage(lease, &message).await;
                }
                Err(error) => return Err(error.to_string()),
                Ok(ids) => cleaned.children_present = !ids.is_empty(),
            }
        }
        Ok(cleaned)
    }

    /// Whether the lease may go: every child has a lease that has started, and no parent has
    /// a lease (the parents named by the queued lease, as Java's; the children and the
    /// checkpoint as stored now).
    async fn completed_and_started(
        &self,
        queued: &Lease,
        stored: &Lease,
        children: &BTreeSet<String>,
    ) -> Result<bool, String> {
        let mut candidate = stored.clone();
        candidate.child_shard_ids = children.clone();
        candidate.parent_shard_ids = queued.parent_shard_ids.clone();
        let mut known = Vec::new();
        for key in children.iter().chain(&candidate.parent_shard_ids) {
            match self.lease(key).await? {
                Some(found) => known.push(found),
                None if children.contains(key) => {
                    tracing::warn!(
                        lease = %queued.lease_key,
                        child = %key,
                        "a child lease of the finished shard is missing: not cleaning up"
                    );
                    return Ok(false);
                }
                None => {}
            }
        }
        Ok(is_eligible_for_cleanup(&candidate, &known))
    }

    /// Deletes the lease of a shard Kinesis no longer knows.
    async fn delete_garbage(&self, lease: &Lease, message: &str) -> Result<Cleaned, String> {
        tracing::warn!(lease = %lease.lease_key, %message, "deleting the lease: its shard is not in the stream");
        self.delete(lease).await?;
        Ok(Cleaned {
            garbage: true,
            not_found: true,
            ..Cleaned::default()
        })
    }

    async fn delete(&self, lease: &Lease) -> Result<(), String> {
        match self.store.delete(Table::Lease, &ops::delete(lease)).await {
            Ok(_) | Err(UpdateError::ConditionFailed(_)) => Ok(()),
            Err(UpdateError::Store(error)) => Err(error.to_string()),
        }
    }

    /// The lease of `key`, read consistently (`None`: no lease).
    async fn lease(&self, key: &str) -> Result<Option<Lease>, String> {
        let item = self
            .store
            .get(Table::Lease, key, true)
            .await
            .map_err(|e| e.to_string())?;
        match item.map(|item| decode(&item)) {
            None | Some(Ok(Decoded::NotALease { .. })) => Ok(None),
            Some(Ok(Decoded::Lease(lease))) => Ok(Some(lease)),
            Some(Err(error)) => Err(format!("lease {key} cannot be read: {error}")),
        }
    }

    /// The shard's children as Kinesis names them (`KinesisShardDetector.getChildShards`: a
    /// `LATEST` iterator, one `GetRecords`, its `ChildShards`).
    async fn children_from_kinesis(&self, shard: &str) -> Result<BTreeSet<String>, ReadError> {
        let iterator = self
            .reader
            .get_shard_iterator(&self.stream, shard, &IteratorStart::Latest)
            .await?;
        let page = self.reader.get_records(&iterator, 1).await?;
        Ok(page.child_shards.into_iter().map(|c| c.shard_id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryKinesis;
    use kcl_lease::MemoryStore;
    use kcl_protocol::ExtendedSequenceNumber as E;

    const PARENT: &str = "shardId-000000000000";

    fn settings() -> CleanupSettings {
        CleanupSettings {
            completed_enabled: true,
            interval: Duration::from_secs(60),
            completed_interval: Duration::from_secs(300),
            garbage_interval: Duration::from_secs(1800),
        }
    }

    async fn put(store: &MemoryStore, key: &str, checkpoint: E, parents: &[&str]) -> Lease {
        let mut lease = Lease::new(key, checkpoint);
        lease.parent_shard_ids = parents.iter().map(|p| p.to_string()).collect();
        store.create_if_not_exists(&lease).await.unwrap();
        lease
    }

    fn checkpoint(store: &MemoryStore, key: &str, value: E) {
        let Decoded::Lease(lease) = decode(&store.item(Table::Lease, key).unwrap()).unwrap() else {
            panic!()
        };
        let mut lease = lease;
        lease.checkpoint = value;
        store.insert(Table::Lease, kcl_lease::encode(&lease));
    }

    #[tokio::test(start_paused = true)]
    async fn a_split_parent_goes_after_both_children_started_never_before_the_interval() {
        let kinesis = MemoryKinesis::new("s", 1);
        let children = kinesis.fake().split(PARENT);
        let store = Arc::new(MemoryStore::new());
        let parent = put(&store, PARENT, E::shard_end(), &[]).await;
        for child in &children {
            put(&store, child, E::trim_horizon(), &[PARENT]).await;
        }
        let mut cleanup =
            LeaseCleanup::new(store.clone(), kinesis, StreamRef::name("s"), settings());
        cleanup.enqueue(parent.clone());
        cleanup.enqueue(parent);
        assert_eq!(cleanup.queue.len(), 1, "queued once");

        // childShardIds missing: asked of Kinesis and written; children at TRIM_HORIZON: kept.
        tokio::time::advance(Duration::from_secs(300)).await;
        cleanup.clean_up().await;
        assert!(store.item(Table::Lease, PARENT).is_some());
        let Decoded::Lease(stored) = decode(&store.item(Table::Lease, PARENT).unwrap()).unwrap()
        else {
            panic!()
        };
        assert_eq!(stored.child_shard_ids, children.iter().cloned().collect());

        // One child started: kept.
        checkpoint(&store, &children[0], E::new("49590", 0));
        cleanup.clean_up().await;
        assert!(store.item(Table::Lease, PARENT).is_some());

        // Both started: deleted.
        checkpoint(&store, &children[1], E::new("49591", 0));
        cleanup.clean_up().await;
        assert!(store.item(Table::Lease, PARENT).is_none());
        assert!(cleanup.queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_deleted_before_the_completed_interval_passed() {
        let kinesis = MemoryKinesis::new("s", 1);
        let children = kinesis.fake().split(PARENT);
        let store = Arc::new(MemoryStore::new());
        let parent = put(&store, PARENT, E::shard_end(), &[]).await;
        for child in &children {
            put(&store, child, E::new("7", 0), &[PARENT]).await;
        }
        let mut cleanup =
            LeaseCleanup::new(store.clone(), kinesis, StreamRef::name("s"), settings());
        cleanup.enqueue(parent);
        tokio::time::advance(Duration::from_secs(299)).await;
        cleanup.clean_up().await;
        assert!(
            store.item(Table::Lease, PARENT).is_some(),
            "5 minutes not passed"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        cleanup.clean_up().await;
        assert!(store.item(Table::Lease, PARENT).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_whose_own_parent_remains_stays_and_a_gone_lease_counts_as_cleaned() {
        let kinesis = MemoryKinesis::new("s", 1);
        let children = kinesis.fake().split(PARENT);
        let grandchildren = kinesis.fake().split(&children[0]);
        let store = Arc::new(MemoryStore::new());
        put(&store, PARENT, E::shard_end(), &[]).await;
        let middle = put(&store, &children[0], E::shard_end(), &[PARENT]).await;
        for grandchild in &grandchildren {
            put(&store, grandchild, E::new("9", 0), &[&children[0]]).await;
        }
        let mut cleanup =
            LeaseCleanup::new(store.clone(), kinesis, StreamRef::name("s"), settings());
        cleanup.enqueue(middle);
        tokio::time::advance(Duration::from_secs(300)).await;
        cleanup.clean_up().await;
        assert!(
            store.item(Table::Lease, &children[0]).is_some(),
            "its parent's lease is left"
        );
        assert_eq!(cleanup.queue.len(), 1);
        // Someone else deletes both (a Java worker's cleanup): tolerated, dequeued.
        for key in [PARENT, children[0].as_str()] {
            store
                .delete(Table::Lease, &ops::delete(&Lease::new(key, E::shard_end())))
                .await
                .unwrap();
        }
        cleanup.clean_up().await;
        assert!(cleanup.queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_lease_of_a_shard_kinesis_no_longer_knows_is_deleted_at_the_garbage_interval() {
        let kinesis = MemoryKinesis::new("s", 1);
        let store = Arc::new(MemoryStore::new());
        let gone = put(&store, "shardId-000000000099", E::shard_end(), &[]).await;
        let settings = CleanupSettings {
            completed_enabled: false,
            ..settings()
        };
        let mut cleanup = LeaseCleanup::new(store.clone(), kinesis, StreamRef::name("s"), settings);
        cleanup.enqueue(gone);
        tokio::time::advance(Duration::from_secs(1799)).await;
        cleanup.clean_up().await;
        assert!(store.item(Table::Lease, "shardId-000000000099").is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        cleanup.clean_up().await;
        assert!(store.item(Table::Lease, "shardId-000000000099").is_none());
    }
}
