//! `kcl properties`: write a MultiLangDaemon properties file from flags, or check one.
//!
//! The daemon is unforgiving in silent ways (protocol.md §5): unknown keys are ignored, `0` and
//! `false` are ignored for number and switch keys (the KCL default stays), a malformed number
//! becomes 0 and is ignored too, and without `retrievalMode` it uses enhanced fan-out. The
//! [`check`] function finds these; the writer refuses or flags them.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

mod args;
pub mod endpoint;
mod safety;

pub use args::{InitialPosition, MetricsLevel, PropertiesArgs, RetrievalMode};

/// How the daemon reads a key's value.
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
    /// An AWS SDK v2 credentials provider (chain).
    Credentials,
    /// Read, but has no effect.
    NoEffect,
}

/// Which retrieval mode a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    Any,
    Polling,
    Fanout,
}

struct Key {
    name: &'static str,
    kind: Kind,
    group: Group,
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
const KEYS: &[Key] = &[
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
    key("initialPositionInStreamExtended", Kind::BoxedLong),
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
    key(
        "clientVersionConfig",
        Kind::Enum(&[
            "CLIENT_VERSION_CONFIG_3X",
            "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X",
            "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X_PHASE1",
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

fn lookup(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name).or_else(|| {
        // Only the credentials keys are matched without regard to case.
        name.to_ascii_lowercase()
            .starts_with("awscredentialsprovider")
            .then(|| KEYS.iter().find(|k| k.name.eq_ignore_ascii_case(name)))
            .flatten()
    })
}

/// A key the daemon knows that looks like `name` (case or a small typo), for "did you mean".
fn suggestion(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    KEYS.iter()
        .map(|k| (k.name, edit_distance(&lower, &k.name.to_ascii_lowercase())))
        .filter(|(_, distance)| *distance <= 3.max(name.len() / 6))
        .min_by_key(|(_, distance)| *distance)
        .map(|(name, _)| name)
}

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

/// One `key = value` of a properties file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value (escapes resolved).
    pub value: String,
    /// The 1-based line where the entry starts (0 for entries not read from a file).
    pub line: usize,
}

/// Reads a Java `.properties` text (ISO-8859-1, as `Properties.load(InputStream)` does):
/// `#`/`!` comments, `=`, `:` or whitespace separators, `\` continuations and escapes.
///
/// ```
/// let entries = kcl_cli::properties::parse(b"# c\nstreamName = a\\\n   b\nkey:v\\u00e9\n");
/// assert_eq!(entries[0].value, "ab");
/// assert_eq!((entries[1].key.as_str(), entries[1].value.as_str()), ("key", "vé"));
/// ```
pub fn parse(bytes: &[u8]) -> Vec<Entry> {
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let physical: Vec<&str> = text.split('\n').collect();
    let mut entries = Vec::new();
    let mut index = 0;
    while index < physical.len() {
        let start = index;
        let first = physical[index].trim_end_matches('\r');
        index += 1;
        let trimmed = first.trim_start_matches([' ', '\t', '\u{c}']);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let mut logical = String::from(trimmed);
        while ends_with_odd_backslashes(&logical) && index < physical.len() {
            logical.pop();
            let next = physical[index].trim_end_matches('\r');
            index += 1;
            logical.push_str(next.trim_start_matches([' ', '\t', '\u{c}']));
        }
        if ends_with_odd_backslashes(&logical) {
            logical.pop();
        }
        let (key, value) = split_entry(&logical);
        entries.push(Entry {
            key,
            value,
            line: start + 1,
        });
    }
    entries
}

fn ends_with_odd_backslashes(text: &str) -> bool {
    text.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

fn split_entry(logical: &str) -> (String, String) {
    let chars: Vec<char> = logical.chars().collect();
    let mut at = 0;
    let mut key_end = chars.len();
    while at < chars.len() {
        match chars[at] {
            '\\' => at += 2,
            '=' | ':' | ' ' | '\t' | '\u{c}' => {
                key_end = at;
                break;
            }
            _ => at += 1,
        }
    }
    let key_end = key_end.min(chars.len());
    let mut value_start = key_end;
    while value_start < chars.len() && matches!(chars[value_start], ' ' | '\t' | '\u{c}') {
        value_start += 1;
    }
    if value_start < chars.len() && matches!(chars[value_start], '=' | ':') {
        value_start += 1;
        while value_start < chars.len() && matches!(chars[value_start], ' ' | '\t' | '\u{c}') {
            value_start += 1;
        }
    }
    let key: String = chars[..key_end].iter().collect();
    let value: String = chars[value_start.min(chars.len())..].iter().collect();
    (unescape(&key), unescape(&value))
}

fn unescape(text: &str) -> String {
    // Java strings are UTF-16: `\uD83D\uDD11` is one character.
    let mut units: Vec<u16> = Vec::new();
    let push = |c: char, units: &mut Vec<u16>| {
        let mut buffer = [0u16; 2];
        units.extend_from_slice(c.encode_utf16(&mut buffer));
    };
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            push(c, &mut units);
            continue;
        }
        match chars.next() {
            Some('t') => push('\t', &mut units),
            Some('n') => push('\n', &mut units),
            Some('r') => push('\r', &mut units),
            Some('f') => push('\u{c}', &mut units),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u16::from_str_radix(&hex, 16) {
                    Ok(unit) if hex.len() == 4 => units.push(unit),
                    _ => push('\u{fffd}', &mut units),
                }
            }
            Some(other) => push(other, &mut units),
            None => {}
        }
    }
    String::from_utf16_lossy(&units)
}

/// Whether `key` can be written as it is: letters, digits, `.`, `_` and `-` only, so that no
/// separator, comment mark, escape or line break changes how the daemon reads the line.
pub fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Escapes a value for a properties file: ASCII only (the daemon reads ISO-8859-1).
pub fn escape_value(value: &str) -> String {
    let mut out = String::new();
    for (index, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' ' if index == 0 => out.push_str("\\ "),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Worth knowing.
    Note,
    /// Probably not what was meant: the daemon ignores or misreads it.
    Warning,
    /// The daemon will not start (or its child will not).
    Error,
}

/// Something [`check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// How serious.
    pub level: Level,
    /// Where: the line in the file, if any.
    pub line: Option<usize>,
    /// What.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        };
        match self.line {
            Some(line) if line > 0 => write!(f, "{level}: line {line}: {}", self.message),
            _ => write!(f, "{level}: {}", self.message),
        }
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, level: Level, line: Option<usize>, message: impl Into<String>) {
        self.0.push(Finding {
            level,
            line,
            message: message.into(),
        });
    }
}

