//! [`Supervisor`]: one worker — the lease [`Coordinator`] plus a shard worker per lease it
//! holds — from start to a graceful stop.
//!
//! - **Start**: the coordinator with the configuration's lease settings and role (today only
//!   the KCL 3.x follower runs: a leader assigns the leases).
//! - **Leases**: a shard worker (see `shard_worker`) for every `LeaseEvent::Acquired`; a lease
//!   acquired again while its previous shard worker is still ending waits for it.
//! - **Stop** ([`Stopper::stop`], or SIGINT/SIGTERM under [`run`](crate::run)): discovery and
//!   the metrics row stop, every shard gets `shutdownRequested` (its processor's final
//!   checkpoint), the supervisor waits at most `shutdownGraceMillis` for them, then evicts every
//!   lease ([`Coordinator::close`]) so another worker takes them at once, and delivers
//!   `leaseLost` to the processors. With `shutdownGraceMillis = 0` (the daemon's default, with
//!   which the daemon does not shut down gracefully) the leases are evicted without final
//!   checkpoints. [`Stopper::stop_now`] (a second signal) ends the run at once.
//! - **Finished leases**: a shard worker that ended its shard (`SHARD_END`) hands the lease to
//!   the cleanup task (`cleanup`, Java's `LeaseCleanupManager`), which deletes it once its
//!   children have started and its parents are gone, or once Kinesis no longer knows the
//!   shard.
//! - **Failures**: a processor's failure policy `exit`, or a shard whose reading cannot start
//!   (a checkpoint that gives no place to start), evicts that lease, stops the others
//!   gracefully and ends the run with a [`RunError`] naming the shard. Read errors never do:
//!   the fetcher tries every one again with backoff, refusals included, as the Java KCL.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use kcl_lease::{Lease, LeaseStore, MemoryStore, Table, ops};
//! use kcl_native::config::NativeConfig;
//! use kcl_native::testing::MemoryKinesis;
//! use kcl_native::{ShardInfo, Supervisor, processors};
//! use kcl_producer::api::{KinesisApi, Record, StreamRef};
//! use kcl_protocol::ExtendedSequenceNumber as E;
//!
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
//! let kinesis = MemoryKinesis::new("words", 1);
//! kinesis.fake().put_records(&StreamRef::name("words"), &[Record::new("k", "hello world")]).await.unwrap();
//! let store = Arc::new(MemoryStore::new());
//! let lease = Lease::new("shardId-000000000000", E::trim_horizon());
//! store.create_if_not_exists(&lease).await.unwrap();
//! store.update(Table::Lease, &ops::assign(&lease, "native-1")).await.unwrap(); // a leader's doing
//!
//! let config = NativeConfig::builder("words-app", "words")
//!     .worker_id("native-1")
//!     .idle_time_between_reads(Duration::from_millis(200))
//!     .shutdown_grace(Duration::from_secs(5))
//!     .build()
//!     .unwrap();
//! let supervisor = Supervisor::new(store.clone(), kinesis, config, processors(|_: &ShardInfo| {
//!     kcl_core::from_fn(|batch, _| {
//!         for record in batch {
//!             tracing::info!(text = %String::from_utf8_lossy(record.data()), "record");
//!         }
//!         Ok(())
//!     })
//! }));
//! let stopper = supervisor.stopper();
//! let run = tokio::spawn(supervisor.run());
//! // The record is handled and checkpointed (after every batch, the default strategy).
//! while store.item(Table::Lease, "shardId-000000000000").unwrap()["checkpoint"].as_s() == Some("TRIM_HORIZON") {
//!     tokio::time::sleep(Duration::from_millis(20)).await;
//! }
//! stopper.stop();
//! run.await.unwrap().unwrap();
//! let item = store.item(Table::Lease, "shardId-000000000000").unwrap();
//! assert!(!item.contains_key("leaseOwner")); // evicted: another worker may take it at once
//! # });
//! ```

mod error;
mod stop;

pub use error::RunError;
pub use stop::Stopper;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kcl_core::engine::Event;
use kcl_lease::LeaseStore;
use kcl_producer::api::StreamRef;
use tokio::runtime::Handle;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinSet;

