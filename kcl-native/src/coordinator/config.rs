//! [`CoordinatorConfig`]: the lease settings of a worker, with the Java KCL 3.1.3 defaults and
//! the MultiLangDaemon property names; [`Role`]: what the worker does with the lease table; the
//! wall clock of the metrics row and of the leader's view of it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use crate::config::ClientVersionConfig;

/// Java's `epsilonMillis`: taken off each period so a renewal lands before the lease could be
/// seen as expired.
const EPSILON: Duration = Duration::from_millis(25);

/// What a worker does with the lease table. [`Coordinator::launch`] picks it from the client
/// version of the table (`Migration3.0` in the CoordinatorState table): [`Role::Taker2x`] on a
/// table in a 2.x version, the configured [`Role::Leader`] or [`Role::Follower`] on a 3.x one.
///
/// The default is [`Role::Leader`], so that a fleet of native workers alone has a leader to
/// assign its leases (a follower-only fleet would hold none). Choose [`Role::Follower`] to leave
/// leading to Java workers.
///
/// [`Coordinator::launch`]: super::Coordinator::launch
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// A KCL 3.x follower: publishes its worker-metrics row, discovers the leases a leader
    /// assigns to it, renews them, honours graceful handoff, and never contends for the
    /// `Leader` lock.
    Follower,
    /// A KCL 3.x peer that may lead: everything a follower does, and it contends for the
    /// `Leader` lock with the DynamoDB lock client's protocol; while it holds the lock it runs
    /// the lease assignment manager and the periodic shard sync.
    #[default]
    Leader,
    /// A worker of a table in a 2.x client version (`CLIENT_VERSION_2X`,
    /// `CLIENT_VERSION_UPGRADE_FROM_2X`): the 2.x lease taker (scan, take expired leases,
    /// steal), with no worker-metrics row.
    Taker2x,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Follower => "follower",
            Role::Leader => "leader",
            Role::Taker2x => "2.x lease taker",
        })
    }
}

