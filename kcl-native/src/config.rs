//! [`NativeConfig`]: everything the native engine needs, read from the MultiLangDaemon's
//! properties file with the same meaning as the daemon ([`NativeConfig::from_properties`]), or
//! built in code ([`NativeConfig::builder`]).
//!
//! One file serves both engines: keys the native engine does not honour yet give a
//! [`Warning`] naming the key and why, keys that only matter to the daemon (`executableName`,
//! ...) give a [`Level::Note`], and only what would change the meaning of the file is an error
//! (enhanced fan-out: the native engine polls). Every default below is the Java KCL 3.1.3's,
//! with the field it comes from.
//!
//! ```
//! use std::time::Duration;
//! use kcl_native::config::{InitialPosition, NativeConfig};
//! use kcl_properties::Properties;
//!
//! let props = Properties::parse(b"\
//! executableName = ./child
//! streamName = orders
//! applicationName = orders-app
//! workerId = host-1
//! initialPositionInStream = TRIM_HORIZON
//! retrievalMode = POLLING
//! failoverTimeMillis = 3000
//! ");
//! let (config, warnings) = NativeConfig::from_properties(&props).unwrap();
//! assert_eq!(config.table_name(), "orders-app");
//! assert_eq!(config.failover_time(), Duration::from_secs(3));
//! assert_eq!(config.lease_assignment_interval(), Duration::from_secs(6)); // 2 × failover
//! assert!(warnings.iter().any(|w| w.key.as_deref() == Some("executableName")));
//!
//! let built = NativeConfig::builder("orders-app", "orders")
//!     .worker_id("host-1")
//!     .initial_position(InitialPosition::TrimHorizon)
//!     .failover_time(Duration::from_secs(3))
//!     .build()
//!     .unwrap();
//! assert_eq!(built, config);
//! ```

use std::fmt;
use std::time::Duration;

use kcl_properties::ValueError;

use crate::FetcherConfig;

mod builder;
mod file;

pub use builder::NativeConfigBuilder;

/// Where a new lease starts reading (`initialPositionInStream`,
/// `initialPositionInStreamExtended`; Java's `InitialPositionInStreamExtended`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialPosition {
    /// `TRIM_HORIZON`: the oldest records.
    TrimHorizon,
    /// `LATEST`: records written from the start on (the KCL's default:
    /// `LeaseManagementConfig.initialPositionInStream`).
    Latest,
    /// `AT_TIMESTAMP`: records from this time on (`initialPositionInStreamExtended`, epoch
    /// seconds in the file).
    AtTimestamp {
        /// The time, epoch milliseconds.
        epoch_millis: i64,
    },
}

/// The lease protocol a new application starts with (`clientVersionConfig`; Java's
/// `CoordinatorConfig.ClientVersionConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientVersionConfig {
    /// `CLIENT_VERSION_CONFIG_3X` (the default): KCL 3.x leases, a leader assigns them.
    V3x,
    /// `CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X`: 2.x lease taking until every worker runs
    /// 3.x (the migration of `native-engine.md` §2.7).
    CompatibleWith2x,
}

