//! The keys the KCL 3.1.3 MultiLangDaemon reads, each with the Java type that decides how its
//! values apply ([`KEYS`]), and the lookups over them: exact name ([`lookup`]), and "did you
//! mean" ([`suggestion`], [`unknown_key_message`]).
//!
//! Sources (amazon-kinesis-client v3.1.3, `amazon-kinesis-client-multilang`):
//! `multilang/config/MultiLangDaemonConfiguration.java` and its beans (`PollingConfigBean`,
//! `FanoutConfigBean`, `GracefulLeaseHandoffConfigBean`, `WorkerUtilizationAwareAssignmentConfigBean`,
//! `WorkerMetricStatsTableConfigBean`, `CoordinatorStateTableConfigBean`): one setter per key,
//! applied by commons-beanutils; `multilang/MultiLangDaemonConfig.java` reads `executableName`,
//! `processingLanguage` and `maxActiveThreads` itself.

use crate::removed::Replacement;

/// How the daemon reads a key's value: the Java type of its field, which decides which values
/// apply (see [`read`](crate::read) for the exact rules).
///
/// ```
/// use kcl_properties::{Kind, lookup};
/// assert_eq!(lookup("maxRecords").unwrap().kind, Kind::Int);
/// assert_eq!(lookup("isGracefulLeaseHandoffEnabled").unwrap().kind, Kind::BoxedBool);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Text,
    /// A Java `int` field: `0` (and any malformed number) is ignored.
    Int,
    /// A Java `long` field: `0` (and any malformed number) is ignored.
    Long,
    /// A Java `double` field: `0` is ignored.
    Double,
    /// A Java `boolean` field: `false` is ignored.
    Bool,
    /// A Java `Integer`: every value applies.
    BoxedInt,
    /// A Java `Long`: every value applies.
    BoxedLong,
    /// A Java `Boolean`: `false` applies.
    BoxedBool,
    /// One of these names (case-insensitive).
    Enum(&'static [&'static str]),
    /// An AWS region name.
    Region,
    /// An endpoint URL.
    Url,
    /// An ISO-8601 duration such as `PT12H`.
    Duration,
    /// Epoch seconds that make the initial position `AT_TIMESTAMP` (a converter of its own:
    /// every number applies, `0` included; anything else stops the daemon).
    EpochSeconds,
    /// An AWS SDK v2 credentials provider (chain).
    Credentials,
    /// Read, but has no effect.
    NoEffect,
}

/// Which retrieval mode a key belongs to.
///
/// ```
/// use kcl_properties::{Group, lookup};
/// assert_eq!(lookup("maxRecords").unwrap().group, Group::Polling);
/// assert_eq!(lookup("consumerArn").unwrap().group, Group::Fanout);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Read in every retrieval mode.
    Any,
    /// Read only when the daemon polls.
    Polling,
    /// Read only with enhanced fan-out.
    Fanout,
}

/// One key of the daemon.
///
/// ```
/// let key = kcl_properties::lookup("failoverTimeMillis").unwrap();
/// assert_eq!(key.name, "failoverTimeMillis");
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Key {
    /// The exact (case-sensitive) name.
    pub name: &'static str,
    /// How the daemon reads its value.
    pub kind: Kind,
    /// The retrieval mode it belongs to.
    pub group: Group,
}

const fn key(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        group: Group::Any,
    }
}

const fn polling(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        group: Group::Polling,
    }
}

const fn fanout(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        group: Group::Fanout,
    }
}

const BILLING: Kind = Kind::Enum(&["PAY_PER_REQUEST", "PROVISIONED"]);

