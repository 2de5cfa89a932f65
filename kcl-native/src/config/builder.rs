//! [`NativeConfigBuilder`]: a [`NativeConfig`] in code, with the Java KCL's defaults and the
//! checks the daemon makes; [`NativeConfig::from_properties`] goes through it too, so a file
//! and the same values in code give equal configurations.

use std::time::Duration;

use super::{ClientVersionConfig, ConfigError, InitialPosition, NativeConfig, random_uuid};

/// The most records one `GetRecords` call may ask for (`PollingConfig.DEFAULT_MAX_RECORDS`,
/// checked by `PollingConfig.maxRecords(int)`).
pub(super) const MAX_RECORDS: u32 = 10_000;

/// The shortest pause between `GetRecords` calls (`PollingConfig.MIN_IDLE_MILLIS_BETWEEN_READS`;
/// a shorter one is raised to it, with a warning).
pub(super) const MIN_IDLE_TIME: Duration = Duration::from_millis(200);

/// Builds a [`NativeConfig`]; every setting not given keeps the Java KCL 3.1.3 default.
///
/// ```
/// use std::time::Duration;
/// use kcl_native::config::{ConfigError, NativeConfig};
///
/// let config = NativeConfig::builder("app", "ignored")
///     .stream_arn("arn:aws:kinesis:us-east-1:123456789012:stream/orders")
///     .idle_time_between_reads(Duration::from_millis(50))
///     .build()
///     .unwrap();
/// assert_eq!(config.stream_name(), "orders"); // the ARN wins
/// assert_eq!(config.idle_time_between_reads(), Duration::from_millis(200)); // the least
///
/// let error = NativeConfig::builder("app", "s").max_records(20_000).build().unwrap_err();
/// assert!(matches!(error, ConfigError::Invalid { key: "maxRecords", .. }));
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct NativeConfigBuilder {
    application_name: String,
    stream_name: String,
    stream_arn: Option<String>,
    table_name: Option<String>,
    coordinator_state_table_name: Option<String>,
    worker_metrics_table_name: Option<String>,
    region: Option<String>,
    kinesis_endpoint: Option<String>,
    dynamodb_endpoint: Option<String>,
    initial_position: InitialPosition,
    worker_id: Option<String>,
    failover_time: Duration,
    lease_assignment_interval: Option<Duration>,
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
    /// A builder for the application `application` (`applicationName`) reading the stream named
    /// `stream` (`streamName`).
    pub fn builder(
        application: impl Into<String>,
        stream: impl Into<String>,
    ) -> NativeConfigBuilder {
        NativeConfigBuilder {
            application_name: application.into(),
            stream_name: stream.into(),
            stream_arn: None,
            table_name: None,
            coordinator_state_table_name: None,
            worker_metrics_table_name: None,
            region: None,
            kinesis_endpoint: None,
            dynamodb_endpoint: None,
            // LeaseManagementConfig.initialPositionInStream
            initial_position: InitialPosition::Latest,
            worker_id: None,
            // LeaseManagementConfig.failoverTimeMillis
            failover_time: Duration::from_millis(10_000),
            lease_assignment_interval: None,
            // LeaseManagementConfig.shardSyncIntervalMillis
            shard_sync_interval: Duration::from_millis(60_000),
            // CoordinatorConfig.parentShardPollIntervalMillis
            parent_shard_poll_interval: Duration::from_millis(10_000),
            // LeaseManagementConfig.cleanupLeasesUponShardCompletion
            cleanup_leases_upon_shard_completion: true,
            // LeaseManagementConfig.DEFAULT_LEASE_CLEANUP_INTERVAL_MILLIS (1 min)
            lease_cleanup_interval: Duration::from_secs(60),
            // LeaseManagementConfig.DEFAULT_COMPLETED_LEASE_CLEANUP_INTERVAL_MILLIS (5 min)
            completed_lease_cleanup_interval: Duration::from_secs(300),
            // LeaseManagementConfig.DEFAULT_GARBAGE_LEASE_CLEANUP_INTERVAL_MILLIS (30 min)
            garbage_lease_cleanup_interval: Duration::from_secs(1800),
            max_records: MAX_RECORDS,
            // PollingConfig.idleTimeBetweenReadsInMillis
            idle_time_between_reads: Duration::from_millis(1500),
            // ProcessorConfig.callProcessRecordsEvenForEmptyRecordList
            call_process_records_even_for_empty_record_list: false,
            // WorkerUtilizationAwareAssignmentConfig.workerMetricsReporterFreqInMillis
            worker_metrics_reporter_freq: Duration::from_millis(30_000),
            // GracefulLeaseHandoffConfig.gracefulLeaseHandoffTimeoutMillis
            graceful_lease_handoff_timeout: Duration::from_millis(30_000),
            // GracefulLeaseHandoffConfig.isGracefulLeaseHandoffEnabled
            graceful_lease_handoff_enabled: true,
            // CoordinatorConfig.clientVersionConfig
            client_version_config: ClientVersionConfig::V3x,
            // MultiLangDaemonConfiguration.shutdownGraceMillis (a Java long: 0)
            shutdown_grace: Duration::ZERO,
        }
    }
}