/// Checks entries against the daemon's rules. `base` is the folder relative executables are
/// looked up from (the daemon's working directory).
pub fn check(entries: &[Entry], base: &Path) -> Vec<Finding> {
    let mut found = Findings(Vec::new());
    let mut values: BTreeMap<&'static str, (&str, usize)> = BTreeMap::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in entries {
        let line = Some(entry.line);
        if let Some(previous) = seen.insert(&entry.key, entry.line) {
            found.add(
                Level::Warning,
                line,
                format!(
                    "{} is set again (first on line {previous}); the last value wins",
                    entry.key
                ),
            );
        }
        safety::check_entry(&mut found, entry);
        let Some(known) = lookup(&entry.key) else {
            let hint = match suggestion(&entry.key) {
                Some(name) => format!("; did you mean {name}?"),
                None => String::new(),
            };
            found.add(
                Level::Warning,
                line,
                format!(
                    "unknown key {:?}: the daemon ignores it silently (keys are case-sensitive){hint}",
                    entry.key
                ),
            );
            continue;
        };
        values.insert(known.name, (entry.value.as_str(), entry.line));
        check_value(&mut found, known, &entry.value, line);
    }
    check_whole(&mut found, &values, base);
    found
        .0
        .sort_by_key(|f| (std::cmp::Reverse(f.level), f.line));
    found.0
}

