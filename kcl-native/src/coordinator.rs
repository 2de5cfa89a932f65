//! The lease coordinator of a KCL 3.x worker, on tokio: it keeps the leases of this worker
//! in a lease table shared with live Java workers, in one of three [`Role`]s — a **follower**
//! (leases a leader assigns), a **leader** (a follower that may also hold the `Leader` lock and
//! then assigns the leases of every worker), or a **2.x lease taker** (on a table in a 2.x
//! client version).
//!
//! - [`Coordinator`]: starts the tasks below and hands out each acquired lease as a
//!   [`LeaseHandle`] ([`LeaseEvent::Acquired`]); at shutdown evicts the leases so a leader
//!   reassigns them at once. [`Coordinator::launch`] first reads (for a new application,
//!   writes) the table's client version and picks the role; [`Coordinator::start`] runs the
//!   configured role.
//! - `renewer`: renews every held lease each `failover / 3 − 25 ms`, concurrently, never behind
//!   fetching or user code; adopts graceful handoffs, recognises spurious failures, marks lost
//!   leases.
//! - `discovery` (follower, leader): finds the leases assigned to this worker (owner index, then
//!   a consistent read), skipping those a previous owner has not transferred yet.
//! - `metrics_row` (follower, leader): the `WorkerMetricStats` row that makes a leader assign to
//!   this worker.
//! - `leader` (leader): the `Leader` lock (`leader_lock`, the DynamoDB lock client's protocol),
//!   and while it is held the lease assignment manager (`leader_lam`) and the shard sync audit
//!   (`leader_sync`, with a [`ShardSync`]).
//! - `taker` (2.x taker): scans, takes expired leases and steals to balance; no metrics row.
//! - `client_version`: `Migration3.0` at launch and its re-reading.
//! - `held`: the state of one held lease, whose writes are serialised and fenced by local
//!   self-expiry; `handoff`: the forced transfer when a shard does not finish a handoff in
//!   time.
//! - [`LeaseDriver`]: the blocking [`kcl_core::engine::Driver`] of a shard worker thread,
//!   judging each checkpoint with [`kcl_protocol::Lease`] before writing it.
//! - [`CoordinatorConfig`]: the MultiLangDaemon's lease properties with Java's defaults.
//!
//! A lease's life on a follower:
//!
//! ```
//! use kcl_lease::{Lease, LeaseStore, MemoryStore, Table, ops};
//! use kcl_native::coordinator::{Coordinator, CoordinatorConfig, LeaseEvent, LeaseStatus, Role};
//! use kcl_protocol::ExtendedSequenceNumber as E;
//! use std::sync::Arc;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let store = Arc::new(MemoryStore::new());
//! let lease = Lease::new("shardId-0", E::trim_horizon());
//! store.create_if_not_exists(&lease).await.unwrap();
//! store.update(Table::Lease, &ops::assign(&lease, "native-1")).await.unwrap(); // a Java leader
//!
//! let config = CoordinatorConfig { role: Role::Follower, ..CoordinatorConfig::new("native-1") };
//! let (mut coordinator, mut events) = Coordinator::start(store.clone(), config).unwrap();
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
//! // The worker-metrics row is gone too: a leader counts this worker out at once.
//! assert!(store.item(Table::WorkerMetrics, "native-1").is_none());
//! coordinator.close().await;
//! # });
//! ```

mod client_version;
mod config;
mod discovery;
mod driver;
mod handle;
mod handoff;
mod held;
mod leader;
mod leader_lam;
mod leader_lock;
mod leader_sync;
mod metrics_row;
mod renewer;
mod taker;

pub use client_version::{LaunchError, VersionDecision};
pub use config::{
    ClientVersionConfig, ConfigError, CoordinatorConfig, Role, SystemClock, WallClock,
};
pub use driver::LeaseDriver;
pub use handle::{LeaseHandle, LeaseWriteError};
pub use held::LeaseStatus;
pub use leader_sync::ShardSync;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kcl_lease::{ClientVersion, LeaseStore};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use config::Clock;
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
}

