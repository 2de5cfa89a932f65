//! The examples run as real child processes, fed through real pipes, as the daemon runs them:
//! only protocol lines may reach stdout, the process exits 0 promptly when stdin closes.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;
use support::child_line::is_child_message;
use support::input as lines;
#[cfg(unix)]
use support::status;
#[cfg(unix)]
use support::wire::{NULL_REPLY, one_record_batch};
use support::wire::{SEQ_BASE as SEQ1, seq};

/// Builds an example (once per test binary run) and returns its path.
fn example(name: &str) -> PathBuf {
    example_in_profile(name, "dev")
}

/// Builds an example with a Cargo profile of the workspace (`dev`, or `panic-abort`, which
/// builds into its own folder) and returns its path.
fn example_in_profile(name: &str, profile: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _lock = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--profile",
            profile,
            "--example",
            name,
            "--manifest-path",
            manifest,
        ])
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building example {name} (profile {profile}) failed"
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let folder = if profile == "dev" { "debug" } else { profile };
    target.join(folder).join("examples").join(name)
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
fn run_child(name: &str, input: &[u8]) -> Run {
    run_program(&example(name), name, input)
}

/// Runs the program at `path` with `input` on stdin, closes stdin, and waits (bounded) for it
/// to exit.
fn run_program(path: &std::path::Path, name: &str, input: &[u8]) -> Run {
    let mut child = Command::new(path)
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
        stdin.write_all(input).unwrap();
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
    assert!(protocol.iter().all(is_child_message), "{protocol:?}");
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

/// A binary built with `panic = "abort"` cannot catch a panic in a hook, so the daemon would
/// lose its answer and exit with every shard of the worker: the runtime says so at start, at
/// ERROR, and only in such a build. (Engine audit finding 4; the profile builds into its own
/// folder, so the first run compiles the example's dependencies once more.)
#[test]
fn a_binary_built_with_panic_abort_says_what_that_costs_at_start() {
    const WARNING: &str = "built with panic = \"abort\"";
    let input = lines(&[
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
    ]);
    let abort = run_program(
        &example_in_profile("word_count", "panic-abort"),
        "word_count",
        &input,
    );
    assert_eq!(abort.code, Some(0), "stderr: {}", abort.stderr);
    let warning = abort
        .stderr
        .lines()
        .find(|line| line.contains(WARNING))
        .unwrap_or_else(|| panic!("no panic = abort warning: {}", abort.stderr));
    assert!(warning.contains("ERROR"), "{warning}");
    assert!(warning.contains("every shard of the worker"), "{warning}");
    assert_eq!(abort.stderr.matches(WARNING).count(), 1, "{}", abort.stderr);
    assert_eq!(
        abort.protocol_lines(),
        [json!({"action":"status","responseFor":"initialize"})]
    );

    let unwind = run_child("word_count", &input);
    assert_eq!(unwind.code, Some(0), "stderr: {}", unwind.stderr);
    assert!(!unwind.stderr.contains(WARNING), "{}", unwind.stderr);
}

#[test]
fn word_count_child_runs_a_lifecycle_and_exits_zero_on_eof() {
    let seq2 = seq(1);
    let input = lines(&[
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        &format!(
            r#"{{"action":"processRecords","records":[{{"data":"aGVsbG8gd29ybGQ=","partitionKey":"pk-1","sequenceNumber":"{SEQ1}","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}},{{"data":"/w==","partitionKey":"pk-2","sequenceNumber":"{seq2}","approximateArrivalTimestamp":1700000000500,"subSequenceNumber":0,"action":"record"}}],"millisBehindLatest":0}}"#
        ),
        &format!(
            r#"{{"action":"checkpoint","sequenceNumber":"{seq2}","subSequenceNumber":0,"error":null}}"#
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
            json!({"action":"checkpoint","sequenceNumber":seq2,"subSequenceNumber":0}),
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
    assert!(protocol.iter().all(is_child_message));
    assert!(run.stderr.contains("closed stdin"), "{}", run.stderr);
}

#[test]
fn bundled_sample_session_runs_through_word_count() {
    let session = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/word_count.session"
    ))
    .unwrap();
    let run = run_child("word_count", session.as_bytes());
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let protocol = run.protocol_lines();
    assert!(protocol.iter().all(is_child_message));
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

/// A child driven line by line, as the daemon drives it, with signals sent in between.
#[cfg(unix)]
struct Live {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    stdout: std::sync::Arc<Mutex<String>>,
    stderr: std::sync::Arc<Mutex<String>>,
}

#[cfg(unix)]
impl Live {
    fn start(name: &str, env: &[(&str, &str)]) -> Live {
        use std::io::BufRead;
        let mut child = Command::new(example(name))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .spawn()
            .expect("example starts");
        let (sender, lines) = std::sync::mpsc::channel();
        let stdout = std::sync::Arc::new(Mutex::new(String::new()));
        let stderr = std::sync::Arc::new(Mutex::new(String::new()));
        let (out, all) = (child.stdout.take().unwrap(), stdout.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                all.lock().unwrap().push_str(&format!("{line}\n"));
                if !line.is_empty() {
                    let _ = sender.send(line);
                }
            }
        });
        let (err, log) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Live {
            stdin: child.stdin.take(),
            child,
            lines,
            stdout,
            stderr,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The next protocol line, which must be `expected`.
    fn expect(&self, expected: Value) {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                panic!(
                    "no protocol line; expected {expected}; stderr: {}",
                    self.stderr()
                )
            });
        let value: Value = serde_json::from_str(&line).expect("protocol lines are JSON");
        assert_eq!(value, expected, "stderr: {}", self.stderr());
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The exit code, waiting at most `limit`; `None` if it still runs.
    fn exit_code_within(&mut self, limit: Duration) -> Option<Option<i32>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }
}

#[cfg(unix)]
impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
const INITIALIZE: &str = r#"{"action":"initialize","shardId":"shardId-000000000009","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#;

#[cfg(unix)]
fn batch_of(payload: &str) -> String {
    let data = match payload {
        "stdin" => "c3RkaW4=",
        "hello" => "aGVsbG8=",
        "sleep" => "c2xlZXA=",
        other => panic!("no base64 for {other:?} here"),
    };
    one_record_batch(data, r#""pk-1""#, "1700000000000")
}

#[cfg(unix)]
#[test]
fn stdin_belongs_to_the_runtime_programs_and_hooks_read_end_of_file() {
    let mut child = Live::start("stdout_safety", &[]);
    child.send(INITIALIZE);
    child.expect(status("initialize"));
    child.send(&batch_of("stdin"));
    // The helper program and the handler's own read run now; the reply comes later, as from the
    // daemon: if either could read the daemon's pipe, it would take the reply.
    std::thread::sleep(Duration::from_millis(500));
    child.expect(json!({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}));
    child.send(NULL_REPLY);
    child.expect(status("processRecords"));
    child.send(r#"{"action":"leaseLost"}"#);
    child.expect(status("leaseLost"));
    child.close_stdin();
    assert_eq!(
        child.exit_code_within(Duration::from_secs(10)),
        Some(Some(0))
    );
    let stderr = child.stderr();
    assert!(
        stderr.contains("a child program read from stdin: []"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the handler read 0 bytes from stdin: []"),
        "{stderr}"
    );
    // run_main_with moves the pipes before the processor is built.
    assert!(
        stderr.contains("println while the processor is built"),
        "{stderr}"
    );
    assert!(!child.stdout().contains("println"), "{}", child.stdout());
}

#[cfg(unix)]
#[test]
fn after_sigint_the_child_keeps_serving_the_daemon_until_stdin_closes() {
    let mut child = Live::start("stdout_safety", &[]);
    child.send(INITIALIZE);
    child.expect(status("initialize"));
    child.signal("INT");
    std::thread::sleep(Duration::from_millis(300));
    child.send(&batch_of("hello"));
    child.expect(json!({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}));
    child.send(NULL_REPLY);
    child.expect(status("processRecords"));
    child.signal("TERM");
    child.send(r#"{"action":"shutdownRequested"}"#);
    // The graceful shutdown's checkpoint: what the daemon needs the child alive for.
    child.expect(json!({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}));
    child.send(NULL_REPLY);
    child.expect(status("shutdownRequested"));
    child.send(r#"{"action":"leaseLost"}"#);
    child.expect(status("leaseLost"));
    child.close_stdin();
    assert_eq!(
        child.exit_code_within(Duration::from_secs(10)),
        Some(Some(0))
    );
    let stderr = child.stderr();
    let logged = stderr
        .lines()
        .find(|l| l.contains("received SIGINT"))
        .unwrap_or_else(|| panic!("no log line for the signal: {stderr}"));
    assert!(logged.contains("shardId-000000000009"), "{logged}");
    assert!(stderr.contains("received SIGTERM again"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn a_second_sigint_ends_the_child_at_once() {
    let mut child = Live::start("stdout_safety", &[]);
    child.send(INITIALIZE);
    child.expect(status("initialize"));
    child.signal("INT");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        child.exit_code_within(Duration::ZERO),
        None,
        "one SIGINT must not end it"
    );
    child.signal("INT");
    assert_eq!(
        child.exit_code_within(Duration::from_secs(10)),
        Some(Some(kcl::SECOND_INTERRUPT_EXIT_CODE))
    );
}

#[cfg(unix)]
#[test]
fn after_a_signal_the_child_exits_cleanly_when_the_daemon_sends_nothing() {
    let mut child = Live::start("stdout_safety", &[(kcl::SIGNAL_GRACE_ENV, "300")]);
    child.send(INITIALIZE);
    child.expect(status("initialize"));
    child.signal("TERM");
    // stdin stays open: the daemon is silent.
    assert_eq!(
        child.exit_code_within(Duration::from_secs(10)),
        Some(Some(0))
    );
    let stderr = child.stderr();
    assert!(stderr.contains("no daemon action within 300ms"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn a_signal_during_a_hook_never_ends_the_child_before_the_status() {
    let mut child = Live::start("stdout_safety", &[(kcl::SIGNAL_GRACE_ENV, "100")]);
    child.send(INITIALIZE);
    child.expect(status("initialize"));
    child.send(&batch_of("sleep")); // the handler takes a second
    std::thread::sleep(Duration::from_millis(200));
    child.signal("INT");
    child.expect(json!({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}));
    // The grace period passes while the checkpoint reply is awaited: the child still waits.
    std::thread::sleep(Duration::from_millis(500));
    child.send(NULL_REPLY);
    child.expect(status("processRecords"));
    // Then, with no status owed and the daemon silent, it ends on its own.
    assert_eq!(
        child.exit_code_within(Duration::from_secs(10)),
        Some(Some(0))
    );
}

/// The hook deadline (2 s in this example, then exit 70) times user code only: the daemon's slow
/// answer to a checkpoint the handler asked for is not the handler's time.
#[cfg(unix)]
#[test]
fn the_hook_deadline_does_not_count_the_wait_for_a_checkpoint_reply() {
    let mut child = Live::start("stdout_safety", &[]);
    child.send(INITIALIZE);
    child.expect(status("initialize"));
    child.send(&batch_of("hello"));
    child.expect(json!({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}));
    std::thread::sleep(Duration::from_millis(2500)); // a throttled lease table, say
    assert_eq!(
        child.exit_code_within(Duration::ZERO),
        None,
        "the watchdog ended the process: {}",
        child.stderr()
    );
    child.send(NULL_REPLY);
    child.expect(status("processRecords"));
    child.close_stdin();
    assert_eq!(
        child.exit_code_within(Duration::from_secs(10)),
        Some(Some(0))
    );
    assert!(
        !child.stderr().contains("past its deadline"),
        "{}",
        child.stderr()
    );
}

/// The daemon dies while a handler runs: its stdin and stdout close before the runtime has read
/// the end of stdin. The broken pipe is the end of the run, exit 0 (not a failure).
#[cfg(unix)]
#[test]
fn the_daemon_dying_while_a_handler_runs_ends_the_run_normally() {
    use std::io::BufRead;
    let mut child = Command::new(example("stdout_safety"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("example starts");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    stdin
        .write_all(format!("{INITIALIZE}\n{}\n", batch_of("sleep")).as_bytes())
        .unwrap();
    let mut line = String::new();
    while line.trim().is_empty() {
        line.clear();
        stdout.read_line(&mut line).unwrap();
    }
    assert_eq!(
        serde_json::from_str::<Value>(&line).unwrap(),
        status("initialize")
    );
    // The handler sleeps for a second; the daemon goes away meanwhile.
    drop(stdout);
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "no exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = err.join().unwrap();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stderr.contains("the daemon is gone"), "{stderr}");
}
