//! The checker: what the daemon would ignore, misread or refuse in a properties file, as
//! [`Finding`]s. Settings that put credentials or the child program at risk are in
//! `safety.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use kcl_properties::{
    Entry, Group, Ignored, KEYS, Key, Kind, Reading, Value, lookup, unknown_key_message,
};

use super::safety;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// Worth knowing.
    Note,
    /// Probably not what was meant: the daemon ignores or misreads it.
    Warning,
    /// The daemon will not start (or its child will not).
    Error,
}

/// Something [`check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
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

/// The findings collected so far.
pub(super) struct Findings(Vec<Finding>);

impl Findings {
    /// Adds one.
    pub(super) fn add(&mut self, level: Level, line: Option<usize>, message: impl Into<String>) {
        self.0.push(Finding {
            level,
            line,
            message: message.into(),
        });
    }
}

/// Checks entries against the daemon's rules. `base` is the folder relative executables are
/// looked up from (the daemon's working directory).
pub(crate) fn check(entries: &[Entry], base: &Path) -> Vec<Finding> {
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
            found.add(Level::Warning, line, unknown_key_message(&entry.key));
            continue;
        };
        values.insert(known.name, (entry.value.as_str(), entry.line));
        if known.kind == Kind::Credentials && entry.key != known.name {
            found.add(
                Level::Note,
                line,
                format!(
                    "{} is the KCL 1.x/2.x spelling of {}: the daemon matches the credentials keys whatever their case, so it still works; KCL 3.x files write {}",
                    entry.key, known.name, known.name
                ),
            );
        }
        check_value(&mut found, known, &entry.value, line);
        check_kcl3_change(&mut found, known, &entry.value, line);
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
    // What the daemon makes of the value: the one reading of kcl-properties, shared with the
    // native engine.
    match kcl_properties::read(key, value) {
        Err(reason) => {
            found.add(Level::Error, line, format!("{name} = {value:?}: {reason}"));
            return;
        }
        Ok(Reading::Ignored(Ignored::Malformed)) => found.add(
            Level::Warning,
            line,
            format!(
                "{name} = {value:?} is not {}: the daemon ignores it, so the KCL default stays",
                expected(key.kind)
            ),
        ),
        Ok(Reading::Ignored(why)) => found.add(
            Level::Warning,
            line,
            format!(
                "{name} = {value} has no effect: the daemon ignores {} for this key, so the KCL default stays",
                why.what()
            ),
        ),
        Ok(Reading::Coerced(applied)) => found.add(
            Level::Warning,
            line,
            format!(
                "{name} = {value:?} is not {}: the daemon applies {} instead (not the KCL default)",
                expected(key.kind),
                shown(&applied)
            ),
        ),
        Ok(Reading::Applied(_)) => {}
    }
    match key.kind {
        Kind::Region => {
            let looks_right = value.split('-').count() >= 3
                && value
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
        Kind::Credentials if trimmed.is_empty() => {
            found.add(Level::Error, line, format!("{name} is empty"));
        }
        Kind::Credentials => check_credentials(found, name, value, line),
        Kind::NoEffect => found.add(
            Level::Note,
            line,
            format!("{name} is read but has no effect in KCL 3.x"),
        ),
        _ => {}
    }
}