/// The native engine's configuration. Read it with the getters; make one with
/// [`NativeConfig::builder`] or [`NativeConfig::from_properties`].
///
/// ```
/// use std::time::Duration;
/// use kcl_native::config::{ClientVersionConfig, InitialPosition, NativeConfig};
///
/// let config = NativeConfig::builder("app", "stream").build().unwrap();
/// assert_eq!(config.initial_position(), InitialPosition::Latest);
/// assert_eq!(config.coordinator_state_table_name(), "app-CoordinatorState");
/// assert_eq!(config.worker_metrics_table_name(), "app-WorkerMetricStats");
/// assert_eq!(config.max_records(), 10_000);
/// assert_eq!(config.idle_time_between_reads(), Duration::from_millis(1500));
/// assert_eq!(config.client_version_config(), ClientVersionConfig::V3x);
/// assert_eq!(config.worker_id().len(), 36); // a random UUID, as the daemon's
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeConfig {
    application_name: String,
    stream_name: String,
    stream_arn: Option<String>,
    table_name: String,
    coordinator_state_table_name: String,
    worker_metrics_table_name: String,
    region: Option<String>,
    kinesis_endpoint: Option<String>,
    dynamodb_endpoint: Option<String>,
    initial_position: InitialPosition,
    worker_id: String,
    failover_time: Duration,
    lease_assignment_interval: Duration,
    shard_sync_interval: Duration,
    parent_shard_poll_interval: Duration,
    cleanup_leases_upon_shard_completion: bool,
    lease_cleanup_interval: Duration,
    completed_lease_cleanup_interval: Duration,
    garbage_lease_cleanup_interval: Duration,
    max_records: u32,
    idle_time_between_reads: Duration,
    call_process_records_even_for_empty_record_list: bool,
    worker_metrics_reporter_freq: Duration,
    graceful_lease_handoff_timeout: Duration,
    graceful_lease_handoff_enabled: bool,
    client_version_config: ClientVersionConfig,
    shutdown_grace: Duration,
}

impl NativeConfig {
    /// `applicationName`: names the lease table (unless `tableName`) and the two KCL 3.x tables.
    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// The stream's name: `streamName`, or the name in `streamArn` (which wins, as in
    /// `KinesisClientLibConfigurator`).
    pub fn stream_name(&self) -> &str {
        &self.stream_name
    }

    /// `streamArn`, when given.
    pub fn stream_arn(&self) -> Option<&str> {
        self.stream_arn.as_deref()
    }

    /// The lease table: `tableName`, else `applicationName` (`ConfigsBuilder.tableName()`).
    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// `coordinatorStateTableName`, else `<applicationName>-CoordinatorState`
    /// (`CoordinatorConfig.CoordinatorStateTableConfig`, `DdbTableConfig`).
    pub fn coordinator_state_table_name(&self) -> &str {
        &self.coordinator_state_table_name
    }

    /// `workerMetricsTableName`, else `<applicationName>-WorkerMetricStats`
    /// (`LeaseManagementConfig.WorkerMetricsTableConfig`).
    pub fn worker_metrics_table_name(&self) -> &str {
        &self.worker_metrics_table_name
    }

    /// `regionName`; `None`: the AWS SDK's region chain decides.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// `kinesisEndpoint`; `None`: Kinesis in the region.
    pub fn kinesis_endpoint(&self) -> Option<&str> {
        self.kinesis_endpoint.as_deref()
    }

    /// `dynamoDBEndpoint`; `None`: DynamoDB in the region.
    pub fn dynamodb_endpoint(&self) -> Option<&str> {
        self.dynamodb_endpoint.as_deref()
    }

    /// Where new leases start (default `LATEST`).
    pub fn initial_position(&self) -> InitialPosition {
        self.initial_position
    }

    /// `workerId` (or `workerIdentifier`): the lease owner's name. Default: a random UUID
    /// at each start, as the daemon's (`MultiLangDaemonConfiguration.workerIdentifier =
    /// UUID.randomUUID()`); set a stable one per host (`real-daemon.md` §6.4).
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// `failoverTimeMillis`: a lease not renewed for this long is expired (10 000 ms,
    /// `LeaseManagementConfig.failoverTimeMillis`).
    pub fn failover_time(&self) -> Duration {
        self.failover_time
    }

    /// `leaseAssignmentIntervalMillis`: how often a leader assigns leases; 2 × the failover
    /// time unless set (`LeaseManagementConfig.leaseAssignmentIntervalMillis()`).
    pub fn lease_assignment_interval(&self) -> Duration {
        self.lease_assignment_interval
    }

