//! Transcripts: the daemon's lines fed to a runtime in-process, the child's lines checked one by
//! one against the expected ones (framing, the daemon's reading of each line, and the values).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

use kcl::message::{ParsedLine, parse_line};
use kcl::{
    Batch, CheckpointStrategy, Checkpointer, Initialize, RecordProcessor, RetryPolicy, Runtime,
};
use serde_json::Value;

use super::child_line::child_message;

/// Runs `processor` on raw input bytes and returns the child's messages.
///
/// Panics if `run_on` fails, if the output is not framed as `\n{json}\n` per message, or if any
/// output line is not exactly a `status` or `checkpoint` message with its documented keys.
#[track_caller]
pub fn run_input<P: RecordProcessor>(processor: P, retry: RetryPolicy, input: &[u8]) -> Vec<Value> {
    run_input_with(processor, retry, CheckpointStrategy::Manual, input)
}

/// [`run_input`] with the runtime checkpointing by itself per `strategy`.
#[track_caller]
pub fn run_input_with<P: RecordProcessor>(
    processor: P,
    retry: RetryPolicy,
    strategy: CheckpointStrategy,
    input: &[u8],
) -> Vec<Value> {
    let mut output = Vec::new();
    if let Err(error) = Runtime::new(processor)
        .checkpoint_strategy(strategy)
        .checkpoint_retry(retry)
        .failure_policy(kcl::FailurePolicy::stop().backoff(Duration::ZERO, Duration::ZERO))
        .run_on(input, &mut output)
    {
        panic!("run_on failed: {error}");
    }
    child_messages(&output)
}

/// Splits the child's output into messages and checks framing and shape.
#[track_caller]
pub fn child_messages(output: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(output).expect("the child writes UTF-8");
    let mut messages = Vec::new();
    let mut reframed = String::new();
    for line in text.split('\n').filter(|line| !line.is_empty()) {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("child line is not JSON ({error}): {line:?}"));
        assert_child_message_shape(line);
        reframed.push('\n');
        reframed.push_str(line);
        reframed.push('\n');
        messages.push(value);
    }
    assert_eq!(
        reframed, text,
        "every child message must be framed as \"\\n{{json}}\\n\" with nothing else on stdout"
    );
    messages
}

/// A child line must be a message the Java daemon parses: exactly these keys, these types.
/// A child line must be a message the Java daemon reads as a `status` or a `checkpoint`, in the
/// child's form (see [`child_message`]).
#[track_caller]
pub fn assert_child_message_shape(line: &str) {
    if let Err(problem) = child_message(line) {
        panic!("{problem}");
    }
}

/// Sanity checks on the test's own daemon lines: real-length sequence numbers, and (for lines
/// that are daemon messages) exactly the Java daemon's Jackson form.
#[track_caller]
pub fn check_daemon_line(line: &str) {
    if line.len() > 100_000 {
        return; // generated lines; built by `DaemonMessage::to_json`
    }
    let Ok(value) = serde_json::from_str::<Value>(line) else {
        return; // deliberate junk
    };
    fn walk(value: &Value, line: &str) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    if let (true, Some(text)) = (key == "sequenceNumber", value.as_str()) {
                        if text.bytes().all(|b| b.is_ascii_digit()) {
                            assert_eq!(text.len(), 56, "use real-length sequence numbers: {line}");
                        }
                    }
                    walk(value, line);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, line)),
            _ => {}
        }
    }
    walk(&value, line);
    if let ParsedLine::Message(message) = parse_line(line.as_bytes()) {
        assert_eq!(
            message.to_json(),
            line,
            "daemon line is not in the Java daemon's Jackson form"
        );
    }
}

/// Feeds `daemon_lines` (each terminated by `\n`, as the daemon writes them on Linux) and
/// returns the child's messages; checkpoint retries are immediate, 3 attempts.
#[track_caller]
pub fn transcript<P: RecordProcessor>(processor: P, daemon_lines: &[&str]) -> Vec<Value> {
    transcript_with(processor, RetryPolicy::immediate(3), daemon_lines)
}

#[track_caller]
pub fn transcript_with<P: RecordProcessor>(
    processor: P,
    retry: RetryPolicy,
    daemon_lines: &[&str],
) -> Vec<Value> {
    let mut input = String::new();
    for line in daemon_lines {
        check_daemon_line(line);
        input.push_str(line);
        input.push('\n');
    }
    run_input(processor, retry, input.as_bytes())
}

