//! What a file written for KCL 1.x or 2.x (amazon_kclpy 1.x/2.x) holds that the KCL 3.1.3
//! daemon no longer reads: the keys of KCL 1.x that KCL 3.x dropped ([`REMOVED_KEYS`],
//! [`removed_key`]) and the AWS SDK for Java **v1** credentials providers that the 3.x
//! `AwsCredentialsProvider` keys no longer resolve ([`SDK_V1_PROVIDERS`],
//! [`sdk_v1_provider`]). Data only: [`unknown_key_message`](crate::unknown_key_message) words
//! the removed keys (so `kcl properties --check` and the native engine say the same), and
//! `kcl properties --check` reports the providers.
//!
//! Sources (docs/research/operations-kcl-3.1.3.md §3.3, §5): the keys are the
//! `KinesisClientLibConfiguration.with*` setters of amazon-kinesis-client v1.15.3 (which its
//! `KinesisClientLibConfigurator` applied by name) that are not in [`KEYS`](crate::KEYS); KCL
//! 2.6.1's multilang keys are all still in 3.1.3. The providers: KCL 2.7.0 moved multilang to
//! SDK v2 (`AwsCredentialsProviderPropertyValueDecoder` tries `<name>` under
//! `software.amazon.kinesis.multilang.auth.` and `software.amazon.awssdk.auth.credentials.`,
//! then as a class name, and keeps only classes implementing the v2 `AwsCredentialsProvider`);
//! a name that resolves to nothing is left out of the chain, and with none left the chain is
//! empty and the first AWS call fails. The v2 names below are the classes of the SDK v2 2.33.0
//! `auth` jar and the 3.1.3 multilang jar.
//!
//! ```
//! use kcl_properties::{Replacement, removed_key, sdk_v1_provider};
//! let key = removed_key("skipShardSyncAtStartupIfLeasesExist").unwrap();
//! assert_eq!(key.replacement, Replacement::Key("skipShardSyncAtWorkerInitializationIfLeasesExist"));
//! assert!(removed_key("maxRecords").is_none());
//! assert_eq!(sdk_v1_provider("DefaultAWSCredentialsProviderChain"), Some("DefaultCredentialsProvider"));
//! assert_eq!(sdk_v1_provider("DefaultCredentialsProvider"), None);
//! ```