/// The lease settings of one worker. Each field names the property of the MultiLangDaemon's
/// properties file it stands for; the defaults are the Java KCL 3.1.3's
/// (`LeaseManagementConfig`).
///
/// ```
/// use kcl_native::coordinator::CoordinatorConfig;
/// use std::time::Duration;
/// let config = CoordinatorConfig::new("native-1");
/// assert_eq!(config.failover_time, Duration::from_secs(10));
/// assert_eq!(config.renew_period(), Duration::from_millis(3_308)); // failover / 3 − 25 ms
/// assert_eq!(config.assignment_interval(), Duration::from_secs(20)); // 2 × failover
/// assert_eq!(config.discovery_period(), Duration::from_millis(9_975)); // interval / 2 − 25 ms
/// let quick = CoordinatorConfig { failover_time: Duration::from_secs(3), ..config };
/// assert_eq!(quick.assignment_interval(), Duration::from_secs(6));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// `workerIdentifier`: this worker's id, the `leaseOwner` of its leases and the `wid` of
    /// its metrics row. Must be unique in the application (Java's default is a random UUID).
    pub worker_id: String,
    /// What the worker does ([`Role::Leader`] by default). [`Coordinator::launch`] replaces it
    /// with [`Role::Taker2x`] on a table in a 2.x client version.
    ///
    /// [`Coordinator::launch`]: super::Coordinator::launch
    pub role: Role,
    /// `failoverTimeMillis` (10 000): a lease whose counter has not moved for this long is
    /// expired to every other worker, and this worker treats a lease it has not renewed for
    /// this long as lost (local self-expiry).
    pub failover_time: Duration,
    /// `leaseAssignmentIntervalMillis`: how often the leader assigns leases; `None` is Java's
    /// default, 2 × `failover_time`. Discovery runs twice per interval.
    pub assignment_interval: Option<Duration>,
    /// `workerMetricsReporterFreqInMillis` (30 000): how often the worker-metrics row is
    /// written. A leader assigns leases only to workers whose row is at most two periods old.
    pub metrics_frequency: Duration,
    /// `gracefulLeaseHandoffTimeoutMillis` (30 000): how long after a leader asked this worker
    /// to hand a lease over the transfer is written even if the shard's processor has not
    /// returned from `shutdownRequested`.
    pub handoff_timeout: Duration,
    /// `isGracefulLeaseHandoffEnabled` (true): whether a *leader* moves live leases by
    /// graceful handoff rather than by assignment. A follower honours a handoff either way;
    /// this matters only for [`Role::Leader`].
    pub graceful_handoff: bool,
    /// The `leaseDuration` of the `Leader` lock (120 s, fixed in `DynamoDBLockBasedLeaderDecider`
    /// at 3.1.3): a contender takes the lock over once it has seen the same record version
    /// number for longer than this.
    pub leader_lease_duration: Duration,
    /// The lock client's heartbeat period (30 s at 3.1.3): the holder rewrites the record
    /// version number this often, and a contender looks at the lock this often.
    pub leader_heartbeat_period: Duration,
    /// How often the leader audits the lease table for missing leases (Java's
    /// `leasesRecoveryAuditorExecutionFrequencyMillis`, 2 min; not a MultiLangDaemon key at
    /// 3.1.3 — the daemon's `shardSyncIntervalMillis` is the idle time of a shard sync task,
    /// not this period). The leader also syncs once as soon as it takes the lock.
    pub shard_sync_interval: Duration,
    /// How many audits in a row must find the same hole in the leases' hash ranges before the
    /// leader creates leases for it (`leasesRecoveryAuditorInconsistencyConfidenceThreshold`,
    /// 3). An empty lease table needs no confirmation.
    pub hole_confidence: u32,
    /// Every how many assignment runs the leader also rebalances
    /// (`varianceBalancingFrequency`, 3); the first run after taking the lock does.
    pub balance_every: u32,
    /// At most this many leases moved per rebalancing run (a native choice, 2; see
    /// [`kcl_lease::plan::AssignSettings::max_moves`]).
    pub max_moves: usize,
    /// A worker-metrics row not updated for this long is deleted by the leader
    /// (`staleWorkerMetricsEntryCleanupDuration`, 1 day).
    pub stale_metrics_after: Duration,
    /// `clientVersionConfig`: what a new application's `Migration3.0` item says
    /// (`CLIENT_VERSION_3X`, or `CLIENT_VERSION_UPGRADE_FROM_2X` when compatible with 2.x), and
    /// how a table with leases but no such item is read.
    pub client_version_config: ClientVersionConfig,
    /// Whether [`Coordinator::launch`] runs the 2.x lease taker on a table in a 2.x client
    /// version (true); when false it refuses such a table.
    ///
    /// [`Coordinator::launch`]: super::Coordinator::launch
    pub take_part_in_2x: bool,
    /// How often the client version of the table is read again after
    /// [`Coordinator::launch`] (1 min, as Java's migration monitor); a change is logged, the
    /// role is not switched live.
    ///
    /// [`Coordinator::launch`]: super::Coordinator::launch
    pub client_version_period: Duration,
}

impl CoordinatorConfig {
    /// The Java defaults for the worker `worker_id`.
    pub fn new(worker_id: impl Into<String>) -> Self {
        CoordinatorConfig {
            worker_id: worker_id.into(),
            role: Role::default(),
            failover_time: Duration::from_millis(10_000),
            assignment_interval: None,
            metrics_frequency: Duration::from_millis(30_000),
            handoff_timeout: Duration::from_millis(30_000),
            graceful_handoff: true,
            leader_lease_duration: Duration::from_secs(120),
            leader_heartbeat_period: Duration::from_secs(30),
            shard_sync_interval: Duration::from_secs(120),
            hole_confidence: 3,
            balance_every: 3,
            max_moves: 2,
            stale_metrics_after: Duration::from_secs(24 * 60 * 60),
            client_version_config: ClientVersionConfig::V3x,
            take_part_in_2x: true,
            client_version_period: Duration::from_secs(60),
        }
    }