impl NativeConfigBuilder {
    /// `streamArn`: the stream by ARN; its name replaces the stream name given to
    /// [`NativeConfig::builder`] (`KinesisClientLibConfigurator`: "Stream Arn takes precedence").
    pub fn stream_arn(mut self, arn: impl Into<String>) -> Self {
        self.stream_arn = Some(arn.into());
        self
    }

    /// `tableName`: the lease table (default: the application name).
    pub fn table_name(mut self, name: impl Into<String>) -> Self {
        self.table_name = Some(name.into());
        self
    }

    /// `coordinatorStateTableName` (default `<application>-CoordinatorState`).
    pub fn coordinator_state_table_name(mut self, name: impl Into<String>) -> Self {
        self.coordinator_state_table_name = Some(name.into());
        self
    }

    /// `workerMetricsTableName` (default `<application>-WorkerMetricStats`).
    pub fn worker_metrics_table_name(mut self, name: impl Into<String>) -> Self {
        self.worker_metrics_table_name = Some(name.into());
        self
    }

    /// `regionName`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// `kinesisEndpoint`: an `http://` or `https://` URL.
    pub fn kinesis_endpoint(mut self, url: impl Into<String>) -> Self {
        self.kinesis_endpoint = Some(url.into());
        self
    }

    /// `dynamoDBEndpoint`: an `http://` or `https://` URL.
    pub fn dynamodb_endpoint(mut self, url: impl Into<String>) -> Self {
        self.dynamodb_endpoint = Some(url.into());
        self
    }

    /// `initialPositionInStream` / `initialPositionInStreamExtended`.
    pub fn initial_position(mut self, position: InitialPosition) -> Self {
        self.initial_position = position;
        self
    }

    /// `workerId` (default: a random UUID at each build).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// `failoverTimeMillis` (more than zero).
    pub fn failover_time(mut self, time: Duration) -> Self {
        self.failover_time = time;
        self
    }

    /// `leaseAssignmentIntervalMillis` (more than zero; default 2 × the failover time).
    pub fn lease_assignment_interval(mut self, interval: Duration) -> Self {
        self.lease_assignment_interval = Some(interval);
        self
    }

    /// `shardSyncIntervalMillis` (more than zero).
    pub fn shard_sync_interval(mut self, interval: Duration) -> Self {
        self.shard_sync_interval = interval;
        self
    }

    /// `parentShardPollIntervalMillis` (more than zero).
    pub fn parent_shard_poll_interval(mut self, interval: Duration) -> Self {
        self.parent_shard_poll_interval = interval;
        self
    }