use crate::cleanup::{CleanupSettings, LeaseCleanup};
use crate::config::NativeConfig;
use crate::coordinator::{
    Coordinator, CoordinatorConfig, LeaseEvent, LeaseHandle, Role, ShardSync, StartOptions,
};
use crate::factory::ShardHandlers;
use crate::kinesis::KinesisReader;
use crate::metrics::{Metrics, MetricsSink, NoMetrics};
use crate::shard_worker::{Outcome, ProcessorThread, ShardContext, ShardSettings};

use stop::StopLevel;

/// How often each shard logs its progress unless set
/// ([`Supervisor::progress_interval`]).
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(30);

/// One worker over a lease store and a Kinesis reader (see the [module](self) documentation).
/// [`run`](crate::run) makes one on DynamoDB and Kinesis; tests make one on a
/// [`MemoryStore`](kcl_lease::MemoryStore) and a
/// [`MemoryKinesis`](crate::testing::MemoryKinesis).
pub struct Supervisor<S, K, F> {
    store: Arc<S>,
    reader: K,
    config: NativeConfig,
    factory: Arc<F>,
    coordinator: CoordinatorConfig,
    progress_every: Duration,
    stopper: Stopper,
    metrics: Arc<dyn MetricsSink>,
}

impl<S, K, F> std::fmt::Debug for Supervisor<S, K, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("config", &self.config)
            .field("coordinator", &self.coordinator)
            .finish_non_exhaustive()
    }
}

/// The coordinator's settings from the worker's configuration: the lease timings, the handoff
/// settings, and the client version a new application starts with. The role is a KCL 3.x
/// worker that may lead ([`Role::Leader`], so that native workers alone get their leases
/// assigned); [`Coordinator::launch`] turns it into the 2.x lease taker when the table is in a
/// 2.x client version.
///
/// ```
/// use std::time::Duration;
/// use kcl_native::config::NativeConfig;
/// use kcl_native::coordinator::Role;
/// let config = NativeConfig::builder("app", "stream")
///     .worker_id("w-1")
///     .failover_time(Duration::from_secs(3))
///     .build()
///     .unwrap();
/// let lease = kcl_native::coordinator_config(&config);
/// assert_eq!((lease.worker_id.as_str(), lease.role), ("w-1", Role::Leader));
/// assert_eq!(lease.failover_time, Duration::from_secs(3));
/// assert_eq!(lease.assignment_interval(), Duration::from_secs(6));
/// ```
pub fn coordinator_config(config: &NativeConfig) -> CoordinatorConfig {
    let mut lease = CoordinatorConfig::new(config.worker_id());
    lease.role = Role::Leader;
    lease.client_version_config = config.client_version_config();
    lease.failover_time = config.failover_time();
    lease.assignment_interval = Some(config.lease_assignment_interval());
    lease.metrics_frequency = config.worker_metrics_reporter_freq();
    lease.handoff_timeout = config.graceful_lease_handoff_timeout();
    lease.graceful_handoff = config.graceful_lease_handoff_enabled();
    lease
}

