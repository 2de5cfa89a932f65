//! The lease coordinator of a KCL 3.x **follower** worker, on tokio: it keeps the leases a
//! leader (a Java KCL 3.x worker) assigns to this worker, as Java's own followers do, so a
//! native worker shares a lease table with live Java workers.
//!
//! - [`Coordinator`]: starts the tasks below and hands out each acquired lease as a
//!   [`LeaseHandle`] ([`LeaseEvent::Acquired`]); at shutdown evicts the leases so a Java leader
//!   reassigns them at once.
//! - `renewer`: renews every held lease each `failover / 3 − 25 ms`, concurrently, never behind
//!   fetching or user code; adopts graceful handoffs, recognises spurious failures, marks lost
//!   leases.
//! - `discovery`: finds the leases assigned to this worker (owner index, then a consistent
//!   read), skipping those a previous owner has not transferred yet.
//! - `metrics_row`: the `WorkerMetricStats` row that makes a leader assign to this worker.
//! - `held`: the state of one held lease, whose writes are serialised and fenced by local
//!   self-expiry; `handoff`: the forced transfer when a shard does not finish a handoff in
//!   time.
//! - [`LeaseDriver`]: the blocking [`kcl_core::engine::Driver`] of a shard worker thread,
//!   judging each checkpoint with [`kcl_protocol::Lease`] before writing it.
//! - [`CoordinatorConfig`]: the MultiLangDaemon's lease properties with Java's defaults.
//!
//! Only the follower [`Role`] runs. The leader (the `Leader` lock and the lease assignment
//! manager) and the 2.x lease taker are **not yet** implemented: [`Coordinator::start`]
//! refuses them.
//!
//! A lease's life on a follower:
//!
//! ```
//! use kcl_lease::{Lease, LeaseStore, MemoryStore, Table, ops};
//! use kcl_native::coordinator::{Coordinator, CoordinatorConfig, LeaseEvent, LeaseStatus};
//! use kcl_protocol::ExtendedSequenceNumber as E;
//! use std::sync::Arc;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let store = Arc::new(MemoryStore::new());
//! let lease = Lease::new("shardId-0", E::trim_horizon());
//! store.create_if_not_exists(&lease).await.unwrap();
//! store.update(Table::Lease, &ops::assign(&lease, "native-1")).await.unwrap(); // a Java leader
//!
//! let (mut coordinator, mut events) = Coordinator::start(store.clone(), CoordinatorConfig::new("native-1")).unwrap();
//! let Some(LeaseEvent::Acquired(handle)) = events.recv().await else { panic!() };
//! // ... a shard worker processes the shard and checkpoints through the handle ...
//! handle.checkpoint(E::new("49590", 0)).await.unwrap();
//!
//! // Shutdown: no more discovery; after the shard worker is done, evict.
//! coordinator.shutdown().await;
//! coordinator.evict(&handle).await.unwrap();
//! assert_eq!(handle.status(), LeaseStatus::Lost);
//! let item = store.item(Table::Lease, "shardId-0").unwrap();
//! assert!(!item.contains_key("leaseOwner")); // a Java leader assigns it in its next run
//! assert!(store.item(Table::WorkerMetrics, "native-1").is_some());
//! coordinator.close().await;
//! # });
//! ```

mod config;
mod discovery;
mod driver;
mod handle;
mod handoff;
mod held;
mod metrics_row;
mod renewer;

pub use config::{ConfigError, CoordinatorConfig, Role, SystemClock, WallClock};
pub use driver::LeaseDriver;
pub use handle::{LeaseHandle, LeaseWriteError};
pub use held::LeaseStatus;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kcl_lease::LeaseStore;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use held::LeaseWriter;

/// What the coordinator tells the worker.
#[derive(Debug)]
#[non_exhaustive]
pub enum LeaseEvent {
    /// A lease became this worker's: start a shard worker for it, at
    /// [`LeaseHandle::initial_checkpoint`]. If a previous handle of the same lease key is still
    /// ending (it was lost, then assigned to this worker again), let it end first.
    Acquired(LeaseHandle),
}

/// Why the coordinator did not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The role is not implemented yet (only [`Role::Follower`] is).
    #[error("the {0} role is not implemented yet")]
    RoleNotYet(Role),
}

/// What the tasks share: the configuration, the lease writer and the held leases.
pub(crate) struct Shared {
    config: CoordinatorConfig,
    writer: Arc<dyn LeaseWriter>,
    held: Mutex<BTreeMap<String, LeaseHandle>>,
}

