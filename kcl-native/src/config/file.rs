//! [`NativeConfig::from_properties`]: the MultiLangDaemon's properties file, with the meaning
//! the daemon gives it (values typed by `kcl_properties`), and a [`Warning`] for every key the
//! native engine reads differently or not at all.

use std::cmp::Reverse;
use std::time::Duration;

use kcl_properties::{
    Entry, Group, Ignored, KEYS, Kind, Properties, Reading, Value, unknown_key_message,
};

use super::builder::{MAX_RECORDS, MIN_IDLE_TIME};
use super::{ClientVersionConfig, ConfigError, InitialPosition, Level, NativeConfig, Warning};

/// The keys [`NativeConfig`] holds: the engine does what the daemon does with them.
const HONOURED: &[&str] = &[
    "applicationName",
    "streamName",
    "streamArn",
    "tableName",
    "coordinatorStateTableName",
    "workerMetricsTableName",
    "regionName",
    "kinesisEndpoint",
    "dynamoDBEndpoint",
    "initialPositionInStream",
    "initialPositionInStreamExtended",
    "workerId",
    "workerIdentifier",
    "failoverTimeMillis",
    "leaseAssignmentIntervalMillis",
    "shardSyncIntervalMillis",
    "parentShardPollIntervalMillis",
    "cleanupLeasesUponShardCompletion",
    "maxRecords",
    "idleTimeBetweenReadsInMillis",
    "callProcessRecordsEvenForEmptyRecordList",
    "workerMetricsReporterFreqInMillis",
    "gracefulLeaseHandoffTimeoutMillis",
    "isGracefulLeaseHandoffEnabled",
    "clientVersionConfig",
    "shutdownGraceMillis",
    "retrievalMode",
];

/// Keys that only mean something to the daemon, with why (a note, never an error: the same
/// file serves both engines).
const DAEMON_ONLY: &[(&str, &str)] = &[
    (
        "executableName",
        "the native engine runs the record processor in its own process: there is no child program",
    ),
    (
        "processingLanguage",
        "it names the child's language for the daemon's user agent (and has no effect there either)",
    ),
    (
        "maxActiveThreads",
        "it sizes the daemon's thread pool for its children's pipes",
    ),
    (
        "timeoutInSeconds",
        "it bounds how long the daemon waits for a child's answer; the native engine has no child",
    ),
];

/// Metrics keys: the native engine publishes no CloudWatch metrics yet.
const METRICS: &[&str] = &[
    "metricsLevel",
    "metricsBufferTimeMillis",
    "metricsMaxQueueSize",
    "metricsEnabledDimensions",
    "AwsCredentialsProviderCloudWatch",
];

/// The names a credentials key may hold for the native engine to do what the daemon does:
/// the AWS SDK's default chain.
const DEFAULT_CREDENTIALS: &[&str] = &[
    "DefaultCredentialsProvider",
    "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
];

impl NativeConfig {
    /// The configuration a properties file gives, read as the KCL 3.1.3 MultiLangDaemon reads
    /// it, with what the native engine does differently as [`Warning`]s (most serious first).
    ///
    /// Errors: a required key is missing (`applicationName`, `streamName` or `streamArn`), a
    /// value the daemon would refuse (a wrong enum name, ...), a value out of range
    /// (`maxRecords` above 10 000, a negative time), two keys that set the same thing
    /// differently, or enhanced fan-out (`retrievalMode = FANOUT`, or `DEFAULT` without a
    /// polling key): the native engine polls only.
    ///
    /// ```
    /// use kcl_native::config::{ConfigError, NativeConfig};
    /// use kcl_properties::Properties;
    ///
    /// let fanout = Properties::parse(b"applicationName = a\nstreamName = s\n");
    /// let error = NativeConfig::from_properties(&fanout).unwrap_err();
    /// assert!(matches!(error, ConfigError::Unsupported { key: "retrievalMode", .. }));
    ///
    /// let zero = Properties::parse(b"applicationName = a\nstreamName = s\nretrievalMode = POLLING\nfailoverTimeMillis = 0\n");
    /// let (config, warnings) = NativeConfig::from_properties(&zero).unwrap();
    /// assert_eq!(config.failover_time().as_millis(), 10_000);
    /// assert!(warnings[0].message.contains("has no effect"));
    /// ```
    pub fn from_properties(
        props: &Properties,
    ) -> Result<(NativeConfig, Vec<Warning>), ConfigError> {
        let mut file = File {
            props,
            warnings: Vec::new(),
        };
        let config = file.config()?;
        file.other_keys()?;
        let mut warnings = file.warnings;
        warnings.sort_by_key(|w| (Reverse(w.level), w.line.unwrap_or(usize::MAX)));
        Ok((config, warnings))
    }
}