impl<S, K, F> Supervisor<S, K, F>
where
    S: LeaseStore + Send + Sync + 'static,
    K: KinesisReader + Clone,
    F: ShardHandlers,
{
    /// A worker of `config`'s application and stream, its leases in `store`, reading through
    /// `reader`, each shard's processor built by `factory`.
    pub fn new(store: Arc<S>, reader: K, config: NativeConfig, factory: F) -> Self {
        Supervisor {
            store,
            reader,
            coordinator: coordinator_config(&config),
            config,
            factory: Arc::new(factory),
            progress_every: DEFAULT_PROGRESS_INTERVAL,
            stopper: Stopper::new(),
            metrics: Arc::new(NoMetrics),
        }
    }

    /// How often each shard logs a progress line (records handled, `millisBehindLatest`,
    /// checkpoint); 30 s unless set.
    pub fn progress_interval(mut self, every: Duration) -> Self {
        self.progress_every = every.max(Duration::from_millis(1));
        self
    }

    /// Sends the worker's metrics, under the Java KCL's names ([`crate::metrics`]), to `sink`
    /// ([`NoMetrics`] unless set).
    pub fn metrics(mut self, sink: impl MetricsSink) -> Self {
        self.metrics = Arc::new(sink);
        self
    }

    /// Replaces the coordinator's settings derived from the configuration
    /// ([`coordinator_config`]).
    pub fn coordinator_settings(mut self, coordinator: CoordinatorConfig) -> Self {
        self.coordinator = coordinator;
        self
    }

    /// The stopper of this worker (to stop it from another task).
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Runs the worker until it is stopped (`Ok`) or fails. Must run on a multi-thread tokio
    /// runtime: the shard threads block on it to write their checkpoints.
    pub async fn run(self) -> Result<(), RunError> {
        let Supervisor {
            store,
            reader,
            config,
            factory,
            coordinator,
            progress_every,
            stopper,
            metrics,
        } = self;
        let metrics = Metrics::shared(metrics, config.stream_name());
        let stream = match config.stream_arn() {
            Some(arn) => StreamRef::Arn(arn.to_owned()),
            None => StreamRef::name(config.stream_name()),
        };
        // The leader (or a 2.x taker on an empty table) creates the leases: it lists the
        // stream through the same reader, from the configured initial position.
        let shard_sync = ShardSync::new(reader.clone(), stream.clone(), config.initial_position());
        let options = StartOptions {
            shard_sync: Some(shard_sync),
            metrics: Some(metrics.clone()),
            ..StartOptions::default()
        };
        let (coordinator, events) = Coordinator::launch(store.clone(), coordinator, options)
            .await
            .map_err(|error| RunError::Tables(error.to_string()))?;
        tracing::info!(
            worker = %config.worker_id(),
            application = %config.application_name(),
            stream = %config.stream_name(),
            table = %config.table_name(),
            role = %coordinator.config().role,
            "native worker started"
        );
        let (cleanup, finished) = mpsc::unbounded_channel();
        let cleaning = LeaseCleanup::new(
            store.clone(),
            reader.clone(),
            stream.clone(),
            CleanupSettings {
                completed_enabled: config.cleanup_leases_upon_shard_completion(),
                interval: config.lease_cleanup_interval(),
                completed_interval: config.completed_lease_cleanup_interval(),
                garbage_interval: config.garbage_lease_cleanup_interval(),
            },
        );
        let cleaning = AbortOnDrop(tokio::spawn(cleaning.run(finished)));
        let context = Arc::new(ShardContext {
            store,
            reader,
            factory,
            settings: ShardSettings {
                stream,
                fetcher: config.fetcher_config(),
                call_even_for_empty: config.call_process_records_even_for_empty_record_list(),
                parent_poll: config.parent_shard_poll_interval(),
                retry_pause: Duration::from_millis(500),
                progress_every,
            },
            runtime: Handle::current(),
            metrics,
        });
        let (stop_shards, _) = watch::channel(false);
        let mut running = Running {
            context,
            coordinator,
            stop_shards,
            shards: JoinSet::new(),
            lanes: HashMap::new(),
            levels: stopper.subscribe(),
            grace: config.shutdown_grace(),
            cleanup,
            _cleaning: cleaning,
        };
        let failure = running.supervise(events).await;
        running.shut_down(failure).await
    }
}

