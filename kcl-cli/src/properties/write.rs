//! The writer: a properties file's lines from the `kcl properties` flags ([`build`]), and its
//! text ([`render`]).

use std::fmt::Write as _;

use super::args::{InitialPosition, MetricsLevel, PropertiesArgs, RetrievalMode};
use crate::error::{Error, Result};
use kcl_properties::{escape_value, is_plain_key, lookup, suggestion};

/// One line of the file: key, value, and the comment written above it.
pub(super) type Line = (String, String, Option<&'static str>);

/// The file's lines: (key, value, comment).
pub(super) fn build(args: &PropertiesArgs) -> Result<Vec<Line>> {
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
    let mut lines: Vec<Line> = Vec::new();
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
                format!("--set {key:?}: a key may hold only letters, digits, '.', '_' and '-'"),
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
pub(super) fn render(lines: &[Line]) -> String {
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