/// A file being read, and what it said so far.
struct File<'a> {
    props: &'a Properties,
    warnings: Vec<Warning>,
}

impl File<'_> {
    fn warn(&mut self, level: Level, entry: Option<&Entry>, message: String) {
        self.warnings.push(Warning {
            level,
            key: entry.map(|e| e.key.clone()),
            line: entry.map(|e| e.line),
            message,
        });
    }

    fn line(&self, key: &str) -> usize {
        self.props.entry(key).map_or(0, |e| e.line)
    }

    fn invalid(&self, key: &'static str, reason: String) -> ConfigError {
        ConfigError::Invalid {
            key,
            line: self.line(key),
            reason,
        }
    }

    /// The value of `key` as the daemon applies it, with a warning when the daemon ignores it
    /// (the default stays) or coerces it.
    fn applied(&mut self, key: &'static str) -> Result<Option<Value<'_>>, ConfigError> {
        let props = self.props;
        let Some(reading) = props.read(key)? else {
            return Ok(None);
        };
        let entry = props.entry(key);
        let raw = entry.map_or("", |e| e.value.as_str());
        match reading {
            Reading::Applied(value) => Ok(Some(value)),
            Reading::Coerced(value) => {
                let what = match value {
                    Value::Bool(_) => "false",
                    _ => "0",
                };
                self.warn(
                    Level::Warning,
                    entry,
                    format!(
                        "{key} = {raw:?} cannot be read: the daemon applies {what} instead (a Java wrapper's fallback), and so does the native engine"
                    ),
                );
                Ok(Some(value))
            }
            Reading::Ignored(why) => {
                self.warn(Level::Warning, entry, ignored_message(key, raw, why));
                Ok(None)
            }
        }
    }

    fn text(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        Ok(self.props.text(key)?.map(str::to_string))
    }

    /// A whole number of milliseconds, when it applies; negative ones are refused.
    fn millis(&mut self, key: &'static str) -> Result<Option<Duration>, ConfigError> {
        match self.applied(key)? {
            Some(Value::Int(n)) => u64::try_from(n)
                .map(|n| Some(Duration::from_millis(n)))
                .map_err(|_| self.invalid(key, format!("{n} ms is negative"))),
            _ => Ok(None),
        }
    }

    fn switch(&mut self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        Ok(match self.applied(key)? {
            Some(Value::Bool(b)) => Some(b),
            _ => None,
        })
    }

    fn config(&mut self) -> Result<NativeConfig, ConfigError> {
        for entry in self.props.unknown() {
            let message = unknown_key_message(&entry.key);
            self.warn(Level::Warning, Some(entry), message);
        }
        let application = self.text("applicationName")?.unwrap_or_default();
        let stream = self.text("streamName")?;
        // KinesisClientLibConfigurator: a streamArn that is not blank replaces the name.
        let arn = self.text("streamArn")?.filter(|a| !a.trim().is_empty());
        if stream.is_some() && arn.is_some() {
            let entry = self.props.entry("streamName");
            self.warn(
                Level::Note,
                entry,
                "both streamName and streamArn are set: streamArn wins".into(),
            );
        }
        let mut builder = NativeConfig::builder(application, stream.unwrap_or_default());
        if let Some(arn) = arn {
            builder = builder.stream_arn(arn);
        }
        if let Some(name) = self.text("tableName")? {
            builder = builder.table_name(name);
        }
        if let Some(name) = self.text("coordinatorStateTableName")? {
            builder = builder.coordinator_state_table_name(name);
        }
        if let Some(name) = self.text("workerMetricsTableName")? {
            builder = builder.worker_metrics_table_name(name);
        }
        if let Some(region) = self.text("regionName")? {
            builder = builder.region(region);
        }
        if let Some(url) = self.text("kinesisEndpoint")? {
            builder = builder.kinesis_endpoint(url);
        }
        if let Some(url) = self.text("dynamoDBEndpoint")? {
            builder = builder.dynamodb_endpoint(url);
        }
        if let Some(position) = self.initial_position()? {
            builder = builder.initial_position(position);
        }
        if let Some(id) = self.worker_id()? {
            builder = builder.worker_id(id);
        }
        if let Some(time) = self.millis("failoverTimeMillis")? {
            builder = builder.failover_time(time);
        }
        if let Some(time) = self.millis("leaseAssignmentIntervalMillis")? {
            builder = builder.lease_assignment_interval(time);
        }
        if let Some(time) = self.millis("shardSyncIntervalMillis")? {
            builder = builder.shard_sync_interval(time);
        }
        if let Some(time) = self.millis("parentShardPollIntervalMillis")? {
            builder = builder.parent_shard_poll_interval(time);
        }
        if let Some(cleanup) = self.switch("cleanupLeasesUponShardCompletion")? {
            builder = builder.cleanup_leases_upon_shard_completion(cleanup);
        }
        if let Some(Value::Int(records)) = self.applied("maxRecords")? {
            let records = u32::try_from(records)
                .ok()
                .filter(|r| *r <= MAX_RECORDS)
                .ok_or_else(|| {
                    self.invalid(
                        "maxRecords",
                        format!("{records} is not within 1 to {MAX_RECORDS} (the daemon stops above {MAX_RECORDS}: PollingConfig.maxRecords)"),
                    )
                })?;
            builder = builder.max_records(records);
        }
        if let Some(time) = self.millis("idleTimeBetweenReadsInMillis")? {
            if time < MIN_IDLE_TIME {
                let entry = self.props.entry("idleTimeBetweenReadsInMillis");
                self.warn(
                    Level::Warning,
                    entry,
                    format!(
                        "idleTimeBetweenReadsInMillis = {} is below the least, {} ms: both engines wait {} ms (PollingConfig.MIN_IDLE_MILLIS_BETWEEN_READS)",
                        time.as_millis(),
                        MIN_IDLE_TIME.as_millis(),
                        MIN_IDLE_TIME.as_millis()
                    ),
                );
            }
            builder = builder.idle_time_between_reads(time);
        }
        if let Some(call) = self.switch("callProcessRecordsEvenForEmptyRecordList")? {
            builder = builder.call_process_records_even_for_empty_record_list(call);
        }
        if let Some(freq) = self.millis("workerMetricsReporterFreqInMillis")? {
            builder = builder.worker_metrics_reporter_freq(freq);
        }
        if let Some(timeout) = self.millis("gracefulLeaseHandoffTimeoutMillis")? {
            builder = builder.graceful_lease_handoff_timeout(timeout);
        }
        if let Some(enabled) = self.switch("isGracefulLeaseHandoffEnabled")? {
            builder = builder.graceful_lease_handoff_enabled(enabled);
        }
        match self.props.choice("clientVersionConfig")? {
            Some("CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X") => {
                builder = builder.client_version_config(ClientVersionConfig::CompatibleWith2x);
            }
            Some(_) => builder = builder.client_version_config(ClientVersionConfig::V3x),
            None => {}
        }
        if let Some(grace) = self.millis("shutdownGraceMillis")? {
            builder = builder.shutdown_grace(grace);
        }
        self.retrieval_mode()?;
        builder.build().map_err(|error| match error {
            // Name the line of the key the builder refused.
            ConfigError::Invalid { key, reason, .. } => self.invalid(key, reason),
            other => other,
        })
    }

    /// `initialPositionInStream` or `initialPositionInStreamExtended` (epoch seconds).
    fn initial_position(&mut self) -> Result<Option<InitialPosition>, ConfigError> {
        let named = self.props.choice("initialPositionInStream")?;
        let seconds = self
            .props
            .epoch_seconds("initialPositionInStreamExtended")?;
        if named.is_some() && seconds.is_some() {
            // Both set the same field; the daemon applies them in the order of its hash table
            // (`Properties.entrySet()`), which the file does not decide.
            return Err(self.invalid(
                "initialPositionInStreamExtended",
                "initialPositionInStream is set too: the daemon applies the two in an order the file does not decide; keep one".into(),
            ));
        }
        if let Some(seconds) = seconds {
            let epoch_millis = seconds.checked_mul(1000).ok_or_else(|| {
                self.invalid(
                    "initialPositionInStreamExtended",
                    format!("{seconds} seconds is out of range"),
                )
            })?;
            return Ok(Some(InitialPosition::AtTimestamp { epoch_millis }));
        }
        Ok(named.map(|name| match name {
            "TRIM_HORIZON" => InitialPosition::TrimHorizon,
            _ => InitialPosition::Latest,
        }))
    }

    /// `workerId` or `workerIdentifier` (the same field); a note when neither is set.
    fn worker_id(&mut self) -> Result<Option<String>, ConfigError> {
        let id = self.text("workerId")?;
        let identifier = self.text("workerIdentifier")?;
        match (id, identifier) {
            (Some(a), Some(b)) if a != b => Err(self.invalid(
                "workerIdentifier",
                "workerId is set too, to another value: the daemon applies the two in an order the file does not decide; keep one".into(),
            )),
            (Some(id), _) | (None, Some(id)) => Ok(Some(id)),
            (None, None) => {
                self.warn(
                    Level::Note,
                    None,
                    "no workerId: each start gets a random one (as the daemon's), and a restarted worker may hand leases back and forth with its dead self until that expires; set a stable workerId per host".into(),
                );
                Ok(None)
            }
        }
    }

    /// `retrievalMode`: the native engine polls, so the file must make the daemon poll too
    /// (the daemon's rule: [`kcl_properties::retrieval`]).
    fn retrieval_mode(&mut self) -> Result<(), ConfigError> {
        let choice = kcl_properties::retrieval(self.props)?;
        if choice.retrieval == kcl_properties::Retrieval::FanOut {
            let reason = if choice.explicit {
                "FANOUT: the native engine polls only so far (GetRecords); set retrievalMode = POLLING to use it".to_string()
            } else {
                "not set (or DEFAULT) and no polling key applies, so the daemon would use enhanced fan-out; the native engine polls only so far: set retrievalMode = POLLING".to_string()
            };
            return Err(ConfigError::Unsupported {
                key: "retrievalMode",
                line: self.line("retrievalMode"),
                reason,
            });
        }
        Ok(())
    }

    /// A note or warning for each known key the configuration does not hold.
    fn other_keys(&mut self) -> Result<(), ConfigError> {
        let props = self.props;
        if props.entry("AwsCredentialsProvider").is_none() {
            self.warn(
                Level::Note,
                None,
                "AwsCredentialsProvider is missing: the daemon will not start without it; the native engine uses the AWS SDK's default credentials chain".into(),
            );
        }
        let metrics = props.choice("metricsLevel")?;
        if metrics != Some("NONE") {
            let entry = props.entry("metricsLevel");
            self.warn(
                Level::Note,
                entry,
                "the daemon publishes CloudWatch metrics (metricsLevel is DETAILED unless set); the native engine publishes none yet".into(),
            );
        }
        for key in KEYS {
            let Some(entry) = props.entry(key.name) else {
                continue;
            };
            if HONOURED.contains(&key.name) || key.name == "metricsLevel" {
                continue;
            }
            let reading = props.read(key.name)?;
            if let Some((_, why)) = DAEMON_ONLY.iter().find(|(name, _)| *name == key.name) {
                let message = format!("{} only matters to the daemon: {why}", key.name);
                self.warn(Level::Note, Some(entry), message);
            } else if key.kind == Kind::NoEffect {
                let message = format!("{} is read but has no effect in KCL 3.x", key.name);
                self.warn(Level::Note, Some(entry), message);
            } else if key.kind == Kind::Credentials
                && key.name != "AwsCredentialsProviderCloudWatch"
            {
                if !uses_default_chain(&entry.value) {
                    let message = format!(
                        "{} = {:?} is not used: the native engine finds credentials with the AWS SDK's default chain (environment, profile, web identity, container, instance metadata)",
                        key.name,
                        entry.value.trim()
                    );
                    self.warn(Level::Warning, Some(entry), message);
                }
            } else if METRICS.contains(&key.name) {
                let message = format!(
                    "{} is about CloudWatch metrics, which the native engine does not publish yet",
                    key.name
                );
                self.warn(Level::Note, Some(entry), message);
            } else if key.group == Group::Fanout {
                let message = format!(
                    "{} only applies to enhanced fan-out, and both engines poll with this file",
                    key.name
                );
                self.warn(Level::Note, Some(entry), message);
            } else if let Some(Reading::Ignored(why)) = reading {
                let message = ignored_message(key.name, &entry.value, why);
                self.warn(Level::Warning, Some(entry), message);
            } else {
                let message = format!(
                    "{} is not honoured by the native engine yet (the daemon applies it)",
                    key.name
                );
                self.warn(Level::Warning, Some(entry), message);
            }
        }
        Ok(())
    }
}

