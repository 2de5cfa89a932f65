//! `kcl_core::init_logging` as a daemon child uses it: the environment (`KCL_LOG_FORMAT`,
//! `RUST_LOG`) read, the subscriber installed for the whole process, lines on stderr and none on
//! stdout. Each test runs this test binary again as a child process (the test `child`, which
//! does nothing unless `KCL_LOGGING_TEST_CHILD` is set) and reads what it wrote.

use std::process::Command;
use std::time::Duration;

use kcl_core::testing::TestDaemon;
use kcl_core::{Error, FailurePolicy, from_fn};
use serde_json::{Value, json};

const CHILD: &str = "KCL_LOGGING_TEST_CHILD";
const SHARD: &str = "shardId-000000000001";

/// In the child process: installs the logger, then a shard whose handler fails on its second
/// record (`poison`) twice; the failure policy stops the shard. Prints nothing itself.
#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    kcl_core::init_logging();
    let processor = from_fn(|batch, _| {
        for record in batch {
            if record.data() == b"poison" {
                return Err(Error::msg("cannot parse").at_record(record.position().clone()));
            }
        }
        Ok(())
    });
    let policy = FailurePolicy::stop()
        .attempts(2)
        .backoff(Duration::ZERO, Duration::ZERO);
    let mut daemon = TestDaemon::with_failure_policy(processor, policy);
    daemon.initialize(SHARD);
    let records = vec![
        daemon.next_record("a"),
        daemon.next_record("poison"),
        daemon.next_record("c"),
    ];
    // The parent finds the poison record's sequence number in the logs.
    tracing::info!(poison = %records[1].sequence_number(), "records made");
    daemon.process_records(records, None);
}

struct Output {
    stdout: String,
    stderr: Vec<String>,
}

/// Runs the test `child` in a new process with `KCL_LOG_FORMAT` set to `format` (or unset).
fn run_child(format: Option<&str>) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args(["--exact", "child", "--test-threads=1"])
        .env(CHILD, "1")
        .env("RUST_LOG", "info")
        .env_remove("KCL_LOG_FORMAT");
    if let Some(format) = format {
        command.env("KCL_LOG_FORMAT", format);
    }
    let output = command.output().expect("the child runs");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let stderr = String::from_utf8(output.stderr).expect("UTF-8");
    assert!(output.status.success(), "{stdout}\n{stderr}");
    Output {
        stdout,
        stderr: stderr.lines().map(str::to_owned).collect(),
    }
}

/// No log line reached stdout (it carries the protocol in a real child).
fn assert_nothing_logged_to_stdout(output: &Output) {
    assert!(
        !output.stdout.contains(SHARD) && !output.stdout.contains("cannot parse"),
        "a log line reached stdout: {}",
        output.stdout
    );
}

#[test]
fn with_kcl_log_format_json_every_stderr_line_is_a_json_object_naming_shard_and_record() {
    let output = run_child(Some("json"));
    assert_nothing_logged_to_stdout(&output);
    let events: Vec<Value> = output
        .stderr
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(events.iter().all(Value::is_object), "{events:#?}");
    let poison = events
        .iter()
        .find_map(|event| event["poison"].as_str())
        .unwrap_or_else(|| panic!("no `records made` event: {events:#?}"))
        .to_owned();
    let about = |text: &str| -> &Value {
        let found: Vec<&Value> = events
            .iter()
            .filter(|e| e["message"].as_str().is_some_and(|m| m.contains(text)))
            .collect();
        assert_eq!(found.len(), 1, "{text}: {events:#?}");
        found[0]
    };
    let shard = json!({"id": SHARD, "name": "shard"});
    for (text, level) in [
        ("attempt 1/2 failed", "WARN"),
        (") failed: handler", "ERROR"),
    ] {
        let event = about(text);
        assert_eq!(event["level"], level, "{event}");
        assert_eq!(event["span"], shard, "{event}");
        assert_eq!(event["spans"], json!([shard]), "{event}");
        assert_eq!(event["sequence_number"], poison.as_str(), "{event}");
        assert_eq!(event["sub_sequence_number"], 0, "{event}");
        assert!(
            event["target"].as_str().unwrap().starts_with("kcl_core::"),
            "{event}"
        );
        assert!(
            event["timestamp"].as_str().unwrap().ends_with('Z'),
            "{event}"
        );
    }
}

#[test]
fn without_kcl_log_format_the_lines_stay_text() {
    let output = run_child(None);
    assert_nothing_logged_to_stdout(&output);
    assert!(!output.stderr.is_empty());
    for line in &output.stderr {
        assert!(serde_json::from_str::<Value>(line).is_err(), "{line}");
    }
    let failed: Vec<&String> = output
        .stderr
        .iter()
        .filter(|l| l.contains(") failed: handler"))
        .collect();
    assert_eq!(failed.len(), 1, "{:#?}", output.stderr);
    assert!(
        failed[0].contains(" ERROR shard{id=shardId-000000000001}: kcl_core::"),
        "{}",
        failed[0]
    );
}

#[test]
fn an_unknown_kcl_log_format_logs_text_after_a_warning_naming_it() {
    let output = run_child(Some("yaml"));
    assert_nothing_logged_to_stdout(&output);
    let first = output.stderr.first().expect("a warning");
    assert!(
        first.contains(" WARN ") && first.contains("KCL_LOG_FORMAT=\"yaml\""),
        "{first}"
    );
    assert!(
        output
            .stderr
            .iter()
            .any(|l| l.contains(" ERROR shard{id=shardId-000000000001}: ")),
        "{:#?}",
        output.stderr
    );
}