/// The expected child lines as JSON values.
#[track_caller]
pub fn expect(lines: &[&str]) -> Vec<Value> {
    lines
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("expected line is not JSON ({error}): {line}"))
        })
        .collect()
}

/// Compares child messages; on a mismatch prints both sides line by line.
#[track_caller]
pub fn assert_lines(actual: &[Value], expected: &[Value]) {
    if actual == expected {
        return;
    }
    let mut report = String::from("the child's output differs from the expected transcript\n");
    for index in 0..actual.len().max(expected.len()) {
        let show = |value: Option<&Value>| value.map_or("<none>".to_owned(), Value::to_string);
        let (want, got) = (show(expected.get(index)), show(actual.get(index)));
        let mark = if want == got { "  " } else { "!!" };
        let _ = writeln!(
            report,
            "{mark} C< #{index}\n     expected: {want}\n     actual:   {got}"
        );
    }
    panic!("{report}");
}

/// Runs a script of `D> ` (daemon) and `C< ` (child) lines: feeds the `D>` lines and checks that
/// the child wrote exactly the `C<` lines, in order. Checkpoint retries: immediate, 3 attempts.
#[track_caller]
pub fn check<P: RecordProcessor>(processor: P, script: &[&str]) {
    check_with(processor, RetryPolicy::immediate(3), script);
}

/// Like [`check`], with the runtime checkpointing by itself per `strategy`.
#[track_caller]
pub fn check_strategy<P: RecordProcessor>(
    processor: P,
    strategy: CheckpointStrategy,
    script: &[&str],
) {
    let (daemon, child) = split_script(script);
    let mut input = String::new();
    for line in &daemon {
        check_daemon_line(line);
        input.push_str(line);
        input.push('\n');
    }
    let actual = run_input_with(
        processor,
        RetryPolicy::immediate(3),
        strategy,
        input.as_bytes(),
    );
    assert_lines(&actual, &expect(&child));
}

/// Splits a script into the daemon's lines and the child's lines.
pub fn split_script<'a>(script: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut daemon = Vec::new();
    let mut child = Vec::new();
    for entry in script {
        if let Some(line) = entry.strip_prefix("D> ") {
            daemon.push(line);
        } else if let Some(line) = entry.strip_prefix("C< ") {
            child.push(line);
        } else {
            panic!("script lines start with `D> ` or `C< `: {entry:?}");
        }
    }
    (daemon, child)
}

#[track_caller]
pub fn check_with<P: RecordProcessor>(processor: P, retry: RetryPolicy, script: &[&str]) {
    let (daemon, child) = split_script(script);
    let actual = transcript_with(processor, retry, &daemon);
    assert_lines(&actual, &expect(&child));
}

/// Shares a processor with the test, so its state can be read after `run_on` consumed it.
pub struct Shared<P>(pub Rc<RefCell<P>>);

pub fn shared<P>(processor: P) -> (Shared<P>, Rc<RefCell<P>>) {
    let cell = Rc::new(RefCell::new(processor));
    (Shared(cell.clone()), cell)
}

impl<P: RecordProcessor> RecordProcessor for Shared<P> {
    fn initialize(&mut self, shard: &Initialize) -> kcl::Result<()> {
        self.0.borrow_mut().initialize(shard)
    }
    fn process_records(&mut self, batch: &Batch, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
        self.0.borrow_mut().process_records(batch, cp)
    }
    fn lease_lost(&mut self) -> kcl::Result<()> {
        self.0.borrow_mut().lease_lost()
    }
    fn shard_ended(&mut self, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
        self.0.borrow_mut().shard_ended(cp)
    }
    fn shutdown_requested(&mut self, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
        self.0.borrow_mut().shutdown_requested(cp)
    }
}

/// A log shared between a test and the processor it runs.
pub type Log<T> = Rc<RefCell<Vec<T>>>;

pub fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

/// The payloads of a batch as text (lossy), for logs.
pub fn texts(batch: &Batch) -> Vec<String> {
    batch
        .iter()
        .map(|record| String::from_utf8_lossy(record.data()).into_owned())
        .collect()
}
