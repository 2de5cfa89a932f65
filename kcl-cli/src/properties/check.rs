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
        Kind::NoEffect => found.add(
            Level::Note,
            line,
            format!("{name} is read but has no effect in KCL 3.x"),
        ),
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
}