    /// `leaseAssignmentIntervalMillis`, or its default 2 × `failoverTimeMillis`.
    pub fn assignment_interval(&self) -> Duration {
        self.assignment_interval
            .unwrap_or_else(|| self.failover_time.saturating_mul(2))
    }

    /// The renewer's fixed rate: `failover / 3 − 25 ms` (Java's
    /// `getRenewerTakerIntervalMillis`), at least 1 ms.
    pub fn renew_period(&self) -> Duration {
        at_least_a_millisecond(whole_millis(self.failover_time, 3).saturating_sub(EPSILON))
    }

    /// The period of lease discovery: `leaseAssignmentIntervalMillis / 2 − 25 ms`, at least
    /// 1 ms.
    pub fn discovery_period(&self) -> Duration {
        at_least_a_millisecond(whole_millis(self.assignment_interval(), 2).saturating_sub(EPSILON))
    }

    /// The 2.x lease taker's period: `2 × (failover + 25 ms)` (Java's
    /// `takerIntervalMillis`), fixed delay.
    ///
    /// ```
    /// let config = kcl_native::coordinator::CoordinatorConfig::new("w");
    /// assert_eq!(config.taker_period(), std::time::Duration::from_millis(20_050));
    /// ```
    pub fn taker_period(&self) -> Duration {
        self.failover_time.saturating_add(EPSILON).saturating_mul(2)
    }

    /// Checks what would make the coordinator misbehave: an empty worker id, a zero failover
    /// time or metrics period, a leader lock whose heartbeat is not shorter than its lease, a
    /// zero period.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.worker_id.is_empty() {
            return Err(ConfigError("workerIdentifier is empty".into()));
        }
        if self.failover_time < Duration::from_millis(100) {
            return Err(ConfigError(format!(
                "failoverTimeMillis {} is below 100",
                self.failover_time.as_millis()
            )));
        }
        if self.metrics_frequency.is_zero() {
            return Err(ConfigError("workerMetricsReporterFreqInMillis is 0".into()));
        }
        if self.leader_heartbeat_period.is_zero()
            || self.leader_heartbeat_period >= self.leader_lease_duration
        {
            return Err(ConfigError(format!(
                "the leader lock's heartbeat period ({} ms) must be above 0 and below its lease duration ({} ms)",
                self.leader_heartbeat_period.as_millis(),
                self.leader_lease_duration.as_millis()
            )));
        }
        for (name, period) in [
            ("the shard sync interval", self.shard_sync_interval),
            ("the client version period", self.client_version_period),
        ] {
            if period.is_zero() {
                return Err(ConfigError(format!("{name} is 0")));
            }
        }
        if self.assignment_interval().is_zero() {
            return Err(ConfigError("leaseAssignmentIntervalMillis is 0".into()));
        }
        Ok(())
    }
}

/// `duration / divisor` in whole milliseconds, as Java's integer arithmetic on millis.
fn whole_millis(duration: Duration, divisor: u128) -> Duration {
    let millis = duration.as_millis() / divisor;
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

fn at_least_a_millisecond(period: Duration) -> Duration {
    period.max(Duration::from_millis(1))
}

/// A configuration the coordinator cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid lease configuration: {0}")]
pub struct ConfigError(pub String);

/// The wall clock of the worker-metrics row's `lut` (epoch seconds): the only wall-clock value
/// of the protocol, compared with the leader's clock. Leases never use it.
///
/// Any `Fn() -> SystemTime` is a clock:
///
/// ```
/// use kcl_native::coordinator::WallClock;
/// use std::time::{Duration, UNIX_EPOCH};
/// let fixed = || UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(fixed.now(), UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// ```
pub trait WallClock: Send + Sync {
    /// The time now.
    fn now(&self) -> SystemTime;
}

impl<F: Fn() -> SystemTime + Send + Sync> WallClock for F {
    fn now(&self) -> SystemTime {
        self()
    }
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A shared clock.
pub(crate) type Clock = Arc<dyn WallClock>;

/// A wall-clock time in epoch milliseconds (0 before the epoch).
pub(crate) fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