impl Shared {
    fn leases(&self) -> MutexGuard<'_, BTreeMap<String, LeaseHandle>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The held leases (lost ones included until the renewer drops them).
    fn held_handles(&self) -> Vec<LeaseHandle> {
        self.leases().values().cloned().collect()
    }

    /// Whether `key` is held and not lost (a lost one may be acquired again).
    fn holds(&self, key: &str) -> bool {
        self.leases()
            .get(key)
            .is_some_and(|handle| handle.held().status() != LeaseStatus::Lost)
    }

    fn insert(&self, handle: LeaseHandle) {
        self.leases().insert(handle.lease_key().to_owned(), handle);
    }

    /// Drops lost leases from the held set.
    fn forget_lost(&self) {
        self.leases()
            .retain(|_, handle| handle.held().status() != LeaseStatus::Lost);
    }
}

/// The lease coordinator of one worker (see the [module](self) documentation): its tasks run
/// on the tokio runtime it was started on until [`close`](Coordinator::close) or drop.
pub struct Coordinator {
    shared: Arc<Shared>,
    renewer: JoinHandle<()>,
    discovery: Option<JoinHandle<()>>,
    metrics: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("config", &self.shared.config)
            .field("held", &self.shared.held_handles())
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    /// Starts a worker's coordinator on the current tokio runtime, with the system clock for
    /// the metrics row; the acquired leases arrive on the receiver. Discovery and the metrics
    /// row run at once, then at their periods.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start<S: LeaseStore + Send + Sync + 'static>(
        store: Arc<S>,
        config: CoordinatorConfig,
    ) -> Result<(Coordinator, mpsc::UnboundedReceiver<LeaseEvent>), StartError> {
        Coordinator::start_with_clock(store, config, Arc::new(SystemClock))
    }

    /// [`start`](Coordinator::start) with the wall clock of the metrics row's `lut`.
    pub fn start_with_clock<S: LeaseStore + Send + Sync + 'static>(
        store: Arc<S>,
        config: CoordinatorConfig,
        clock: Arc<dyn WallClock>,
    ) -> Result<(Coordinator, mpsc::UnboundedReceiver<LeaseEvent>), StartError> {
        config.validate()?;
        if config.role != Role::Follower {
            return Err(StartError::RoleNotYet(config.role));
        }
        let writer: Arc<dyn LeaseWriter> = store.clone();
        let shared = Arc::new(Shared {
            config,
            writer,
            held: Mutex::new(BTreeMap::new()),
        });
        let (events, receiver) = mpsc::unbounded_channel();
        let renewer = tokio::spawn(renewer::run(shared.clone()));
        let discovery = tokio::spawn(discovery::run(shared.clone(), store.clone(), events));
        let metrics = tokio::spawn(metrics_row::run(shared.clone(), store, clock));
        let coordinator = Coordinator {
            shared,
            renewer,
            discovery: Some(discovery),
            metrics: Some(metrics),
        };
        Ok((coordinator, receiver))
    }

    /// The configuration.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.shared.config
    }

    /// The leases held now (not lost).
    pub fn held(&self) -> Vec<LeaseHandle> {
        let mut handles = self.shared.held_handles();
        handles.retain(|handle| !handle.is_lost());
        handles
    }

    /// The first step of a shutdown: stops discovery (no new leases) and the metrics row (a
    /// leader stops assigning to this worker once the row is two periods old). Renewals go on,
    /// so the shard workers can finish and checkpoint; then [`evict`](Coordinator::evict) each
    /// lease and [`close`](Coordinator::close).
    pub async fn shutdown(&mut self) {
        for task in [self.discovery.take(), self.metrics.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
            let _ = task.await;
        }
    }

    /// Evicts a lease whose shard worker is done (`ops::evict`: `leaseOwner` removed, the
    /// counter raised by one, conditioned on `leaseOwner` = this worker): a Java leader assigns
    /// it in its next run instead of waiting for it to expire. The lease is lost to this worker afterwards.
    pub async fn evict(&self, handle: &LeaseHandle) -> Result<(), LeaseWriteError> {
        let result = handle.evict().await;
        self.shared.forget_lost();
        result
    }

    /// Ends the coordinator: evicts every lease still held (call it once the shard workers are
    /// done) and stops every task. A lease whose eviction fails is left to expire.
    pub async fn close(mut self) {
        self.shutdown().await;
        for handle in self.held() {
            if let Err(error) = self.evict(&handle).await {
                tracing::warn!(lease = %handle.lease_key(), %error, "eviction failed: the lease will expire");
            }
        }
        self.renewer.abort();
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.renewer.abort();
        for task in [&self.discovery, &self.metrics].into_iter().flatten() {
            task.abort();
        }
    }
}