/// The SDK v1 providers in a credentials value (KCL 1.x/2.x names): KCL 3.x resolves only SDK v2
/// classes and leaves the others out of the chain (`AwsCredentialsProviderPropertyValueDecoder`);
/// with none left the chain is empty, the daemon starts, and its first AWS call fails.
fn check_credentials(found: &mut Findings, name: &str, value: &str, line: Option<usize>) {
    // The daemon's grammar: providers separated by `,`, each `Class|arg|...`.
    let classes: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|element| !element.is_empty())
        .map(|element| element.split('|').next().unwrap_or(element).trim())
        .collect();
    let v1: Vec<(&str, &str)> = classes
        .iter()
        .filter_map(|class| kcl_properties::sdk_v1_provider(class).map(|v2| (*class, v2)))
        .collect();
    if v1.is_empty() {
        return;
    }
    let named = v1
        .iter()
        .map(|(class, v2)| format!("{class} (use {v2})"))
        .collect::<Vec<_>>()
        .join(", ");
    if v1.len() == classes.len() {
        found.add(
            Level::Error,
            line,
            format!(
                "{name} names AWS SDK v1 credentials providers, which KCL 3.x no longer reads: {named}; the daemon builds an empty provider chain, starts, and its first AWS call fails"
            ),
        );
    } else {
        found.add(
            Level::Warning,
            line,
            format!(
                "{name} names AWS SDK v1 credentials providers, which KCL 3.x leaves out of the chain: {named}"
            ),
        );
    }
}

/// The least `idleTimeBetweenReadsInMillis` since KCL 3.0.0
/// (`PollingConfig.MIN_IDLE_MILLIS_BETWEEN_READS`): a smaller value becomes 200.
const MIN_IDLE_MILLIS: i64 = 200;

/// Keys KCL 3.x reads only in the 2.x-compatible phase of a migration (KCL
/// docs/kcl-configurations.md, "Discontinued configuration properties in KCL 3.x").
const ONLY_2X_COMPATIBLE: &[&str] = &["maxLeasesToStealAtOneTime", "enablePriorityLeaseAssignment"];

/// What KCL 3.x does differently with a key that KCL 1.x/2.x read too, or with a 3.x migration
/// setting.
fn check_kcl3_change(found: &mut Findings, key: &Key, value: &str, line: Option<usize>) {
    let name = key.name;
    if ONLY_2X_COMPATIBLE.contains(&name) {
        found.add(
            Level::Note,
            line,
            format!(
                "{name} is ignored in KCL 3.x mode, which assigns leases by each worker's load (reBalanceThresholdPercentage, dampeningPercentage); it is read only in the 2.x-compatible phase of a migration from KCL 2.x (clientVersionConfig = CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X), so keep it until that is over"
            ),
        );
    }
    let applied = kcl_properties::read(key, value)
        .ok()
        .and_then(Reading::applied);
    match (name, applied) {
        ("idleTimeBetweenReadsInMillis", Some(Value::Int(millis))) if millis < MIN_IDLE_MILLIS => {
            found.add(
                Level::Warning,
                line,
                format!(
                    "idleTimeBetweenReadsInMillis = {millis} is below the KCL 3.x least, {MIN_IDLE_MILLIS} ms: the daemon waits {MIN_IDLE_MILLIS} ms between GetRecords calls (KCL 1.x took any value)"
                ),
            );
        }
        (
            "clientVersionConfig",
            Some(Value::Choice("CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X")),
        ) => {
            found.add(
                Level::Note,
                line,
                "clientVersionConfig = CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X: the workers start in KCL 2.x-compatible mode and switch themselves to 3.x mode at least 10 minutes after every worker runs KCL 3.x; this is for a rolling upgrade from KCL 2.x (follow AWS's \"Migrate from KCL 2.x to KCL 3.x\", docs/migration.md), and can go once the switch is done",
            );
        }
        _ => {}
    }
}

/// What a key of this kind takes, for messages ("is not {}").
fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Int | Kind::Long | Kind::BoxedInt | Kind::BoxedLong => "a whole number",
        Kind::Double => "a number",
        Kind::Bool | Kind::BoxedBool => "true or false (the daemon does not trim it)",
        _ => "what the key takes",
    }
}