fn check_value(found: &mut Findings, key: &Key, value: &str, line: Option<usize>) {
    let name = key.name;
    let trimmed = value.trim();
    if trimmed != value && !matches!(key.kind, Kind::Text | Kind::NoEffect) {
        found.add(
            Level::Note,
            line,
            format!("{name} has spaces around its value"),
        );
    }
    let ignored_zero = |found: &mut Findings, what: &str| {
        found.add(
            Level::Warning,
            line,
            format!(
                "{name} = {trimmed} has no effect: the daemon ignores {what} for this key, so the KCL default stays"
            ),
        );
    };
    match key.kind {
        Kind::Int | Kind::Long | Kind::BoxedInt | Kind::BoxedLong => {
            let parsed = match key.kind {
                Kind::Int | Kind::BoxedInt => trimmed.parse::<i32>().map(i64::from).ok(),
                _ => trimmed.parse::<i64>().ok(),
            };
            match parsed {
                None => found.add(
                    Level::Warning,
                    line,
                    format!(
                        "{name} = {value:?} is not a whole number: the daemon turns it into 0 and ignores it"
                    ),
                ),
                Some(0) if matches!(key.kind, Kind::Int | Kind::Long) => {
                    ignored_zero(found, "0")
                }
                Some(_) => {}
            }
        }
        Kind::Double => match trimmed.parse::<f64>() {
            Err(_) => found.add(
                Level::Warning,
                line,
                format!("{name} = {value:?} is not a number: it is ignored"),
            ),
            Ok(0.0) => ignored_zero(found, "0"),
            Ok(_) => {}
        },
        Kind::Bool | Kind::BoxedBool => match parse_bool(trimmed) {
            None => found.add(
                Level::Warning,
                line,
                format!("{name} = {value:?} is not true or false"),
            ),
            Some(false) if key.kind == Kind::Bool => ignored_zero(found, "false"),
            Some(_) => {}
        },
        Kind::Enum(names) => {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(trimmed)) {
                found.add(
                    Level::Error,
                    line,
                    format!("{name} = {value:?}: expected one of {}", names.join(", ")),
                );
            }
        }
        Kind::Region => {
            let looks_right = trimmed.split('-').count() >= 3
                && trimmed
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !looks_right {
                found.add(
                    Level::Warning,
                    line,
                    format!("{name} = {value:?} does not look like a region (e.g. us-east-1)"),
                );
            }
        }
        Kind::Url => {
            if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
                found.add(
                    Level::Error,
                    line,
                    format!("{name} = {value:?}: an endpoint needs http:// or https://"),
                );
            }
        }
        Kind::Duration => {
            if !trimmed.starts_with('P') {
                found.add(
                    Level::Warning,
                    line,
                    format!("{name} = {value:?}: expected an ISO-8601 duration such as PT12H"),
                );
            }
        }
        Kind::Credentials => {
            if trimmed.is_empty() {
                found.add(Level::Error, line, format!("{name} is empty"));
            }
        }
        Kind::NoEffect => found.add(
            Level::Note,
            line,
            format!("{name} is read but has no effect in KCL 3.x"),
        ),
        Kind::Text => {}
    }
}