/// A running worker.
struct Running<S, K, F> {
    context: Arc<ShardContext<S, K, F>>,
    coordinator: Coordinator,
    /// Set once: every shard worker delivers `shutdownRequested` and ends.
    stop_shards: watch::Sender<bool>,
    shards: JoinSet<(LeaseHandle, Outcome)>,
    /// One lock per lease key, held by its shard worker: a lease acquired again waits for the
    /// previous shard worker of the same key to end.
    lanes: HashMap<String, Arc<Mutex<()>>>,
    levels: watch::Receiver<StopLevel>,
    grace: Duration,
    /// The finished leases, to the cleanup task.
    cleanup: mpsc::UnboundedSender<kcl_lease::Lease>,
    _cleaning: AbortOnDrop,
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits until the stop level is at least `level`.
async fn reached(levels: &mut watch::Receiver<StopLevel>, level: StopLevel) {
    let _ = levels.wait_for(|now| *now >= level).await;
}

impl<S, K, F> Running<S, K, F>
where
    S: LeaseStore + Send + Sync + 'static,
    K: KinesisReader + Clone,
    F: ShardHandlers,
{
    /// Starts a shard worker per acquired lease until a stop or a failure (returned).
    async fn supervise(
        &mut self,
        mut events: tokio::sync::mpsc::UnboundedReceiver<LeaseEvent>,
    ) -> Option<RunError> {
        loop {
            tokio::select! {
                () = reached(&mut self.levels, StopLevel::Graceful) => return None,
                event = events.recv() => match event {
                    Some(LeaseEvent::Acquired(handle)) => self.spawn(handle),
                    None => return Some(RunError::CoordinatorStopped),
                },
                Some(joined) = self.shards.join_next() => {
                    if let Some(error) = self.ended(joined).await {
                        return Some(error);
                    }
                }
            }
        }
    }

    fn spawn(&mut self, handle: LeaseHandle) {
        let key = handle.lease_key().to_owned();
        tracing::info!(lease = %key, checkpoint = %handle.initial_checkpoint(), "lease acquired");
        let lane = self.lanes.entry(key).or_default().clone();
        let context = self.context.clone();
        let stop = self.stop_shards.subscribe();
        self.shards.spawn(async move {
            let _turn = lane.lock_owned().await;
            let outcome = context.run(handle.clone(), stop).await;
            (handle, outcome)
        });
    }

    /// A shard worker ended: the error that ends the run, if it failed (its lease evicted
    /// first).
    async fn ended(
        &mut self,
        joined: Result<(LeaseHandle, Outcome), tokio::task::JoinError>,
    ) -> Option<RunError> {
        let (handle, outcome) = match joined {
            Ok(ended) => ended,
            Err(error) if error.is_cancelled() => return None,
            Err(error) => {
                return Some(RunError::Shard {
                    shard: "(unknown)".into(),
                    reason: format!("a shard worker panicked: {error}"),
                });
            }
        };
        let shard = handle.lease_key().to_owned();
        let error = match outcome {
            Outcome::Ended | Outcome::Stopped(_) => return None,
            Outcome::Finished(lease) => {
                // The cleanup task outlives every shard worker but the last stop.
                let _ = self.cleanup.send(*lease);
                return None;
            }
            Outcome::Exit(reason) => RunError::ProcessorExit { shard, reason },
            Outcome::Failed(reason) => RunError::Shard { shard, reason },
        };
        tracing::error!(%error, "a shard failed: its lease is evicted, the worker stops");
        if let Err(evict) = self.coordinator.evict(&handle).await {
            tracing::warn!(lease = %handle.lease_key(), error = %evict, "eviction failed: the lease will expire");
        }
        Some(error)
    }

    /// The stop (see the module documentation); `failure` is what ended the run, if anything.
    async fn shut_down(mut self, failure: Option<RunError>) -> Result<(), RunError> {
        if *self.levels.borrow() >= StopLevel::Now {
            return Err(RunError::StoppedNow);
        }
        let mut failure = failure;
        self.coordinator.shutdown().await;
        let mut parked = Vec::new();
        if self.grace.is_zero() {
            tracing::warn!(
                "shutdownGraceMillis is 0: the leases are evicted without final checkpoints \
                 (set it to let the processors checkpoint on shutdownRequested)"
            );
        } else {
            tracing::info!(
                shards = self.shards.len(),
                grace = ?self.grace,
                "shutting down: shutdownRequested to every shard, then the leases are evicted"
            );
            self.stop_shards.send_replace(true);
            let deadline = tokio::time::Instant::now() + self.grace;
            loop {
                tokio::select! {
                    () = reached(&mut self.levels, StopLevel::Now) => return Err(RunError::StoppedNow),
                    () = tokio::time::sleep_until(deadline) => {
                        tracing::warn!(
                            shards = self.shards.len(),
                            "shutdownGraceMillis passed: the leases of the shards still busy are evicted all the same"
                        );
                        break;
                    }
                    joined = self.shards.join_next() => match joined {
                        None => break,
                        Some(Ok((_, Outcome::Stopped(Some(thread))))) => parked.push(thread),
                        Some(joined) => {
                            if let Some(error) = self.ended(joined).await {
                                failure.get_or_insert(error);
                            }
                        }
                    },
                }
            }
        }
        self.shards.abort_all();
        self.coordinator.close().await;
        tracing::info!("every lease evicted");
        lease_lost(parked, self.grace.max(Duration::from_secs(1))).await;
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// `leaseLost` to the processors stopped by the shutdown, as the daemon's shutdown ends; waits
/// at most `bound` for them.
async fn lease_lost(parked: Vec<ProcessorThread>, bound: Duration) {
    let mut done = JoinSet::new();
    for mut thread in parked {
        done.spawn(async move { thread.deliver(Event::LeaseLost).await.is_some() });
    }
    let all = async { while done.join_next().await.is_some() {} };
    if tokio::time::timeout(bound, all).await.is_err() {
        tracing::warn!("some processors did not return from leaseLost in time");
    }
}