    /// `cleanupLeasesUponShardCompletion` (only code can turn it off: the file's `false` is
    /// ignored by the daemon and so here).
    pub fn cleanup_leases_upon_shard_completion(mut self, cleanup: bool) -> Self {
        self.cleanup_leases_upon_shard_completion = cleanup;
        self
    }

    /// The lease cleanup's timings (`LeaseCleanupConfig`; the MultiLangDaemon reads no key for
    /// them, so only code sets them): how often the finished leases are looked at
    /// (`leaseCleanupIntervalMillis`, 1 min), and how long after the start or the last delete
    /// the completed-shard check (`completedLeaseCleanupIntervalMillis`, 5 min) and the
    /// garbage check (`garbageLeaseCleanupIntervalMillis`, 30 min) run again. Each more than
    /// zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = kcl_native::config::NativeConfig::builder("app", "stream")
    ///     .lease_cleanup_intervals(Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(3))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.completed_lease_cleanup_interval(), Duration::from_secs(2));
    /// ```
    pub fn lease_cleanup_intervals(
        mut self,
        interval: Duration,
        completed: Duration,
        garbage: Duration,
    ) -> Self {
        self.lease_cleanup_interval = interval;
        self.completed_lease_cleanup_interval = completed;
        self.garbage_lease_cleanup_interval = garbage;
        self
    }

    /// `maxRecords` (1 to 10 000).
    pub fn max_records(mut self, records: u32) -> Self {
        self.max_records = records;
        self
    }

    /// `idleTimeBetweenReadsInMillis` (less than 200 ms becomes 200 ms, as
    /// `PollingConfig.idleTimeBetweenReadsInMillis(long)` does).
    pub fn idle_time_between_reads(mut self, time: Duration) -> Self {
        self.idle_time_between_reads = time;
        self
    }

    /// `callProcessRecordsEvenForEmptyRecordList`.
    pub fn call_process_records_even_for_empty_record_list(mut self, call: bool) -> Self {
        self.call_process_records_even_for_empty_record_list = call;
        self
    }

    /// `workerMetricsReporterFreqInMillis` (more than zero).
    pub fn worker_metrics_reporter_freq(mut self, freq: Duration) -> Self {
        self.worker_metrics_reporter_freq = freq;
        self
    }

    /// `gracefulLeaseHandoffTimeoutMillis` (0 allowed: the handoff does not wait).
    pub fn graceful_lease_handoff_timeout(mut self, timeout: Duration) -> Self {
        self.graceful_lease_handoff_timeout = timeout;
        self
    }

    /// `isGracefulLeaseHandoffEnabled`.
    pub fn graceful_lease_handoff_enabled(mut self, enabled: bool) -> Self {
        self.graceful_lease_handoff_enabled = enabled;
        self
    }

    /// `clientVersionConfig`.
    pub fn client_version_config(mut self, version: ClientVersionConfig) -> Self {
        self.client_version_config = version;
        self
    }