/// `true`/`false` and the other spellings commons-beanutils accepts.
fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn check_whole(found: &mut Findings, values: &BTreeMap<&'static str, (&str, usize)>, base: &Path) {
    let get = |name: &str| values.get(name).map(|(value, _)| value.trim());
    let line = |name: &str| values.get(name).map(|(_, line)| *line);
    for required in [
        "executableName",
        "applicationName",
        "AwsCredentialsProvider",
    ] {
        if get(required).is_none_or(str::is_empty) {
            found.add(Level::Error, None, format!("{required} is missing"));
        }
    }
    match (get("streamName"), get("streamArn")) {
        (None, None) => found.add(
            Level::Error,
            None,
            "streamName (or streamArn) is missing".to_string(),
        ),
        (Some(_), Some(_)) => found.add(
            Level::Note,
            line("streamName"),
            "both streamName and streamArn are set: streamArn wins".to_string(),
        ),
        _ => {}
    }
    if let Some((raw, number)) = values.get("executableName") {
        check_executable(found, raw, Some(*number), base);
    }
    let mode = get("retrievalMode").map(str::to_ascii_uppercase);
    let polling_keys: Vec<&str> = KEYS
        .iter()
        .filter(|k| k.group == Group::Polling && values.contains_key(k.name))
        .map(|k| k.name)
        .collect();
    let fanout_keys: Vec<&str> = KEYS
        .iter()
        .filter(|k| k.group == Group::Fanout && values.contains_key(k.name))
        .map(|k| k.name)
        .collect();
    let fanout = match mode.as_deref() {
        Some("POLLING") => false,
        Some("FANOUT") => true,
        _ => polling_keys.is_empty(),
    };
    if fanout && mode.as_deref() != Some("FANOUT") {
        found.add(
            Level::Warning,
            line("retrievalMode"),
            "without retrievalMode (or with DEFAULT) and no polling key, the daemon uses enhanced fan-out (SubscribeToShard over HTTP/2, extra cost, not served by most emulators); set retrievalMode = POLLING to poll",
        );
    }
    if fanout && !polling_keys.is_empty() {
        found.add(
            Level::Warning,
            line(polling_keys[0]),
            format!(
                "{} only apply to polling, but the daemon uses fan-out",
                polling_keys.join(", ")
            ),
        );
    }
    if !fanout && !fanout_keys.is_empty() {
        found.add(
            Level::Warning,
            line(fanout_keys[0]),
            format!(
                "{} only apply to fan-out, but the daemon polls",
                fanout_keys.join(", ")
            ),
        );
    }
    let kinesis = get("kinesisEndpoint");
    let dynamodb = get("dynamoDBEndpoint");
    if kinesis.is_some() != dynamodb.is_some() {
        let (set, unset) = if kinesis.is_some() {
            ("kinesisEndpoint", "dynamoDBEndpoint")
        } else {
            ("dynamoDBEndpoint", "kinesisEndpoint")
        };
        found.add(
            Level::Warning,
            line(set),
            format!("{set} is set but {unset} is not: that service goes to AWS itself"),
        );
    }
    let metrics = get("metricsLevel").map(str::to_ascii_uppercase);
    if (kinesis.is_some() || dynamodb.is_some()) && metrics.as_deref() != Some("NONE") {
        found.add(
            Level::Warning,
            line("metricsLevel"),
            "endpoints are overridden but metrics are on: CloudWatch has no endpoint key, so metrics go to AWS itself; set metricsLevel = NONE for local runs",
        );
    }
    if get("shutdownGraceMillis").is_none() {
        found.add(
            Level::Warning,
            None,
            "shutdownGraceMillis is not set: on SIGTERM the daemon does not wait for its children to checkpoint (default 0); e.g. shutdownGraceMillis = 30000",
        );
    }
    if get("workerId").is_none() && get("workerIdentifier").is_none() {
        found.add(
            Level::Note,
            None,
            "no workerId: each start gets a random one, and a restarted KCL 3 worker may hand leases back and forth with its dead self until that expires; set a stable workerId per host",
        );
    }
    if get("regionName").is_none() {
        found.add(
            Level::Note,
            None,
            "no regionName: the AWS SDK's region chain decides (AWS_REGION, profile, instance metadata)",
        );
    }
    if get("initialPositionInStream").is_none() && get("initialPositionInStreamExtended").is_none()
    {
        found.add(
            Level::Note,
            None,
            "no initialPositionInStream: new leases start at LATEST (records already in the stream are skipped)",
        );
    }
}

fn check_executable(found: &mut Findings, raw: &str, line: Option<usize>, base: &Path) {
    if raw.starts_with(' ') {
        found.add(
            Level::Error,
            line,
            "executableName starts with a space: the daemon splits on spaces, so the program name is empty and no child can start",
        );
        return;
    }
    let parts: Vec<&str> = raw.split(' ').filter(|p| !p.is_empty()).collect();
    let Some(program) = parts.first() else {
        return;
    };
    if raw.contains(['\t', '"', '\'', '$', '`', '|', '>', '<', '*', '~']) || raw.contains("&&") {
        found.add(
            Level::Warning,
            line,
            "executableName is split on spaces and run without a shell: tabs, quotes, $VARIABLES, ~, globs, pipes and redirections are passed literally",
        );
    }
    safety::check_program(found, raw, &parts, line, base);
    if program.contains('/') {
        let path = base.join(program);
        if !path.exists() {
            found.add(
                Level::Warning,
                line,
                format!(
                    "the child program {program} does not exist from {} (relative paths are resolved from the daemon's working directory)",
                    base.display()
                ),
            );
        }
    } else if find_on_path(program).is_none() {
        found.add(
            Level::Warning,
            line,
            format!("the child program {program} is not on PATH here"),
        );
    }
}