/// Every key the KCL 3.1.3 MultiLangDaemon reads (setters of its configuration beans, plus the
/// three the daemon reads itself), with the Java type that decides how values apply.
///
/// ```
/// assert!(kcl_properties::KEYS.iter().any(|k| k.name == "streamName"));
/// ```
pub const KEYS: &[Key] = &[
    key("executableName", Kind::Text),
    key("processingLanguage", Kind::NoEffect),
    key("maxActiveThreads", Kind::BoxedInt),
    key("applicationName", Kind::Text),
    key("streamName", Kind::Text),
    key("streamArn", Kind::Text),
    key("tableName", Kind::Text),
    key("workerId", Kind::Text),
    key("workerIdentifier", Kind::Text),
    key("AwsCredentialsProvider", Kind::Credentials),
    key("AwsCredentialsProviderDynamoDB", Kind::Credentials),
    key("AwsCredentialsProviderCloudWatch", Kind::Credentials),
    key("regionName", Kind::Region),
    key("kinesisEndpoint", Kind::Url),
    key("dynamoDBEndpoint", Kind::Url),
    key(
        "initialPositionInStream",
        Kind::Enum(&["TRIM_HORIZON", "LATEST"]),
    ),
    key("initialPositionInStreamExtended", Kind::EpochSeconds),
    key(
        "retrievalMode",
        Kind::Enum(&["POLLING", "FANOUT", "DEFAULT"]),
    ),
    key("failoverTimeMillis", Kind::Long),
    key("leaseAssignmentIntervalMillis", Kind::Long),
    key("enablePriorityLeaseAssignment", Kind::BoxedBool),
    key("leaseTableDeletionProtectionEnabled", Kind::BoxedBool),
    key("leaseTablePitrEnabled", Kind::BoxedBool),
    key("shardSyncIntervalMillis", Kind::Long),
    key("cleanupLeasesUponShardCompletion", Kind::Bool),
    key("ignoreUnexpectedChildShards", Kind::Bool),
    key("maxLeasesForWorker", Kind::Int),
    key("maxLeasesToStealAtOneTime", Kind::Int),
    key("initialLeaseTableReadCapacity", Kind::Int),
    key("initialLeaseTableWriteCapacity", Kind::Int),
    key("maxLeaseRenewalThreads", Kind::Int),
    key("listShardsBackoffTimeInMillis", Kind::Long),
    key("maxListShardsRetryAttempts", Kind::Int),
    key("callProcessRecordsEvenForEmptyRecordList", Kind::Bool),
    key("parentShardPollIntervalMillis", Kind::Long),
    key("shardPrioritization", Kind::Text),
    key(
        "skipShardSyncAtWorkerInitializationIfLeasesExist",
        Kind::Bool,
    ),
    key("schedulerInitializationBackoffTimeMillis", Kind::Long),
    // `CoordinatorConfig.ClientVersionConfig` of 3.1.3 has these two; `..._PHASE1` came with
    // 3.5.0's single-table migration and stops a 3.1.3 daemon.
    key(
        "clientVersionConfig",
        Kind::Enum(&[
            "CLIENT_VERSION_CONFIG_3X",
            "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X",
        ]),
    ),
    key("taskBackoffTimeMillis", Kind::Long),
    key("metricsBufferTimeMillis", Kind::Long),
    key("metricsMaxQueueSize", Kind::Int),
    key("metricsLevel", Kind::Enum(&["NONE", "SUMMARY", "DETAILED"])),
    key("metricsEnabledDimensions", Kind::Text),
    key("logWarningForTaskAfterMillis", Kind::BoxedLong),
    key("validateSequenceNumberBeforeCheckpointing", Kind::NoEffect),
    key("shutdownGraceMillis", Kind::Long),
    key("timeoutInSeconds", Kind::BoxedInt),
    polling("maxRecords", Kind::Int),
    polling("idleTimeBetweenReadsInMillis", Kind::Long),
    polling("millisBehindLatestThresholdForReducedTps", Kind::Long),
    polling("retryGetRecordsInSeconds", Kind::BoxedInt),
    polling("maxGetRecordsThreadPool", Kind::BoxedInt),
    fanout("consumerArn", Kind::Text),
    fanout("consumerName", Kind::Text),
    fanout("maxDescribeStreamSummaryRetries", Kind::Int),
    fanout("maxDescribeStreamConsumerRetries", Kind::Int),
    fanout("registerStreamConsumerRetries", Kind::Int),
    fanout("retryBackoffMillis", Kind::Long),
    key("gracefulLeaseHandoffTimeoutMillis", Kind::BoxedLong),
    key("isGracefulLeaseHandoffEnabled", Kind::BoxedBool),
    key("inMemoryWorkerMetricsCaptureFrequencyMillis", Kind::Long),
    key("workerMetricsReporterFreqInMillis", Kind::Long),
    key("noOfPersistedMetricsPerWorkerMetrics", Kind::Int),
    key("disableWorkerMetrics", Kind::BoxedBool),
    key("maxThroughputPerHostKBps", Kind::Double),
    key("dampeningPercentage", Kind::Int),
    key("reBalanceThresholdPercentage", Kind::Int),
    key("allowThroughputOvershoot", Kind::BoxedBool),
    key("varianceBalancingFrequency", Kind::Int),
    key("workerMetricsEMAAlpha", Kind::Double),
    key("staleWorkerMetricsEntryCleanupDuration", Kind::Duration),
    key("workerMetricsTableName", Kind::Text),
    key("workerMetricsBillingMode", BILLING),
    key("workerMetricsReadCapacity", Kind::Long),
    key("workerMetricsWriteCapacity", Kind::Long),
    key("workerMetricsPointInTimeRecoveryEnabled", Kind::BoxedBool),
    key("workerMetricsDeletionProtectionEnabled", Kind::BoxedBool),
    key("workerMetricsTags", Kind::Text),
    key("coordinatorStateTableName", Kind::Text),
    key("coordinatorStateBillingMode", BILLING),
    key("coordinatorStateReadCapacity", Kind::Long),
    key("coordinatorStateWriteCapacity", Kind::Long),
    key(
        "coordinatorStatePointInTimeRecoveryEnabled",
        Kind::BoxedBool,
    ),
    key("coordinatorStateDeletionProtectionEnabled", Kind::BoxedBool),
    key("coordinatorStateTags", Kind::Text),
];