/// A value the daemon applies, as a message shows it.
fn shown(value: &Value<'_>) -> String {
    match value {
        Value::Int(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
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
    // The daemon's rule, as the native engine applies it (`kcl_properties::retrieval`); a value
    // it refuses is reported on its own line, and then nothing is said about the mode.
    let known = kcl_properties::Properties::from_entries(
        values
            .iter()
            .map(|(key, (raw, number))| kcl_properties::Entry {
                key: (*key).to_string(),
                value: (*raw).to_string(),
                line: *number,
            })
            .collect(),
    );
    if let Ok(choice) = kcl_properties::retrieval(&known) {
        check_retrieval(found, &choice, &line, values);
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
            "no workerId: each start gets a random one, and a restarted KCL 3 worker may hand leases back and forth with its dead self until that expires; each start also adds a row to the <applicationName>-WorkerMetricStats table, kept until staleWorkerMetricsEntryCleanupDuration (1 day) removes it; set a stable workerId per host (its host name, or the pod name)",
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

/// The warnings about the retrieval mode: fan-out by default, and keys of the mode not used.
fn check_retrieval(
    found: &mut Findings,
    choice: &kcl_properties::RetrievalChoice,
    line: &dyn Fn(&str) -> Option<usize>,
    values: &BTreeMap<&'static str, (&str, usize)>,
) {
    let fanout = choice.retrieval == kcl_properties::Retrieval::FanOut;
    let polling_keys = &choice.polling_keys;
    let fanout_keys: Vec<&str> = KEYS
        .iter()
        .filter(|k| k.group == Group::Fanout && values.contains_key(k.name))
        .map(|k| k.name)
        .collect();
    if fanout && !choice.explicit {
        found.add(
            Level::Warning,
            line("retrievalMode"),
            "without retrievalMode (or with DEFAULT) and no polling key, the daemon uses enhanced fan-out (SubscribeToShard over HTTP/2, extra cost, not served by most emulators), where KCL 1.x polled: it needs the IAM actions kinesis:RegisterStreamConsumer, kinesis:DescribeStreamConsumer and kinesis:SubscribeToShard, and costs per consumer-shard hour and per GB; set retrievalMode = POLLING to poll",
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
pub(crate) fn find_on_path(program: &str) -> Option<PathBuf> {
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

/// Prints findings to stderr; returns how many are errors.
pub(crate) fn report(findings: &[Finding], source: &str) -> usize {
    for finding in findings {
        eprintln!("{source}: {finding}");
    }
    findings.iter().filter(|f| f.level == Level::Error).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_properties::parse;

    fn messages(text: &str) -> Vec<String> {
        check(&parse(text.as_bytes()), Path::new("/"))
            .into_iter()
            .map(|f| f.to_string())
            .collect()
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
            "maxRecords = \"ten\" is not a whole number: the daemon ignores it",
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
        // maxRecords is a polling key, but a value the daemon ignores does not count: DEFAULT
        // then means fan-out (`PollingConfigBean.anyPropertiesSet`).
        assert!(all.contains("enhanced fan-out"), "{all}");
        let polling = messages(
            "executableName = sh\napplicationName = a\nstreamName = s\nAwsCredentialsProvider = x\nmaxRecords = 500\n",
        )
        .join("\n");
        assert!(!polling.contains("enhanced fan-out"), "{polling}");
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

    /// The four keys every file needs, so that a test's own key is on line 5.
    const BASE: &str = "executableName = sh\napplicationName = a\nstreamName = s\nAwsCredentialsProvider = DefaultCredentialsProvider\n";

    /// The findings for `text`, which replaces or follows [`BASE`].
    fn findings(text: &str) -> Vec<Finding> {
        check(&parse(text.as_bytes()), Path::new("/"))
    }

    /// The one finding whose message holds `words`.
    fn finding(found: &[Finding], words: &str) -> Finding {
        let matching: Vec<&Finding> = found.iter().filter(|f| f.message.contains(words)).collect();
        assert_eq!(matching.len(), 1, "{words:?} in {found:#?}");
        matching[0].clone()
    }

    fn none_says(found: &[Finding], words: &str) {
        assert!(
            found.iter().all(|f| !f.message.contains(words)),
            "{words:?} in {found:#?}"
        );
    }

    #[test]
    fn sdk_v1_credentials_providers_name_their_v2_replacement() {
        let text = "executableName = sh\napplicationName = a\nstreamName = s\n\
                    AwsCredentialsProvider = DefaultAWSCredentialsProviderChain\n\
                    AwsCredentialsProviderDynamoDB = com.amazonaws.auth.STSAssumeRoleSessionCredentialsProvider|arn:aws:iam::1:role/r|s\n\
                    AwsCredentialsProviderCloudWatch = ClasspathPropertiesFileCredentialsProvider\n";
        let found = findings(text);
        let kinesis = finding(&found, "AwsCredentialsProvider names AWS SDK v1");
        assert_eq!((kinesis.level, kinesis.line), (Level::Error, Some(4)));
        assert!(
            kinesis
                .message
                .contains("DefaultAWSCredentialsProviderChain (use DefaultCredentialsProvider)"),
            "{kinesis}"
        );
        assert!(
            kinesis.message.contains("empty provider chain"),
            "{kinesis}"
        );
        let dynamodb = finding(&found, "AwsCredentialsProviderDynamoDB names");
        assert_eq!((dynamodb.level, dynamodb.line), (Level::Error, Some(5)));
        assert!(
            dynamodb
                .message
                .contains("(use KclStsAssumeRoleCredentialsProvider|<roleArn>|<sessionName>)"),
            "{dynamodb}"
        );
        let cloudwatch = finding(&found, "AwsCredentialsProviderCloudWatch names");
        assert_eq!((cloudwatch.level, cloudwatch.line), (Level::Error, Some(6)));
        assert!(
            cloudwatch
                .message
                .contains("ProfileCredentialsProvider|<profile>"),
            "{cloudwatch}"
        );

        // A chain that still holds a v2 provider works, without the v1 one.
        let mixed = findings(&format!(
            "{BASE}AwsCredentialsProviderDynamoDB = SystemPropertiesCredentialsProvider, EnvironmentVariableCredentialsProvider\n"
        ));
        let warning = finding(&mixed, "leaves out of the chain");
        assert_eq!((warning.level, warning.line), (Level::Warning, Some(5)));
        assert!(
            warning
                .message
                .contains("(use SystemPropertyCredentialsProvider)"),
            "{warning}"
        );
        // v2 names, including the ones SDK v1 had too, are fine.
        let v2 = findings(&format!(
            "{BASE}AwsCredentialsProviderDynamoDB = InstanceProfileCredentialsProvider, ProfileCredentialsProvider|p\n\
             AwsCredentialsProviderCloudWatch = KclStsAssumeRoleCredentialsProvider|arn|s|endpointRegion=us-east-1\n"
        ));
        none_says(&v2, "SDK v1");
    }

    #[test]
    fn the_old_credentials_key_spelling_is_a_note() {
        let found = findings(
            "executableName = sh\napplicationName = a\nstreamName = s\nAWSCredentialsProvider = DefaultCredentialsProvider\n",
        );
        let note = finding(&found, "KCL 1.x/2.x spelling");
        assert_eq!((note.level, note.line), (Level::Note, Some(4)));
        assert!(
            note.message.starts_with(
                "AWSCredentialsProvider is the KCL 1.x/2.x spelling of AwsCredentialsProvider"
            ),
            "{note}"
        );
        none_says(&found, "AwsCredentialsProvider is missing");
        none_says(&findings(BASE), "spelling");
    }

    #[test]
    fn removed_kcl_1x_keys_name_their_replacement() {
        for (line, replacement) in [
            (
                "skipShardSyncAtStartupIfLeasesExist = true",
                "use skipShardSyncAtWorkerInitializationIfLeasesExist instead",
            ),
            (
                "timestampAtInitialPositionInStream = 1700000000",
                "use initialPositionInStreamExtended instead",
            ),
            (
                "idleMillisBetweenCalls = 1500",
                "use idleTimeBetweenReadsInMillis instead",
            ),
            (
                "maxRecordsCount = 5000",
                "no key replaces it (KCL 3.x always prefetches",
            ),
            ("userAgent = mine", "no key replaces it"),
            (
                "billingMode = PAY_PER_REQUEST",
                "(the KCL 1.x daemon could not read it either); no key replaces it",
            ),
        ] {
            let found = findings(&format!("{BASE}{line}\n"));
            let key = line.split(' ').next().unwrap();
            let removed = finding(&found, &format!("unknown key {key:?}"));
            assert_eq!(
                (removed.level, removed.line),
                (Level::Warning, Some(5)),
                "{line}"
            );
            assert!(
                removed
                    .message
                    .contains("a KCL 1.x key that KCL 3.x no longer reads"),
                "{removed}"
            );
            assert!(removed.message.contains(replacement), "{line}: {removed}");
            // The replacement, not a look-alike: maxRecordsCount is not maxRecords.
            assert!(!removed.message.contains("did you mean"), "{removed}");
        }
    }

    #[test]
    fn fan_out_by_default_names_its_iam_actions_and_cost() {
        let found = findings(BASE);
        let fanout = finding(&found, "enhanced fan-out");
        assert_eq!(fanout.level, Level::Warning);
        for words in [
            "where KCL 1.x polled",
            "kinesis:RegisterStreamConsumer",
            "kinesis:DescribeStreamConsumer",
            "kinesis:SubscribeToShard",
            "per consumer-shard hour",
            "set retrievalMode = POLLING",
        ] {
            assert!(fanout.message.contains(words), "{words:?}: {fanout}");
        }
        none_says(
            &findings(&format!("{BASE}retrievalMode = POLLING\n")),
            "enhanced fan-out",
        );
        none_says(
            &findings(&format!("{BASE}maxRecords = 500\n")),
            "enhanced fan-out",
        );
    }

    #[test]
    fn a_missing_worker_id_names_the_worker_metrics_rows() {
        let note = finding(&findings(BASE), "no workerId");
        assert_eq!((note.level, note.line), (Level::Note, None));
        for words in ["WorkerMetricStats", "1 day", "host name, or the pod name"] {
            assert!(note.message.contains(words), "{words:?}: {note}");
        }
        none_says(
            &findings(&format!("{BASE}workerId = host-1\n")),
            "no workerId",
        );
    }

    #[test]
    fn kcl_3x_behaviour_changes_are_reported_on_their_line() {
        let found = findings(&format!(
            "{BASE}maxLeasesToStealAtOneTime = 2\nenablePriorityLeaseAssignment = true\n\
             idleTimeBetweenReadsInMillis = 100\nclientVersionConfig = CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X\n"
        ));
        let steal = finding(
            &found,
            "maxLeasesToStealAtOneTime is ignored in KCL 3.x mode",
        );
        assert_eq!((steal.level, steal.line), (Level::Note, Some(5)));
        assert!(steal.message.contains("2.x-compatible phase"), "{steal}");
        let priority = finding(
            &found,
            "enablePriorityLeaseAssignment is ignored in KCL 3.x mode",
        );
        assert_eq!((priority.level, priority.line), (Level::Note, Some(6)));
        let idle = finding(&found, "below the KCL 3.x least");
        assert_eq!((idle.level, idle.line), (Level::Warning, Some(7)));
        assert!(idle.message.contains("waits 200 ms"), "{idle}");
        let migration = finding(
            &found,
            "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X: the workers start in KCL 2.x-compatible mode",
        );
        assert_eq!((migration.level, migration.line), (Level::Note, Some(8)));
        assert!(
            migration
                .message
                .contains("Migrate from KCL 2.x to KCL 3.x"),
            "{migration}"
        );
        assert!(
            migration.message.contains("at least 10 minutes"),
            "{migration}"
        );

        let quiet = findings(&format!(
            "{BASE}idleTimeBetweenReadsInMillis = 200\nclientVersionConfig = CLIENT_VERSION_CONFIG_3X\n"
        ));
        none_says(&quiet, "below the KCL 3.x least");
        none_says(&quiet, "clientVersionConfig");
    }
}