/// The first `PATH` entry holding an executable file `program`.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// Reads a properties file.
pub fn read_file(path: &Path) -> Result<Vec<Entry>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file("read", path, e))?;
    Ok(parse(&bytes))
}

/// The last value of `key` (exact name).
pub fn value<'a>(entries: &'a [Entry], key: &str) -> Option<&'a str> {
    entries
        .iter()
        .rev()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

/// Prints findings to stderr; returns how many are errors.
pub fn report(findings: &[Finding], source: &str) -> usize {
    for finding in findings {
        eprintln!("{source}: {finding}");
    }
    findings.iter().filter(|f| f.level == Level::Error).count()
}

/// Runs `kcl properties`.
pub fn command(args: PropertiesArgs) -> Result<()> {
    match &args.check {
        Some(path) => check_command(path),
        None => write_command(&args),
    }
}

fn check_command(path: &Path) -> Result<()> {
    let entries = read_file(path)?;
    let base =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current folder", e))?;
    let findings = check(&entries, &base);
    let errors = report(&findings, &path.display().to_string());
    let warnings = findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count();
    println!(
        "{}: {} keys, {errors} errors, {warnings} warnings",
        path.display(),
        entries.len()
    );
    if errors > 0 {
        return Err(Error::failed_hint(
            format!("{} would not work with the daemon", path.display()),
            "fix the errors above, or write a new file with `kcl properties --stream ... -o FILE`",
        ));
    }
    Ok(())
}