/// What to say about a value the daemon ignores: the KCL default stays.
fn ignored_message(key: &str, raw: &str, why: Ignored) -> String {
    format!(
        "{key} = {raw:?} has no effect: the daemon ignores {} for this key, so the KCL default stays",
        why.what()
    )
}

/// Whether a credentials key names the AWS SDK's default chain, the one the native engine
/// uses (the daemon's decoder reads the simple or the full class name).
fn uses_default_chain(value: &str) -> bool {
    DEFAULT_CREDENTIALS.contains(&value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<(NativeConfig, Vec<Warning>), ConfigError> {
        NativeConfig::from_properties(&Properties::parse(text.as_bytes()))
    }

    const BASE: &str = "applicationName = app\nstreamName = s\nretrievalMode = POLLING\nworkerId = w\nmetricsLevel = NONE\nAwsCredentialsProvider = DefaultCredentialsProvider\n";

    fn with(extra: &str) -> Result<(NativeConfig, Vec<Warning>), ConfigError> {
        read(&format!("{BASE}{extra}"))
    }

    fn messages(warnings: &[Warning]) -> String {
        warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_plain_file_gives_no_warning() {
        let (config, warnings) = with("").unwrap();
        assert!(warnings.is_empty(), "{}", messages(&warnings));
        assert_eq!(
            config,
            NativeConfig::builder("app", "s")
                .worker_id("w")
                .build()
                .unwrap()
        );
    }

    #[test]
    fn ignored_values_keep_the_default_with_a_warning() {
        let (config, warnings) = with(
            "failoverTimeMillis = 0\nmaxRecords = ten\ncleanupLeasesUponShardCompletion = false\nshardSyncIntervalMillis = 1e3\n",
        )
        .unwrap();
        assert_eq!(config.failover_time(), Duration::from_secs(10));
        assert_eq!(config.lease_assignment_interval(), Duration::from_secs(20));
        assert_eq!(config.max_records(), 10_000);
        assert!(config.cleanup_leases_upon_shard_completion());
        assert_eq!(config.shard_sync_interval(), Duration::from_secs(60));
        let all = messages(&warnings);
        for expected in [
            "line 7: failoverTimeMillis = \"0\" has no effect: the daemon ignores 0",
            "line 8: maxRecords = \"ten\" has no effect: the daemon ignores a value it cannot read",
            "line 9: cleanupLeasesUponShardCompletion = \"false\" has no effect: the daemon ignores false",
            "line 10: shardSyncIntervalMillis = \"1e3\" has no effect",
        ] {
            assert!(all.contains(expected), "{expected}\n{all}");
        }
    }

    #[test]
    fn wrappers_apply_zero_false_and_fallbacks() {
        let (config, warnings) =
            with("gracefulLeaseHandoffTimeoutMillis = 0\nisGracefulLeaseHandoffEnabled = true \n")
                .unwrap();
        assert_eq!(config.graceful_lease_handoff_timeout(), Duration::ZERO);
        // `true ` (with a space) is no boolean to beanutils: a Java Boolean gets false.
        assert!(!config.graceful_lease_handoff_enabled());
        assert!(
            messages(&warnings).contains("isGracefulLeaseHandoffEnabled = \"true \" cannot be read: the daemon applies false instead"),
            "{}",
            messages(&warnings)
        );
        let (config, _) = with("isGracefulLeaseHandoffEnabled = off\n").unwrap();
        assert!(!config.graceful_lease_handoff_enabled());
    }

    #[test]
    fn refused_values_and_ranges_are_errors() {
        for (extra, expected) in [
            (
                "initialPositionInStream = LATEST \n",
                "expected one of TRIM_HORIZON, LATEST",
            ),
            ("clientVersionConfig = 3X\n", "line 7: clientVersionConfig"),
            (
                "maxRecords = 10001\n",
                "line 7: maxRecords: 10001 is not within 1 to 10000",
            ),
            ("maxRecords = -1\n", "maxRecords: -1 is not within"),
            (
                "failoverTimeMillis = -5\n",
                "line 7: failoverTimeMillis: -5 ms is negative",
            ),
            (
                "kinesisEndpoint = localhost:4567\n",
                "an endpoint needs http:// or https://",
            ),
            ("regionName = us-east-1 \n", "regionName"),
            (
                "streamArn = orders\n",
                "line 7: streamArn: \"orders\" is not a stream ARN",
            ),
            (
                "initialPositionInStreamExtended = 1700000000\ninitialPositionInStream = LATEST\n",
                "keep one",
            ),
            (
                "workerIdentifier = other\n",
                "line 7: workerIdentifier: workerId is set too",
            ),
            (
                "initialPositionInStreamExtended = soon\n",
                "expected epoch seconds",
            ),
            (
                "staleWorkerMetricsEntryCleanupDuration = -PT1H\n",
                "negative",
            ),
        ] {
            let error = with(extra).unwrap_err().to_string();
            assert!(error.contains(expected), "{extra:?}: {error}");
        }
        assert_eq!(
            read("streamName = s\nretrievalMode = POLLING\n").unwrap_err(),
            ConfigError::Missing("applicationName")
        );
        assert_eq!(
            read("applicationName = a\nretrievalMode = POLLING\n").unwrap_err(),
            ConfigError::Missing("streamName (or streamArn)")
        );
    }

    #[test]
    fn fan_out_is_refused_and_default_follows_the_daemon() {
        let fanout = read("applicationName = a\nstreamName = s\nretrievalMode = fanout\n")
            .unwrap_err()
            .to_string();
        assert!(
            fanout.starts_with("line 3: retrievalMode: FANOUT"),
            "{fanout}"
        );
        let default = read("applicationName = a\nstreamName = s\nretrievalMode = DEFAULT\n")
            .unwrap_err()
            .to_string();
        assert!(default.contains("enhanced fan-out"), "{default}");
        // maxRecords = 0 is ignored, so it does not make DEFAULT poll.
        assert!(read("applicationName = a\nstreamName = s\nmaxRecords = 0\n").is_err());
        // An applied polling key does (RetrievalMode.decideForDefault).
        let (config, _) = read("applicationName = a\nstreamName = s\nmaxRecords = 50\n").unwrap();
        assert_eq!(config.max_records(), 50);
        assert!(
            read("applicationName = a\nstreamName = s\nretryGetRecordsInSeconds = x\n").is_ok()
        );
    }

    #[test]
    fn other_keys_get_notes_and_warnings() {
        let (_, warnings) = with(
            "executableName = ./child out\nStreamName = typo\nmaxLeasesForWorker = 5\nmaxLeasesForWorker = 0\n\
             consumerName = c\nvalidateSequenceNumberBeforeCheckpointing = true\nAwsCredentialsProviderDynamoDB = ProfileCredentialsProvider|dev\n\
             metricsBufferTimeMillis = 100\nmaxActiveThreads = 4\ntaskBackoffTimeMillis = 100\n",
        )
        .unwrap();
        let all = messages(&warnings);
        for expected in [
            "warning: line 8: unknown key \"StreamName\": the daemon ignores it silently (keys are case-sensitive); did you mean streamName?",
            "warning: line 10: maxLeasesForWorker = \"0\" has no effect",
            "warning: line 13: AwsCredentialsProviderDynamoDB = \"ProfileCredentialsProvider|dev\" is not used",
            "warning: line 16: taskBackoffTimeMillis is not honoured by the native engine yet",
            "note: line 7: executableName only matters to the daemon",
            "note: line 11: consumerName only applies to enhanced fan-out",
            "note: line 12: validateSequenceNumberBeforeCheckpointing is read but has no effect",
            "note: line 14: metricsBufferTimeMillis is about CloudWatch metrics",
            "note: line 15: maxActiveThreads only matters to the daemon",
        ] {
            assert!(all.contains(expected), "{expected}\n{all}");
        }
        // Warnings first, then notes; each in line order.
        let levels: Vec<Level> = warnings.iter().map(|w| w.level).collect();
        let mut sorted = levels.clone();
        sorted.sort_by_key(|l| Reverse(*l));
        assert_eq!(levels, sorted);
    }

    #[test]
    fn missing_optional_keys_are_noted() {
        let (config, warnings) =
            read("applicationName = a\nstreamName = s\nretrievalMode = POLLING\n").unwrap();
        assert_eq!(config.worker_id().len(), 36);
        let all = messages(&warnings);
        assert!(all.contains("note: no workerId"), "{all}");
        assert!(
            all.contains("note: AwsCredentialsProvider is missing"),
            "{all}"
        );
        assert!(
            all.contains("note: the daemon publishes CloudWatch metrics"),
            "{all}"
        );
    }

    #[test]
    fn positions_arns_and_table_names() {
        let (config, warnings) = with(
            "initialPositionInStreamExtended = 1700000000\nstreamArn = arn:aws:kinesis:us-east-1:123456789012:stream/orders\n\
             tableName = leases\ncoordinatorStateTableName = cs\nclientVersionConfig = client_version_config_compatible_with_2x\n",
        )
        .unwrap();
        assert_eq!(
            config.initial_position(),
            InitialPosition::AtTimestamp {
                epoch_millis: 1_700_000_000_000
            }
        );
        assert_eq!(config.stream_name(), "orders");
        assert_eq!(config.table_name(), "leases");
        assert_eq!(config.coordinator_state_table_name(), "cs");
        assert_eq!(config.worker_metrics_table_name(), "app-WorkerMetricStats");
        assert_eq!(
            config.client_version_config(),
            ClientVersionConfig::CompatibleWith2x
        );
        assert!(messages(&warnings).contains("streamArn wins"));
        let (config, _) = with("initialPositionInStreamExtended = 0\n").unwrap();
        assert_eq!(
            config.initial_position(),
            InitialPosition::AtTimestamp { epoch_millis: 0 }
        );
    }
}