/// What takes the place of a key KCL 3.x dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replacement {
    /// This KCL 3.1.3 key (one of [`KEYS`](crate::KEYS)) does the same job.
    Key(&'static str),
    /// Nothing in the 3.x properties file does; the words say what happens instead.
    Nothing(&'static str),
}

/// A key of the KCL 1.x daemon that the KCL 3.1.3 daemon does not read (it ignores it
/// silently, as every unknown key).
#[derive(Debug, PartialEq, Eq)]
pub struct RemovedKey {
    /// The exact (case-sensitive) name.
    pub name: &'static str,
    /// What to use in KCL 3.x.
    pub replacement: Replacement,
    /// The KCL 1.x daemon ignored it too: its setter takes a type its configurator had no
    /// decoder for (`BillingMode`, `ShardPrioritization`, `ShardSyncStrategyType`), or its
    /// decoder refused every value (`ClientConfiguration`).
    pub ignored_by_1x: bool,
}

const fn renamed(name: &'static str, key: &'static str) -> RemovedKey {
    RemovedKey {
        name,
        replacement: Replacement::Key(key),
        ignored_by_1x: false,
    }
}

const fn dropped(name: &'static str, instead: &'static str) -> RemovedKey {
    RemovedKey {
        name,
        replacement: Replacement::Nothing(instead),
        ignored_by_1x: false,
    }
}

const fn never_read(name: &'static str, instead: &'static str) -> RemovedKey {
    RemovedKey {
        name,
        replacement: Replacement::Nothing(instead),
        ignored_by_1x: true,
    }
}

const PREFETCH: &str = "KCL 3.x always prefetches and sizes its cache itself";
const CLIENT: &str = "KCL 3.x builds its SDK v2 clients itself";

/// The keys of the KCL 1.x (v1.15.3) daemon that KCL 3.1.3 no longer has, each with its 3.x
/// replacement.
///
/// ```
/// use kcl_properties::{KEYS, REMOVED_KEYS};
/// assert!(REMOVED_KEYS.iter().all(|r| KEYS.iter().all(|k| k.name != r.name)));
/// ```
pub const REMOVED_KEYS: &[RemovedKey] = &[
    renamed(
        "skipShardSyncAtStartupIfLeasesExist",
        "skipShardSyncAtWorkerInitializationIfLeasesExist",
    ),
    renamed(
        "timestampAtInitialPositionInStream",
        "initialPositionInStreamExtended",
    ),
    renamed("idleMillisBetweenCalls", "idleTimeBetweenReadsInMillis"),
    dropped(
        "userAgent",
        "KCL 3.x sets its own user agent; processingLanguage is read but has no effect either",
    ),
    dropped("maxCacheByteSize", PREFETCH),
    dropped("maxRecordsCount", PREFETCH),
    dropped("maxPendingProcessRecordsInput", PREFETCH),
    dropped(
        "dataFetchingStrategy",
        "KCL 3.x polls with its prefetching fetcher, or uses enhanced fan-out (retrievalMode)",
    ),
    dropped(
        "maxInitializationAttempts",
        "the 3.x scheduler retries its initialization with its own limit (schedulerInitializationBackoffTimeMillis sets the wait)",
    ),
    dropped(
        "leaseCleanupIntervalMillis",
        "KCL 3.x cleans up finished leases on its own schedule",
    ),
    dropped(
        "completedLeaseCleanupThresholdMillis",
        "KCL 3.x cleans up finished leases on its own schedule",
    ),
    dropped(
        "garbageLeaseCleanupThresholdMillis",
        "KCL 3.x cleans up finished leases on its own schedule",
    ),
    dropped(
        "leasesRecoveryAuditorExecutionFrequencyMillis",
        "KCL 3.x audits the lease table on its own schedule",
    ),
    dropped(
        "leasesRecoveryAuditorInconsistencyConfidenceThreshold",
        "KCL 3.x audits the lease table on its own schedule",
    ),
    never_read(
        "billingMode",
        "KCL 3.x creates the lease table PAY_PER_REQUEST (on demand); workerMetricsBillingMode and coordinatorStateBillingMode set its two new tables",
    ),
    never_read(
        "shardSyncStrategyType",
        "KCL 3.x syncs shards with its leader and periodic auditor (shardSyncIntervalMillis)",
    ),
    never_read(
        "shardPrioritizationStrategy",
        "shard prioritization is a Java object, which no value in the properties file builds",
    ),
    never_read("kinesisClientConfig", CLIENT),
    never_read("dynamoDBClientConfig", CLIENT),
    never_read("cloudWatchClientConfig", CLIENT),
    never_read("commonClientConfig", CLIENT),
];

/// The KCL 1.x key `name` (exact) that KCL 3.x dropped, if it is one.
///
/// ```
/// assert!(kcl_properties::removed_key("billingMode").is_some());
/// assert!(kcl_properties::removed_key("BillingMode").is_none());
/// ```
pub fn removed_key(name: &str) -> Option<&'static RemovedKey> {
    REMOVED_KEYS.iter().find(|r| r.name == name)
}

/// An AWS SDK for Java v1 credentials provider (or KCL 2.x's v1-based one) with the value that
/// does its job in a KCL 3.x `AwsCredentialsProvider` key.
#[derive(Debug, PartialEq, Eq)]
pub struct SdkV1Provider {
    /// The v1 class's short name, as 1.x/2.x files wrote it.
    pub name: &'static str,
    /// The KCL 3.x value (SDK v2) to write instead.
    pub replacement: &'static str,
}

const fn v1(name: &'static str, replacement: &'static str) -> SdkV1Provider {
    SdkV1Provider { name, replacement }
}

const ASSUME_ROLE: &str = "KclStsAssumeRoleCredentialsProvider|<roleArn>|<sessionName>";

/// SDK v1 providers whose short name names no class for KCL 3.x, with their v2 replacement.
/// Not listed: the v1 names that SDK v2 kept (`EnvironmentVariableCredentialsProvider`,
/// `ProfileCredentialsProvider`, `InstanceProfileCredentialsProvider`,
/// `ContainerCredentialsProvider`): as short names they resolve to the v2 class, which does the
/// same job. As `com.amazonaws.…` class names they do not resolve; [`sdk_v1_provider`] says so.
pub const SDK_V1_PROVIDERS: &[SdkV1Provider] = &[
    v1(
        "DefaultAWSCredentialsProviderChain",
        "DefaultCredentialsProvider",
    ),
    v1(
        "SystemPropertiesCredentialsProvider",
        "SystemPropertyCredentialsProvider",
    ),
    v1("STSAssumeRoleSessionCredentialsProvider", ASSUME_ROLE),
    v1("KclSTSAssumeRoleSessionCredentialsProvider", ASSUME_ROLE),
    v1(
        "STSAssumeRoleWithWebIdentitySessionCredentialsProvider",
        "WebIdentityTokenFileCredentialsProvider",
    ),
    v1(
        "WebIdentityTokenCredentialsProvider",
        "WebIdentityTokenFileCredentialsProvider",
    ),
    v1(
        "EC2ContainerCredentialsProviderWrapper",
        "ContainerCredentialsProvider,InstanceProfileCredentialsProvider",
    ),
    v1(
        "ClasspathPropertiesFileCredentialsProvider",
        "ProfileCredentialsProvider|<profile> (move the keys into ~/.aws/credentials) or DefaultCredentialsProvider",
    ),
    v1(
        "PropertiesFileCredentialsProvider",
        "ProfileCredentialsProvider|<profile> (move the keys into ~/.aws/credentials) or DefaultCredentialsProvider",
    ),
    v1(
        "AWSStaticCredentialsProvider",
        "EnvironmentVariableCredentialsProvider or ProfileCredentialsProvider|<profile>",
    ),
];