/// The file's lines: (key, value, comment).
fn build(args: &PropertiesArgs) -> Result<Vec<(String, String, Option<&'static str>)>> {
    let mut missing = Vec::new();
    if args.stream.is_none() && args.stream_arn.is_none() {
        missing.push("--stream (or --stream-arn)");
    }
    if args.application.is_none() {
        missing.push("--application");
    }
    if args.executable.is_none() {
        missing.push("--executable");
    }
    if !missing.is_empty() {
        return Err(Error::usage_hint(
            format!("missing {}", missing.join(", ")),
            "kcl properties --stream NAME --application NAME --executable COMMAND [-o FILE]; or --check FILE",
        ));
    }
    let mut lines: Vec<(String, String, Option<&'static str>)> = Vec::new();
    let mut push = |key: &str, value: String, comment: Option<&'static str>| {
        lines.push((key.to_string(), value, comment));
    };
    push(
        "executableName",
        args.executable.clone().unwrap_or_default(),
        Some("The child command: split on spaces, no shell; looked up on the daemon's PATH."),
    );
    if let Some(stream) = &args.stream {
        push("streamName", stream.clone(), None);
    }
    if let Some(arn) = &args.stream_arn {
        push("streamArn", arn.clone(), None);
    }
    push(
        "applicationName",
        args.application.clone().unwrap_or_default(),
        Some("Also the name of the lease table in DynamoDB."),
    );
    push(
        "AwsCredentialsProvider",
        args.credentials_provider.clone(),
        None,
    );
    if let Some(region) = &args.region {
        push("regionName", region.clone(), None);
    }
    let kinesis = args.kinesis_endpoint.clone().or(args.endpoint.clone());
    let dynamodb = args.dynamodb_endpoint.clone().or(args.endpoint.clone());
    if let Some(url) = kinesis {
        push("kinesisEndpoint", url, None);
    }
    if let Some(url) = dynamodb {
        push("dynamoDBEndpoint", url, None);
    }
    match args.initial_position {
        InitialPosition::TrimHorizon => push(
            "initialPositionInStream",
            "TRIM_HORIZON".into(),
            Some("Where new leases start (a stored checkpoint always wins)."),
        ),
        InitialPosition::Latest => push(
            "initialPositionInStream",
            "LATEST".into(),
            Some("Where new leases start (a stored checkpoint always wins)."),
        ),
        InitialPosition::AtTimestamp => {
            let Some(seconds) = args.at_timestamp else {
                return Err(Error::usage(
                    "--initial-position at-timestamp needs --at-timestamp EPOCH_SECONDS",
                ));
            };
            push(
                "initialPositionInStreamExtended",
                seconds.to_string(),
                Some("New leases start at this time (epoch seconds)."),
            );
        }
    }
    if args.at_timestamp.is_some() && args.initial_position != InitialPosition::AtTimestamp {
        return Err(Error::usage(
            "--at-timestamp needs --initial-position at-timestamp",
        ));
    }
    let mode = match args.retrieval_mode {
        RetrievalMode::Polling => "POLLING",
        RetrievalMode::Fanout => "FANOUT",
        RetrievalMode::Default => "DEFAULT",
    };
    push(
        "retrievalMode",
        mode.into(),
        Some("Always explicit: without it the daemon uses enhanced fan-out."),
    );
    let metrics = match args.metrics {
        MetricsLevel::None => "NONE",
        MetricsLevel::Summary => "SUMMARY",
        MetricsLevel::Detailed => "DETAILED",
    };
    push("metricsLevel", metrics.into(), None);
    if let Some(worker) = &args.worker_id {
        push("workerId", worker.clone(), None);
    }
    push(
        "shutdownGraceMillis",
        args.shutdown_grace_millis.to_string(),
        Some("How long SIGTERM waits for children to checkpoint and exit."),
    );
    for setting in &args.set {
        let Some((key, value)) = setting.split_once('=') else {
            return Err(Error::usage(format!(
                "--set {setting:?}: expected KEY=VALUE"
            )));
        };
        let key = key.trim();
        if !is_plain_key(key) {
            return Err(Error::usage_hint(
                format!(
                    "--set {key:?}: a key may hold only letters, digits, '.', '_' and '-'"
                ),
                "every key the daemon knows does; a space, ':', '=', '#', '!', '\\' or a line break would change how the daemon reads the file",
            ));
        }
        if lookup(key).is_none() && !args.allow_unknown {
            let hint = match suggestion(key) {
                Some(name) => format!("did you mean {name}? (or pass --allow-unknown)"),
                None => "check the key's spelling and case, or pass --allow-unknown".to_string(),
            };
            return Err(Error::usage_hint(
                format!(
                    "--set {key}: the daemon does not know this key and would ignore it silently"
                ),
                hint,
            ));
        }
        lines.retain(|(existing, _, _)| existing != key);
        lines.push((key.to_string(), value.trim().to_string(), None));
    }
    Ok(lines)
}

