//! The examples run as real child processes, fed through real pipes, as the daemon runs them:
//! only protocol lines may reach stdout, the process exits 0 promptly when stdin closes.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Builds an example (once per test binary run) and returns its path.
fn example(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _lock = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--example",
            name,
            "--manifest-path",
            manifest,
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building example {name} failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("debug").join("examples").join(name)
}

struct Run {
    stdout: String,
    stderr: String,
    code: Option<i32>,
    elapsed_after_eof: Duration,
}

impl Run {
    /// Non-empty stdout lines, each of which must be a JSON object.
    fn protocol_lines(&self) -> Vec<Value> {
        self.stdout
            .split('\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"))
            })
            .collect()
    }
}

/// Runs an example with `input` on stdin, closes stdin, and waits (bounded) for it to exit.
fn run_child(name: &str, input: &str) -> Run {
    let mut child = Command::new(example(name))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "info")
        .spawn()
        .expect("example starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let closed = Instant::now();
    let deadline = closed + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{name} did not exit within 20 s of stdin closing");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        elapsed_after_eof: closed.elapsed(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        code,
    }
}

const SEQ1: &str = "49590338271490256608559692538361571095921575989136588898";
const SEQ2: &str = "49590338271490256608559692538361571095921575989136588899";

fn lines(text: &[&str]) -> String {
    text.iter().map(|l| format!("{l}\n")).collect()
}

fn is_protocol_line(value: &Value) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    match object.get("action").and_then(Value::as_str) {
        Some("status") => keys == ["action", "responseFor"],
        Some("checkpoint") => keys == ["action", "sequenceNumber", "subSequenceNumber"],
        _ => false,
    }
}

#[test]
fn prints_from_user_code_never_reach_the_protocol_stdout() {
    let input = lines(&[
        r#"{"action":"initialize","shardId":"shardId-000000000003","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        &format!(
            r#"{{"action":"processRecords","records":[{{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"{SEQ1}","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}}],"millisBehindLatest":0}}"#
        ),
        r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
        r#"{"action":"leaseLost"}"#,
    ]);
    let run = run_child("stdout_safety", &input);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let protocol = run.protocol_lines();
    assert!(protocol.iter().all(is_protocol_line), "{protocol:?}");
    assert_eq!(
        protocol,
        [
            json!({"action":"status","responseFor":"initialize"}),
            json!({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}),
            json!({"action":"status","responseFor":"processRecords"}),
            json!({"action":"status","responseFor":"leaseLost"}),
        ]
    );
    for printed in [
        "println from initialize on shardId-000000000003",
        "println of record hello",
        "raw write to stdout",
        "a child program writing to its stdout",
    ] {
        assert!(!run.stdout.contains(printed), "{printed:?} reached stdout");
        assert!(
            run.stderr.contains(printed),
            "{printed:?} missing from stderr: {}",
            run.stderr
        );
    }
}

#[test]
fn a_panicking_handler_is_logged_with_its_shard_and_answered() {
    let input = lines(&[
        r#"{"action":"initialize","shardId":"shardId-000000000004","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        &format!(
            r#"{{"action":"processRecords","records":[{{"data":"cGFuaWM=","partitionKey":"pk-1","sequenceNumber":"{SEQ1}","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}}],"millisBehindLatest":0}}"#
        ),
        r#"{"action":"shutdownRequested"}"#,
        r#"{"action":"leaseLost"}"#,
    ]);
    let run = run_child("stdout_safety", &input);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    // Nothing was handled, so shutdownRequested has nothing to checkpoint.
    assert_eq!(
        run.protocol_lines(),
        [
            json!({"action":"status","responseFor":"initialize"}),
            json!({"action":"status","responseFor":"processRecords"}),
            json!({"action":"status","responseFor":"shutdownRequested"}),
            json!({"action":"status","responseFor":"leaseLost"}),
        ]
    );
    let logged = run
        .stderr
        .lines()
        .find(|l| l.contains("handler panicked"))
        .unwrap_or_else(|| panic!("no panic log in stderr: {}", run.stderr));
    assert!(logged.contains("shardId-000000000004"), "{logged}");
    assert!(logged.contains(SEQ1), "{logged}");
    assert!(logged.contains("asked to panic"), "{logged}");
}