/// What a coordinator is started with besides the store and the configuration.
///
/// ```
/// use kcl_native::config::InitialPosition;
/// use kcl_native::coordinator::{ShardSync, StartOptions, SystemClock};
/// use kcl_native::testing::MemoryKinesis;
/// use kcl_producer::api::StreamRef;
/// use std::sync::Arc;
///
/// let kinesis = MemoryKinesis::new("orders", 4);
/// let options = StartOptions::default()
///     .clock(Arc::new(SystemClock))
///     .shard_sync(ShardSync::new(kinesis, StreamRef::name("orders"), InitialPosition::Latest));
/// assert!(options.shard_sync.is_some());
/// ```
#[derive(Clone, Default)]
pub struct StartOptions {
    /// The wall clock of the metrics row's `lut` and of the leader's judgement of other rows
    /// (`None`: the system clock).
    pub clock: Option<Arc<dyn WallClock>>,
    /// Shard sync: how a leader (and a 2.x taker on an empty table) lists the stream to create
    /// leases, and where they start. `None`: this worker creates no leases (a leader still
    /// assigns them).
    pub shard_sync: Option<ShardSync>,
    /// Where the renewer's `RenewAllLeases` metrics go (`None`: nowhere).
    pub metrics: Option<crate::metrics::Metrics>,
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions")
            .field("clock", &self.clock.as_ref().map(|_| "…"))
            .field("shard_sync", &self.shard_sync)
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl StartOptions {
    /// With this wall clock.
    pub fn clock(mut self, clock: Arc<dyn WallClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// With this shard sync.
    pub fn shard_sync(mut self, shard_sync: ShardSync) -> Self {
        self.shard_sync = Some(shard_sync);
        self
    }
}

/// What the tasks share: the configuration, the lease writer, the held leases, whether this
/// worker leads, and the client version last read.
pub(crate) struct Shared {
    config: CoordinatorConfig,
    writer: Arc<dyn LeaseWriter>,
    held: Mutex<BTreeMap<String, LeaseHandle>>,
    leader: AtomicBool,
    client_version: Mutex<Option<ClientVersion>>,
    metrics: crate::metrics::Metrics,
}

impl Shared {
    /// Records the client version read; returns the one before.
    fn set_client_version(&self, now: Option<ClientVersion>) -> Option<ClientVersion> {
        let mut version = self
            .client_version
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *version, now)
    }

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
    /// Tells the metrics task to delete the row and end (a graceful shutdown).
    metrics_stop: Option<watch::Sender<bool>>,
    /// At [`close`](Coordinator::close): evicts the leases the table says this worker owns
    /// but it never acquired ([`discovery::release_unheld`]).
    sweep: Sweep,
    taker: Option<JoinHandle<()>>,
    leader: Option<(JoinHandle<()>, watch::Sender<bool>)>,
    version: Option<JoinHandle<()>>,
}

/// The last step of a close, bound to the store.
type Sweep = Arc<dyn Fn() -> held::BoxFuture<'static, ()> + Send + Sync>;

/// How long a shutdown waits for the leader's task to release the lock.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("config", &self.shared.config)
            .field("held", &self.shared.held_handles())
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    /// Starts a worker's coordinator in the configured [`Role`] on the current tokio runtime,
    /// with the system clock and no shard sync (a leader assigns leases but creates none); the
    /// acquired leases arrive on the receiver. Discovery, the metrics row, the leader's first
    /// look at the lock and the taker's first round run at once, then at their periods.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start<S: LeaseStore + Send + Sync + 'static>(
        store: Arc<S>,
        config: CoordinatorConfig,
    ) -> Result<(Coordinator, mpsc::UnboundedReceiver<LeaseEvent>), StartError> {
        Coordinator::start_with(store, config, StartOptions::default())
    }

    /// [`start`](Coordinator::start) with the wall clock of the metrics row's `lut`.
    pub fn start_with_clock<S: LeaseStore + Send + Sync + 'static>(
        store: Arc<S>,
        config: CoordinatorConfig,
        clock: Arc<dyn WallClock>,
    ) -> Result<(Coordinator, mpsc::UnboundedReceiver<LeaseEvent>), StartError> {
        Coordinator::start_with(store, config, StartOptions::default().clock(clock))
    }

    /// [`start`](Coordinator::start) with a clock and a shard sync.
    pub fn start_with<S: LeaseStore + Send + Sync + 'static>(
        store: Arc<S>,
        config: CoordinatorConfig,
        options: StartOptions,
    ) -> Result<(Coordinator, mpsc::UnboundedReceiver<LeaseEvent>), StartError> {
        config.validate()?;
        let clock: Clock = options.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let writer: Arc<dyn LeaseWriter> = store.clone();
        let role = config.role;
        let shared = Arc::new(Shared {
            config,
            writer,
            held: Mutex::new(BTreeMap::new()),
            leader: AtomicBool::new(false),
            client_version: Mutex::new(None),
            metrics: options.metrics.clone().unwrap_or_default(),
        });
        let (events, receiver) = mpsc::unbounded_channel();
        let renewer = tokio::spawn(renewer::run(shared.clone()));
        let sweep: Sweep = {
            let (shared, store) = (shared.clone(), store.clone());
            Arc::new(move || {
                let (shared, store) = (shared.clone(), store.clone());
                Box::pin(async move { discovery::release_unheld(&shared, store.as_ref()).await })
            })
        };
        let mut coordinator = Coordinator {
            shared: shared.clone(),
            renewer,
            discovery: None,
            metrics: None,
            metrics_stop: None,
            sweep,
            taker: None,
            leader: None,
            version: None,
        };
        match role {
            Role::Follower | Role::Leader => {
                coordinator.discovery = Some(tokio::spawn(discovery::run(
                    shared.clone(),
                    store.clone(),
                    events,
                )));
                let (stop, stopped) = watch::channel(false);
                coordinator.metrics = Some(tokio::spawn(metrics_row::run(
                    shared.clone(),
                    store.clone(),
                    clock.clone(),
                    stopped,
                )));
                coordinator.metrics_stop = Some(stop);
                if role == Role::Leader {
                    let (stop, stopped) = watch::channel(false);
                    let task = tokio::spawn(leader::run(
                        shared,
                        store,
                        clock,
                        options.shard_sync,
                        stopped,
                    ));
                    coordinator.leader = Some((task, stop));
                }
            }
            Role::Taker2x => {
                coordinator.taker = Some(tokio::spawn(taker::run(
                    shared,
                    store,
                    events,
                    options.shard_sync,
                )));
            }
        }
        Ok((coordinator, receiver))
    }

    /// Reads the table's client version — for a new application (no `Migration3.0` item, no
    /// lease) writes it first, as the Java KCL 3.1.3 does — picks the role from it
    /// ([`Role::Taker2x`] on a 2.x table, the configured leader or follower on a 3.x one), then
    /// [starts](Coordinator::start_with) in that role and re-reads the version every
    /// `client_version_period`, logging a change (the role is not switched live). The
    /// decision is [`Coordinator::client_version`] and [`Coordinator::role`].
    ///
    /// ```
    /// use kcl_lease::{LeaseStore, MemoryStore, Table};
    /// use kcl_native::coordinator::{Coordinator, CoordinatorConfig, Role, StartOptions};
    /// use std::sync::Arc;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let store = Arc::new(MemoryStore::new());
    /// let (coordinator, _events) =
    ///     Coordinator::launch(store.clone(), CoordinatorConfig::new("native-1"), StartOptions::default()).await.unwrap();
    /// let item = store.item(Table::CoordinatorState, "Migration3.0").unwrap();
    /// assert_eq!(item["cv"].as_s(), Some("CLIENT_VERSION_3X")); // a new application
    /// assert_eq!(coordinator.role(), Role::Leader);
    /// coordinator.close().await;
    /// # });
    /// ```
    pub async fn launch<S: LeaseStore + Send + Sync + 'static>(
        store: Arc<S>,
        mut config: CoordinatorConfig,
        options: StartOptions,
    ) -> Result<(Coordinator, mpsc::UnboundedReceiver<LeaseEvent>), LaunchError> {
        config.validate().map_err(StartError::from)?;
        let clock: Clock = options
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock));
        let decision = client_version::decide(store.as_ref(), &config, clock.as_ref()).await?;
        config.role = decision.role;
        let (mut coordinator, events) =
            Coordinator::start_with(store.clone(), config, options.clock(clock))?;
        coordinator
            .shared
            .set_client_version(decision.client_version);
        coordinator.version = Some(tokio::spawn(client_version::watch(
            coordinator.shared.clone(),
            store,
        )));
        Ok((coordinator, events))
    }

    /// The role this coordinator runs.
    pub fn role(&self) -> Role {
        self.shared.config.role
    }

    /// Whether this worker holds the `Leader` lock now (only ever for [`Role::Leader`]).
    pub fn is_leader(&self) -> bool {
        self.shared.leader.load(Ordering::SeqCst)
    }

    /// The table's client version as last read (after [`launch`](Coordinator::launch); `None`
    /// before, or when the table has no `Migration3.0` item).
    pub fn client_version(&self) -> Option<ClientVersion> {
        *self
            .shared
            .client_version
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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

    /// The first step of a shutdown: stops discovery and the taker (no new leases), the
    /// metrics row, which it deletes (a leader assigns nothing more to this worker, not even
    /// the leases it is about to evict; a failed delete leaves the row to age, two periods),
    /// and the leader's task, which releases the `Leader` lock (deletes it, so another worker
    /// takes it at its next look instead of after the lock's lease duration). Renewals go on,
    /// so the shard workers can finish and checkpoint; then [`evict`](Coordinator::evict) each
    /// lease and [`close`](Coordinator::close).
    pub async fn shutdown(&mut self) {
        if let Some((task, stop)) = self.leader.take() {
            let _ = stop.send(true);
            let abort = task.abort_handle();
            if tokio::time::timeout(RELEASE_WAIT, task).await.is_err() {
                tracing::warn!("the leader's task did not stop in time: the lock will expire");
                abort.abort();
            }
            self.shared.leader.store(false, Ordering::SeqCst);
        }
        if let (Some(task), Some(stop)) = (self.metrics.take(), self.metrics_stop.take()) {
            let _ = stop.send(true);
            let abort = task.abort_handle();
            if tokio::time::timeout(RELEASE_WAIT, task).await.is_err() {
                tracing::warn!("the metrics task did not stop in time: the row ages out");
                abort.abort();
            }
        }
        for task in [
            self.discovery.take(),
            self.metrics.take(),
            self.taker.take(),
            self.version.take(),
        ]
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
    /// done), then every lease the table says this worker owns that it never acquired (a
    /// leader assigned it after discovery stopped), and stops every task. A lease whose
    /// eviction fails is left to expire.
    pub async fn close(mut self) {
        self.shutdown().await;
        for handle in self.held() {
            if let Err(error) = self.evict(&handle).await {
                tracing::warn!(lease = %handle.lease_key(), %error, "eviction failed: the lease will expire");
            }
        }
        (self.sweep)().await;
        self.renewer.abort();
    }
}

impl Drop for Coordinator {
    /// Stops every task without a write: like a worker that dies, the leases and the `Leader`
    /// lock are left to expire.
    fn drop(&mut self) {
        self.renewer.abort();
        for task in [&self.discovery, &self.metrics, &self.taker, &self.version]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        if let Some((task, _)) = &self.leader {
            task.abort();
        }
        self.shared.leader.store(false, Ordering::SeqCst);
    }
}