    /// `shardSyncIntervalMillis` (60 000 ms, `LeaseManagementConfig.shardSyncIntervalMillis`):
    /// in the Java KCL only the shard sync task's idle time. The leader's periodic audit of
    /// hash-range holes runs every 2 minutes (`leasesRecoveryAuditorExecutionFrequencyMillis`,
    /// not a MultiLangDaemon key) and is
    /// [`CoordinatorConfig::shard_sync_interval`](crate::coordinator::CoordinatorConfig).
    pub fn shard_sync_interval(&self) -> Duration {
        self.shard_sync_interval
    }

    /// `parentShardPollIntervalMillis`: how often a child shard checks whether its parents are
    /// done (10 000 ms, `CoordinatorConfig.parentShardPollIntervalMillis`).
    pub fn parent_shard_poll_interval(&self) -> Duration {
        self.parent_shard_poll_interval
    }

    /// `cleanupLeasesUponShardCompletion`: delete finished leases (true,
    /// `LeaseManagementConfig.cleanupLeasesUponShardCompletion`; the file cannot turn it off:
    /// `false` in a Java `boolean` is ignored).
    pub fn cleanup_leases_upon_shard_completion(&self) -> bool {
        self.cleanup_leases_upon_shard_completion
    }

    /// `leaseCleanupIntervalMillis`: how often the finished leases are looked at (1 min,
    /// `LeaseManagementConfig.DEFAULT_LEASE_CLEANUP_INTERVAL_MILLIS`; no MultiLangDaemon key).
    pub fn lease_cleanup_interval(&self) -> Duration {
        self.lease_cleanup_interval
    }

    /// `completedLeaseCleanupIntervalMillis`: the least time between two checks for completed
    /// leases to delete (5 min, `DEFAULT_COMPLETED_LEASE_CLEANUP_INTERVAL_MILLIS`).
    pub fn completed_lease_cleanup_interval(&self) -> Duration {
        self.completed_lease_cleanup_interval
    }

    /// `garbageLeaseCleanupIntervalMillis`: the least time between two checks for leases of
    /// shards no longer in the stream (30 min, `DEFAULT_GARBAGE_LEASE_CLEANUP_INTERVAL_MILLIS`).
    pub fn garbage_lease_cleanup_interval(&self) -> Duration {
        self.garbage_lease_cleanup_interval
    }

    /// `maxRecords`: records per `GetRecords` call (10 000, `PollingConfig.DEFAULT_MAX_RECORDS`,
    /// also the most allowed).
    pub fn max_records(&self) -> u32 {
        self.max_records
    }

    /// `idleTimeBetweenReadsInMillis`: the pause between `GetRecords` calls (1 500 ms,
    /// `PollingConfig.idleTimeBetweenReadsInMillis`; at least 200 ms,
    /// `PollingConfig.MIN_IDLE_MILLIS_BETWEEN_READS`).
    pub fn idle_time_between_reads(&self) -> Duration {
        self.idle_time_between_reads
    }

    /// `callProcessRecordsEvenForEmptyRecordList`: deliver empty batches too (false,
    /// `ProcessorConfig`).
    pub fn call_process_records_even_for_empty_record_list(&self) -> bool {
        self.call_process_records_even_for_empty_record_list
    }

    /// `workerMetricsReporterFreqInMillis`: how often this worker writes its WorkerMetricStats
    /// row (30 000 ms, `WorkerUtilizationAwareAssignmentConfig`); a worker is active while its
    /// row is newer than twice that.
    pub fn worker_metrics_reporter_freq(&self) -> Duration {
        self.worker_metrics_reporter_freq
    }

    /// `gracefulLeaseHandoffTimeoutMillis`: how long a handed-off lease waits for its
    /// processor's last checkpoint (30 000 ms, `GracefulLeaseHandoffConfig`).
    pub fn graceful_lease_handoff_timeout(&self) -> Duration {
        self.graceful_lease_handoff_timeout
    }

    /// `isGracefulLeaseHandoffEnabled` (true, `GracefulLeaseHandoffConfig`).
    pub fn graceful_lease_handoff_enabled(&self) -> bool {
        self.graceful_lease_handoff_enabled
    }