#[test]
fn word_count_child_runs_a_lifecycle_and_exits_zero_on_eof() {
    let input = lines(&[
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        &format!(
            r#"{{"action":"processRecords","records":[{{"data":"aGVsbG8gd29ybGQ=","partitionKey":"pk-1","sequenceNumber":"{SEQ1}","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}},{{"data":"/w==","partitionKey":"pk-2","sequenceNumber":"{SEQ2}","approximateArrivalTimestamp":1700000000500,"subSequenceNumber":0,"action":"record"}}],"millisBehindLatest":0}}"#
        ),
        &format!(
            r#"{{"action":"checkpoint","sequenceNumber":"{SEQ2}","subSequenceNumber":0,"error":null}}"#
        ),
        r#"{"action":"shardEnded"}"#,
        r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
    ]);
    let run = run_child("word_count", &input);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(
        run.protocol_lines(),
        [
            json!({"action":"status","responseFor":"initialize"}),
            json!({"action":"checkpoint","sequenceNumber":SEQ2,"subSequenceNumber":0}),
            json!({"action":"status","responseFor":"processRecords"}),
            json!({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}),
            json!({"action":"status","responseFor":"shardEnded"}),
        ]
    );
    assert!(run.stderr.contains("skipped=1"), "{}", run.stderr);
    assert!(run.stderr.contains("total_words=2"), "{}", run.stderr);
    assert!(
        run.elapsed_after_eof < Duration::from_secs(5),
        "took {:?} to exit after EOF",
        run.elapsed_after_eof
    );
}

#[test]
fn child_exits_zero_when_stdin_closes_while_it_waits_for_a_checkpoint_reply() {
    let input = lines(&[
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        &format!(
            r#"{{"action":"processRecords","records":[{{"data":"AAEC","partitionKey":"pk-1","sequenceNumber":"{SEQ1}","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}}],"millisBehindLatest":0}}"#
        ),
    ]);
    let run = run_child("byte_count", &input);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let protocol = run.protocol_lines();
    assert_eq!(
        protocol[..2],
        [
            json!({"action":"status","responseFor":"initialize"}),
            json!({"action":"checkpoint","sequenceNumber":SEQ1,"subSequenceNumber":0}),
        ]
    );
    assert!(protocol.iter().all(is_protocol_line));
    assert!(run.stderr.contains("closed stdin"), "{}", run.stderr);
}

#[test]
fn bundled_sample_session_runs_through_word_count() {
    let session = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/word_count.session"
    ))
    .unwrap();
    let run = run_child("word_count", &session);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let protocol = run.protocol_lines();
    assert!(protocol.iter().all(is_protocol_line));
    assert_eq!(
        protocol.last(),
        Some(&json!({"action":"status","responseFor":"leaseLost"}))
    );
    assert!(run.stderr.contains("total_words=21"), "{}", run.stderr);
    assert!(run.stderr.contains("skipped=1"), "{}", run.stderr);
}

#[test]
fn a_hook_past_its_deadline_is_reported_and_the_process_exits() {
    let input = lines(&[
        r#"{"action":"initialize","shardId":"shardId-000000000005","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        &format!(
            r#"{{"action":"processRecords","records":[{{"data":"aGFuZw==","partitionKey":"pk-1","sequenceNumber":"{SEQ1}","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}}],"millisBehindLatest":0}}"#
        ),
    ]);
    let run = run_child("stdout_safety", &input);
    assert_eq!(run.code, Some(70), "stderr: {}", run.stderr);
    assert_eq!(
        run.protocol_lines(),
        [json!({"action":"status","responseFor":"initialize"})],
        "no status for the hung batch"
    );
    let logged = run
        .stderr
        .lines()
        .find(|l| l.contains("past its deadline"))
        .unwrap_or_else(|| panic!("no deadline error in stderr: {}", run.stderr));
    assert!(logged.contains("shardId-000000000005"), "{logged}");
    assert!(logged.contains(SEQ1), "{logged}");
}