    /// `shutdownGraceMillis`.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The configuration, after the daemon's checks: an application and a stream name that are
    /// not blank (`Validate.notBlank`), a stream ARN of the form
    /// `arn:aws…:kinesis:REGION:ACCOUNT:stream/NAME` (`StreamIdentifier.validateArn`), `maxRecords`
    /// within 1 to 10 000, endpoints with a scheme, and table names and a worker id that are
    /// not empty.
    pub fn build(self) -> Result<NativeConfig, ConfigError> {
        let invalid = |key: &'static str, reason: String| ConfigError::Invalid {
            key,
            line: 0,
            reason,
        };
        if is_blank(&self.application_name) {
            return Err(ConfigError::Missing("applicationName"));
        }
        let stream_name = match &self.stream_arn {
            Some(arn) => stream_name_of_arn(arn).ok_or_else(|| {
                invalid(
                    "streamArn",
                    format!(
                        "{arn:?} is not a stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)"
                    ),
                )
            })?,
            None => self.stream_name.clone(),
        };
        if is_blank(&stream_name) {
            return Err(ConfigError::Missing("streamName (or streamArn)"));
        }
        if !(1..=MAX_RECORDS).contains(&self.max_records) {
            return Err(invalid(
                "maxRecords",
                format!(
                    "{} is not within 1 to {MAX_RECORDS} (GetRecords' limit)",
                    self.max_records
                ),
            ));
        }
        for (key, url) in [
            ("kinesisEndpoint", &self.kinesis_endpoint),
            ("dynamoDBEndpoint", &self.dynamodb_endpoint),
        ] {
            if let Some(url) = url {
                let lower = url.to_ascii_lowercase();
                if !(lower.starts_with("http://") || lower.starts_with("https://"))
                    || url.contains(char::is_whitespace)
                {
                    return Err(invalid(
                        key,
                        format!("{url:?} is not an http:// or https:// URL"),
                    ));
                }
            }
        }
        let lease_assignment_interval = self
            .lease_assignment_interval
            .unwrap_or(self.failover_time.saturating_mul(2));
        for (key, time) in [
            ("failoverTimeMillis", self.failover_time),
            ("leaseAssignmentIntervalMillis", lease_assignment_interval),
            ("shardSyncIntervalMillis", self.shard_sync_interval),
            (
                "parentShardPollIntervalMillis",
                self.parent_shard_poll_interval,
            ),
            (
                "workerMetricsReporterFreqInMillis",
                self.worker_metrics_reporter_freq,
            ),
            ("leaseCleanupIntervalMillis", self.lease_cleanup_interval),
            (
                "completedLeaseCleanupIntervalMillis",
                self.completed_lease_cleanup_interval,
            ),
            (
                "garbageLeaseCleanupIntervalMillis",
                self.garbage_lease_cleanup_interval,
            ),
        ] {
            if time.is_zero() {
                return Err(invalid(key, "must be more than zero".to_string()));
            }
        }
        let app = &self.application_name;
        let table = |name: Option<String>, default: String, key: &'static str| match name {
            Some(name) if name.is_empty() => {
                Err(invalid(key, "a table name cannot be empty".into()))
            }
            Some(name) => Ok(name),
            None => Ok(default),
        };
        // ConfigsBuilder.tableName(): an empty tableName means the application's.
        let table_name = match self.table_name {
            Some(name) if !name.is_empty() => name,
            _ => app.clone(),
        };
        let coordinator_state_table_name = table(
            self.coordinator_state_table_name,
            format!("{app}-CoordinatorState"),
            "coordinatorStateTableName",
        )?;
        let worker_metrics_table_name = table(
            self.worker_metrics_table_name,
            format!("{app}-WorkerMetricStats"),
            "workerMetricsTableName",
        )?;
        let worker_id = match self.worker_id {
            Some(id) if id.is_empty() => {
                return Err(invalid("workerId", "a worker id cannot be empty".into()));
            }
            Some(id) => id,
            None => random_uuid(),
        };
        Ok(NativeConfig {
            application_name: self.application_name,
            stream_name,
            stream_arn: self.stream_arn,
            table_name,
            coordinator_state_table_name,
            worker_metrics_table_name,
            region: self.region,
            kinesis_endpoint: self.kinesis_endpoint,
            dynamodb_endpoint: self.dynamodb_endpoint,
            initial_position: self.initial_position,
            worker_id,
            failover_time: self.failover_time,
            lease_assignment_interval,
            shard_sync_interval: self.shard_sync_interval,
            parent_shard_poll_interval: self.parent_shard_poll_interval,
            cleanup_leases_upon_shard_completion: self.cleanup_leases_upon_shard_completion,
            lease_cleanup_interval: self.lease_cleanup_interval,
            completed_lease_cleanup_interval: self.completed_lease_cleanup_interval,
            garbage_lease_cleanup_interval: self.garbage_lease_cleanup_interval,
            max_records: self.max_records,
            idle_time_between_reads: self.idle_time_between_reads.max(MIN_IDLE_TIME),
            call_process_records_even_for_empty_record_list: self
                .call_process_records_even_for_empty_record_list,
            worker_metrics_reporter_freq: self.worker_metrics_reporter_freq,
            graceful_lease_handoff_timeout: self.graceful_lease_handoff_timeout,
            graceful_lease_handoff_enabled: self.graceful_lease_handoff_enabled,
            client_version_config: self.client_version_config,
            shutdown_grace: self.shutdown_grace,
        })
    }
}