/// Short names of SDK v1 providers that SDK v2 kept for the same job.
const KEPT_IN_V2: &[&str] = &[
    "EnvironmentVariableCredentialsProvider",
    "ProfileCredentialsProvider",
    "InstanceProfileCredentialsProvider",
    "ContainerCredentialsProvider",
    "ProcessCredentialsProvider",
];

/// The SDK v2 replacement when `class` (one provider of an `AwsCredentialsProvider` value,
/// without its `|` arguments) names an SDK v1 provider that KCL 3.x cannot build: a short name
/// of [`SDK_V1_PROVIDERS`], any `com.amazonaws.…` class, or KCL 2.x's
/// `software.amazon.kinesis.multilang.auth.KclSTSAssumeRoleSessionCredentialsProvider`.
///
/// ```
/// use kcl_properties::sdk_v1_provider;
/// assert_eq!(
///     sdk_v1_provider("com.amazonaws.auth.profile.ProfileCredentialsProvider"),
///     Some("ProfileCredentialsProvider")
/// );
/// assert_eq!(sdk_v1_provider("InstanceProfileCredentialsProvider"), None); // a v2 name too
/// assert_eq!(sdk_v1_provider("org.example.MyProvider"), None);
/// ```
pub fn sdk_v1_provider(class: &str) -> Option<&'static str> {
    let class = class.trim();
    let short = class.rsplit('.').next().unwrap_or(class);
    let listed = SDK_V1_PROVIDERS
        .iter()
        .find(|p| p.name == short)
        .map(|p| p.replacement);
    let qualified = class.contains('.');
    if qualified
        && !class.starts_with("com.amazonaws.")
        && !class.starts_with("software.amazon.kinesis.multilang.auth.")
    {
        // Some other package's class (the application's own provider): not ours to judge.
        return None;
    }
    if !qualified || class.starts_with("software.amazon.kinesis.multilang.auth.") {
        return listed;
    }
    // A `com.amazonaws.…` class: never a v2 `AwsCredentialsProvider`.
    Some(
        listed
            .or_else(|| KEPT_IN_V2.iter().copied().find(|kept| *kept == short))
            .unwrap_or("DefaultCredentialsProvider"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KEYS, lookup};

    #[test]
    fn removed_keys_are_not_keys_and_replacements_are() {
        for removed in REMOVED_KEYS {
            assert!(lookup(removed.name).is_none(), "{} is a key", removed.name);
            if let Replacement::Key(key) = removed.replacement {
                assert!(
                    KEYS.iter().any(|k| k.name == key),
                    "{key} replaces {} but is not a key",
                    removed.name
                );
            }
        }
    }

    #[test]
    fn v1_providers_and_their_replacements() {
        assert_eq!(
            sdk_v1_provider("STSAssumeRoleSessionCredentialsProvider"),
            Some(ASSUME_ROLE)
        );
        assert_eq!(
            sdk_v1_provider("com.amazonaws.auth.DefaultAWSCredentialsProviderChain"),
            Some("DefaultCredentialsProvider")
        );
        assert_eq!(
            sdk_v1_provider("com.amazonaws.auth.AnonymousAWSCredentialsProvider"),
            Some("DefaultCredentialsProvider")
        );
        assert_eq!(
            sdk_v1_provider(
                "software.amazon.kinesis.multilang.auth.KclSTSAssumeRoleSessionCredentialsProvider"
            ),
            Some(ASSUME_ROLE)
        );
        for v2 in [
            "DefaultCredentialsProvider",
            "EnvironmentVariableCredentialsProvider",
            "ProfileCredentialsProvider",
            "InstanceProfileCredentialsProvider",
            "ContainerCredentialsProvider",
            "KclStsAssumeRoleCredentialsProvider",
            "StsAssumeRoleCredentialsProvider",
            "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
            "org.example.DefaultAWSCredentialsProviderChain",
        ] {
            assert_eq!(sdk_v1_provider(v2), None, "{v2}");
        }
        // Every replacement names v2 classes only.
        for provider in SDK_V1_PROVIDERS {
            for class in provider.replacement.split([',', ' ']) {
                let class = class.split('|').next().unwrap();
                if class.ends_with("Provider") {
                    assert_eq!(sdk_v1_provider(class), None, "{class}");
                }
            }
        }
    }
}