/// The key named `name`: exact, except for the credentials keys, whose case does not matter
/// (the daemon's `KinesisClientLibConfigurator.processKey`).
///
/// ```
/// use kcl_properties::lookup;
/// assert_eq!(lookup("AWSCREDENTIALSPROVIDER").unwrap().name, "AwsCredentialsProvider");
/// assert!(lookup("streamname").is_none());
/// ```
pub fn lookup(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name).or_else(|| {
        // Only the credentials keys are matched without regard to case.
        name.to_ascii_lowercase()
            .starts_with("awscredentialsprovider")
            .then(|| KEYS.iter().find(|k| k.name.eq_ignore_ascii_case(name)))
            .flatten()
    })
}

/// A key the daemon knows that looks like `name` (case or a small typo), for "did you mean".
///
/// ```
/// assert_eq!(kcl_properties::suggestion("streamname"), Some("streamName"));
/// assert_eq!(kcl_properties::suggestion("completelyDifferentThing"), None);
/// ```
pub fn suggestion(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    KEYS.iter()
        .map(|k| (k.name, edit_distance(&lower, &k.name.to_ascii_lowercase())))
        .filter(|(_, distance)| *distance <= 3.max(name.len() / 6))
        .min_by_key(|(_, distance)| *distance)
        .map(|(name, _)| name)
}

/// What to say about a key the daemon does not know: it ignores it silently, and "did you mean"
/// a known key that looks like it; for a KCL 1.x key that KCL 3.x dropped
/// ([`removed_key`](crate::removed_key)), its 3.x replacement instead. The `kcl properties
/// --check` warning and the native engine's use these words.
///
/// ```
/// assert_eq!(
///     kcl_properties::unknown_key_message("StreamName"),
///     "unknown key \"StreamName\": the daemon ignores it silently (keys are case-sensitive); did you mean streamName?"
/// );
/// assert_eq!(
///     kcl_properties::unknown_key_message("skipShardSyncAtStartupIfLeasesExist"),
///     "unknown key \"skipShardSyncAtStartupIfLeasesExist\": a KCL 1.x key that KCL 3.x no longer reads, so the daemon ignores it silently; use skipShardSyncAtWorkerInitializationIfLeasesExist instead"
/// );
/// ```
pub fn unknown_key_message(name: &str) -> String {
    if let Some(removed) = crate::removed::removed_key(name) {
        let instead = match removed.replacement {
            Replacement::Key(key) => format!("use {key} instead"),
            Replacement::Nothing(why) => format!("no key replaces it ({why})"),
        };
        let also = if removed.ignored_by_1x {
            " (the KCL 1.x daemon could not read it either)"
        } else {
            ""
        };
        return format!(
            "unknown key {name:?}: a KCL 1.x key that KCL 3.x no longer reads, so the daemon ignores it silently{also}; {instead}"
        );
    }
    let hint = match suggestion(name) {
        Some(known) => format!("; did you mean {known}?"),
        None => String::new(),
    };
    format!("unknown key {name:?}: the daemon ignores it silently (keys are case-sensitive){hint}")
}

/// The Levenshtein distance of `a` and `b`, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::is_plain_key;

    #[test]
    fn credentials_keys_ignore_case_only() {
        assert!(lookup("AWSCredentialsProvider").is_some());
        assert!(lookup("streamname").is_none());
        assert_eq!(suggestion("streamname"), Some("streamName"));
        assert_eq!(
            suggestion("idleTimeBetweenReadsInMilis"),
            Some("idleTimeBetweenReadsInMillis")
        );
        assert_eq!(suggestion("completelyDifferentThing"), None);
    }

    #[test]
    fn every_key_is_plain() {
        assert!(KEYS.iter().all(|k| is_plain_key(k.name)));
    }
}