/// Java's `StringUtils.isBlank`: empty or whitespace only.
fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

/// The stream name in a stream ARN, if it matches `StreamIdentifier.STREAM_ARN_PATTERN`:
/// `arn:aws[^:]*:kinesis:[-a-z0-9]+:[0-9]{12}:stream/.+`.
pub(super) fn stream_name_of_arn(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (scheme, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let name = resource.strip_prefix("stream/")?;
    (scheme == "arn"
        && partition.starts_with("aws")
        && service == "kinesis"
        && region_ok
        && account_ok
        && !name.is_empty())
    .then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_arns() {
        let name = |arn: &str| stream_name_of_arn(arn);
        assert_eq!(
            name("arn:aws:kinesis:us-east-1:123456789012:stream/orders"),
            Some("orders".into())
        );
        assert_eq!(
            name("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/a:b"),
            Some("a:b".into())
        );
        for bad in [
            "orders",
            "arn:aws:kinesis::123456789012:stream/orders",
            "arn:aws:kinesis:us-east-1:1234:stream/orders",
            "arn:aws:sqs:us-east-1:123456789012:stream/orders",
            "arn:aws:kinesis:us-east-1:123456789012:stream/",
            "arn:aws:kinesis:US-EAST-1:123456789012:stream/orders",
            "arn:gcp:kinesis:us-east-1:123456789012:stream/orders",
        ] {
            assert_eq!(name(bad), None, "{bad}");
        }
    }

    #[test]
    fn defaults_and_checks() {
        let config = NativeConfig::builder("app", "s")
            .failover_time(Duration::from_millis(3000))
            .table_name("")
            .build()
            .unwrap();
        assert_eq!(config.lease_assignment_interval(), Duration::from_secs(6));
        assert_eq!(config.table_name(), "app");
        assert_eq!(config.shutdown_grace(), Duration::ZERO);
        assert!(config.cleanup_leases_upon_shard_completion());
        assert!(config.graceful_lease_handoff_enabled());
        assert_eq!(
            config.graceful_lease_handoff_timeout(),
            Duration::from_secs(30)
        );
        assert_eq!(
            config.worker_metrics_reporter_freq(),
            Duration::from_secs(30)
        );
        let err = |b: NativeConfigBuilder| b.build().unwrap_err().to_string();
        assert_eq!(
            err(NativeConfig::builder(" ", "s")),
            "applicationName is missing"
        );
        assert_eq!(
            err(NativeConfig::builder("a", "")),
            "streamName (or streamArn) is missing"
        );
        assert!(err(NativeConfig::builder("a", "s").max_records(0)).contains("maxRecords"));
        assert!(
            err(NativeConfig::builder("a", "s").failover_time(Duration::ZERO))
                .contains("failoverTimeMillis")
        );
        assert!(
            err(NativeConfig::builder("a", "s").kinesis_endpoint("localhost:4567"))
                .contains("kinesisEndpoint")
        );
        assert!(err(NativeConfig::builder("a", "s").worker_id("")).contains("workerId"));
        assert!(
            err(NativeConfig::builder("a", "s").coordinator_state_table_name(""))
                .contains("coordinatorStateTableName")
        );
    }
}