/// The file text of `lines`.
fn render(lines: &[(String, String, Option<&'static str>)]) -> String {
    let mut out = String::new();
    out.push_str(concat!(
        "# MultiLangDaemon properties, written by `kcl properties` (kcl-cli ",
        env!("CARGO_PKG_VERSION"),
        ").\n",
        "# Keys are case-sensitive and unknown ones are ignored silently; 0 and false are ignored for\n",
        "# number and switch keys. Check edits with `kcl properties --check FILE`.\n",
    ));
    for (key, value, comment) in lines {
        if let Some(comment) = comment {
            let _ = writeln!(out, "\n# {comment}");
        }
        let _ = writeln!(out, "{key} = {}", escape_value(value));
    }
    out
}

fn write_command(args: &PropertiesArgs) -> Result<()> {
    let lines = build(args)?;
    let text = render(&lines);
    let entries = parse(text.as_bytes());
    let base =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current folder", e))?;
    let findings: Vec<Finding> = check(&entries, &base)
        .into_iter()
        .filter(|f| f.level >= Level::Warning)
        .collect();
    let source = args
        .output
        .as_ref()
        .map_or("kcl properties".to_string(), |p| p.display().to_string());
    let errors = report(&findings, &source);
    if errors > 0 {
        return Err(Error::usage(
            "the properties would not work; nothing written",
        ));
    }
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            if path.exists() && !args.force {
                return Err(Error::usage_hint(
                    format!("{} exists", path.display()),
                    "pass --force to overwrite it",
                ));
            }
            crate::fsutil::write_atomically(path, text.as_bytes())
                .map_err(|e| Error::file("write", path, e))?;
            eprintln!("wrote {} ({} keys)", path.display(), entries.len());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<Entry> {
        parse(text.as_bytes())
    }

    fn messages(text: &str) -> Vec<String> {
        check(&entries(text), Path::new("/"))
            .into_iter()
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn java_properties_syntax() {
        let parsed = entries(
            "# comment\n! also\n  key1=a\nkey2 : b c \nkey3 d\nkey4\\ x = y\nkey5 = one \\\n     two\r\nkey6=\\u00e9\\t\n",
        );
        let pairs: Vec<(&str, &str)> = parsed
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("key1", "a"),
                ("key2", "b c "),
                ("key3", "d"),
                ("key4 x", "y"),
                ("key5", "one two"),
                ("key6", "é\t")
            ]
        );
        assert_eq!(parsed[4].line, 7);
        // Bytes are ISO-8859-1: UTF-8 "é" reads as two characters.
        assert_eq!(parse("k=é".as_bytes())[0].value, "Ã©");
    }

    #[test]
    fn escaping_round_trips() {
        for value in [
            " lead",
            "back\\slash\\",
            "é ключ 🔑",
            "tab\tnew\nline\r\n",
            "a=b:c#d!e",
            "#hash",
            "!bang",
            "=eq",
            ":colon",
            "x\nexecutableName = /opt/evil",
        ] {
            let text = format!("k = {}\n", escape_value(value));
            assert!(text.is_ascii());
            let parsed = parse(text.as_bytes());
            assert_eq!(parsed.len(), 1, "{text}");
            assert_eq!(parsed[0].value, value);
        }
    }

    #[test]
    fn plain_keys() {
        for key in ["maxRecords", "my.custom_key-1", "AwsCredentialsProvider"] {
            assert!(is_plain_key(key), "{key}");
        }
        for key in ["", "a b", "a:b", "a=b", "#a", "!a", "a\\b", "a\nb", "é"] {
            assert!(!is_plain_key(key), "{key:?}");
        }
        assert!(KEYS.iter().all(|k| is_plain_key(k.name)));
    }

    #[test]
    fn traps_are_reported() {
        let found = messages(
            "executableName = ./missing-child\napplicationName = a\nstreamName = s\nAwsCredentialsProvider = DefaultCredentialsProvider\n\
             cleanupLeasesUponShardCompletion = false\nfailoverTimeMillis = 0\nmaxRecords = ten\nStreamName = typo\n\
             isGracefulLeaseHandoffEnabled = false\nkinesisEndpoint = http://127.0.0.1:4567\n",
        );
        let all = found.join("\n");
        for expected in [
            "cleanupLeasesUponShardCompletion = false has no effect",
            "failoverTimeMillis = 0 has no effect",
            "maxRecords = \"ten\" is not a whole number",
            "unknown key \"StreamName\"",
            "did you mean streamName",
            "dynamoDBEndpoint is not",
            "metrics go to AWS",
            "shutdownGraceMillis is not set",
            "does not exist",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert!(!all.contains("isGracefulLeaseHandoffEnabled"), "{all}");
        // maxRecords is a polling key, so DEFAULT polls: no fan-out warning.
        assert!(!all.contains("enhanced fan-out"), "{all}");
    }

    #[test]
    fn fan_out_default_and_missing_keys() {
        let found = messages("executableName = sh\n").join("\n");
        assert!(
            found.contains("error: applicationName is missing"),
            "{found}"
        );
        assert!(
            found.contains("error: streamName (or streamArn) is missing"),
            "{found}"
        );
        assert!(found.contains("enhanced fan-out"), "{found}");
        let leading = messages(
            "executableName =\\  sh\napplicationName=a\nstreamName=s\nAwsCredentialsProvider=x\n",
        )
        .join("\n");
        assert!(leading.contains("starts with a space"), "{leading}");
    }

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
}