    /// `clientVersionConfig` (`CLIENT_VERSION_CONFIG_3X`, `CoordinatorConfig.clientVersionConfig`).
    pub fn client_version_config(&self) -> ClientVersionConfig {
        self.client_version_config
    }

    /// `shutdownGraceMillis`: how long a shutdown waits for the processors to checkpoint and
    /// finish (0, `MultiLangDaemonConfiguration.shutdownGraceMillis`: the daemon's SIGTERM
    /// hook waits this long for `Scheduler.startGracefulShutdown()`).
    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// The fetcher's settings: `maxRecords`, the idle time, and the `AT_TIMESTAMP` time.
    ///
    /// ```
    /// use kcl_native::config::{InitialPosition, NativeConfig};
    /// let config = NativeConfig::builder("app", "stream")
    ///     .initial_position(InitialPosition::AtTimestamp { epoch_millis: 1_700_000_000_000 })
    ///     .max_records(100)
    ///     .build()
    ///     .unwrap();
    /// let fetcher = config.fetcher_config();
    /// assert_eq!(fetcher.max_records, 100);
    /// assert_eq!(fetcher.initial_timestamp_millis, Some(1_700_000_000_000));
    /// ```
    pub fn fetcher_config(&self) -> FetcherConfig {
        FetcherConfig {
            max_records: self.max_records,
            idle_time_between_reads: self.idle_time_between_reads,
            initial_timestamp_millis: match self.initial_position {
                InitialPosition::AtTimestamp { epoch_millis } => Some(epoch_millis),
                _ => None,
            },
            ..FetcherConfig::default()
        }
    }
}

/// How much a [`Warning`] matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Worth knowing: the key matters to the daemon only, or to nobody.
    Note,
    /// The native engine does not do what the daemon would with this file.
    Warning,
}

/// Something in a properties file the native engine reads differently from the daemon, or
/// ignores; [`NativeConfig::from_properties`] returns them next to the configuration.
///
/// ```
/// use kcl_native::config::{Level, Warning};
/// let warning = Warning { level: Level::Note, key: Some("executableName".into()), line: Some(3), message: "no child".into() };
/// assert_eq!(warning.to_string(), "note: line 3: no child");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// How much it matters.
    pub level: Level,
    /// The key it is about, if one.
    pub key: Option<String>,
    /// The key's line in the file, if read from one.
    pub line: Option<usize>,
    /// What and why.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Note => "note",
            Level::Warning => "warning",
        };
        match self.line {
            Some(line) if line > 0 => write!(f, "{level}: line {line}: {}", self.message),
            _ => write!(f, "{level}: {}", self.message),
        }
    }
}

/// Why there is no configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required key is missing (or blank).
    #[error("{0} is missing")]
    Missing(&'static str),
    /// A value the daemon refuses (it would stop with it).
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A value out of range, or settings that do not fit together.
    #[error("{}{key}: {reason}", line_prefix(*line))]
    Invalid {
        /// The key (or setting).
        key: &'static str,
        /// Its line in the file (0: not from a file).
        line: usize,
        /// Why.
        reason: String,
    },
    /// The file asks for something the native engine cannot do yet, so it would not mean the
    /// same (enhanced fan-out).
    #[error("{}{key}: {reason}", line_prefix(*line))]
    Unsupported {
        /// The key.
        key: &'static str,
        /// Its line in the file (0: not from a file).
        line: usize,
        /// Why, and what to do.
        reason: String,
    },
}

fn line_prefix(line: usize) -> String {
    if line > 0 {
        format!("line {line}: ")
    } else {
        String::new()
    }
}

/// A random (version 4) UUID in Java's `UUID.toString()` form: the daemon's default worker id.
fn random_uuid() -> String {
    let mut bytes = fastrand::u128(..).to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_look_like_java_uuids() {
        let id = random_uuid();
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(&id[14..15], "4");
        assert!("89ab".contains(&id[19..20]), "{id}");
        assert_ne!(id, random_uuid());
    }
}
