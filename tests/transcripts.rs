//! In-process transcript tests: exact daemon lines in, exact child lines out.
//!
//! Each test writes the daemon's lines (`D>`) exactly as the Java MultiLangDaemon's Jackson
//! serializer would (compact, nulls written, record keys in the order `data`, `partitionKey`,
//! `sequenceNumber`, `approximateArrivalTimestamp`, `subSequenceNumber`, `action` last), feeds them
//! all at once to [`kcl::Runtime::run_on`], and compares the child's lines (`C<`) one by one as JSON
//! values (no extra key, no missing key, same order of lines). Because the child reads checkpoint
//! replies synchronously from the same input, a whole conversation, the daemon's checkpoint
//! replies included, can be written up front; the interleaving of `D>` and `C<` lines in the
//! scripts below is for the reader and mirrors `shared/protocol.md` §7.
//!
//! The processors under test checkpoint by themselves, so the runtime runs them with
//! `CheckpointStrategy::Manual` (the strategies have their own transcripts at the end).
//!
//! Sequence numbers have real length (56 digits). The ones written out in the scripts are
//! `seq(0)`, `seq(1)`, ... (see [`seq`]):
//!
//! ```text
//! seq(0) = 49590338271490256608559692538361571095921575989136588898
//! seq(1) = 49590338271490256608559692538361571095921575989136588899
//! seq(2) = 49590338271490256608559692538361571095921575989136588900
//! seq(3) = 49590338271490256608559692538361571095921575989136588901
//! seq(4) = 49590338271490256608559692538361571095921575989136588902
//! ```

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kcl::message::{parse_line, DaemonMessage, ParsedLine, ProcessRecordsMessage, WireRecord};
use kcl::{
    Batch, CheckpointError, CheckpointStrategy, Checkpointer, Initialize, Position,
    RecordProcessor, RetryPolicy, Runtime, StartingPosition,
};
use serde_json::Value;

#[path = "../examples/word_count.rs"]
#[allow(dead_code)]
mod word_count;

#[path = "../examples/byte_count.rs"]
#[allow(dead_code)]
mod byte_count;

use byte_count::ByteCount;
use word_count::WordCount;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// `seq(0)`: a real-length Kinesis sequence number.
const SEQ_BASE: &str = "49590338271490256608559692538361571095921575989136588898";

/// The `n`-th sequence number of these tests: `SEQ_BASE + n`, always 56 digits.
fn seq(n: u64) -> String {
    let (head, tail) = SEQ_BASE.split_at(40);
    let tail: u64 = tail.parse().expect("digits");
    let text = format!("{head}{:016}", tail + n);
    assert_eq!(
        text.len(),
        56,
        "sequence numbers in these tests have 56 digits"
    );
    text
}

/// Runs `processor` on raw input bytes and returns the child's messages.
///
/// Panics if `run_on` fails, if the output is not framed as `\n{json}\n` per message, or if any
/// output line is not exactly a `status` or `checkpoint` message with its documented keys.
#[track_caller]
fn run_input<P: RecordProcessor>(processor: P, retry: RetryPolicy, input: &[u8]) -> Vec<Value> {
    run_input_with(processor, retry, CheckpointStrategy::Manual, input)
}

/// [`run_input`] with the runtime checkpointing by itself per `strategy`.
#[track_caller]
fn run_input_with<P: RecordProcessor>(
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
fn child_messages(output: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(output).expect("the child writes UTF-8");
    let mut messages = Vec::new();
    let mut reframed = String::new();
    for line in text.split('\n').filter(|line| !line.is_empty()) {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("child line is not JSON ({error}): {line:?}"));
        assert_child_message_shape(&value, line);
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
#[track_caller]
fn assert_child_message_shape(value: &Value, line: &str) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("child line is not a JSON object: {line}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    match object.get("action").and_then(Value::as_str) {
        Some("status") => {
            assert_eq!(keys, ["action", "responseFor"], "status keys: {line}");
            assert!(object["responseFor"].is_string(), "responseFor: {line}");
        }
        Some("checkpoint") => {
            assert_eq!(
                keys,
                ["action", "sequenceNumber", "subSequenceNumber"],
                "checkpoint keys: {line}"
            );
            assert!(
                object["sequenceNumber"].is_null() || object["sequenceNumber"].is_string(),
                "sequenceNumber must be a string or null: {line}"
            );
            assert!(
                object["subSequenceNumber"].is_null() || object["subSequenceNumber"].is_u64(),
                "subSequenceNumber must be an integer or null: {line}"
            );
        }
        _ => panic!("child line is neither a status nor a checkpoint: {line}"),
    }
}

/// Sanity checks on the test's own daemon lines: real-length sequence numbers, and (for lines
/// that are daemon messages) exactly the Java daemon's Jackson form.
#[track_caller]
fn check_daemon_line(line: &str) {
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
fn transcript<P: RecordProcessor>(processor: P, daemon_lines: &[&str]) -> Vec<Value> {
    transcript_with(processor, RetryPolicy::immediate(3), daemon_lines)
}

#[track_caller]
fn transcript_with<P: RecordProcessor>(
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
fn expect(lines: &[&str]) -> Vec<Value> {
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
fn assert_lines(actual: &[Value], expected: &[Value]) {
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
fn check<P: RecordProcessor>(processor: P, script: &[&str]) {
    check_with(processor, RetryPolicy::immediate(3), script);
}

/// Like [`check`], with the runtime checkpointing by itself per `strategy`.
#[track_caller]
fn check_strategy<P: RecordProcessor>(processor: P, strategy: CheckpointStrategy, script: &[&str]) {
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
fn split_script<'a>(script: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
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
fn check_with<P: RecordProcessor>(processor: P, retry: RetryPolicy, script: &[&str]) {
    let (daemon, child) = split_script(script);
    let actual = transcript_with(processor, retry, &daemon);
    assert_lines(&actual, &expect(&child));
}

/// Shares a processor with the test, so its state can be read after `run_on` consumed it.
struct Shared<P>(Rc<RefCell<P>>);

fn shared<P>(processor: P) -> (Shared<P>, Rc<RefCell<P>>) {
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
type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

/// The payloads of a batch as text (lossy), for logs.
fn texts(batch: &Batch) -> Vec<String> {
    batch
        .iter()
        .map(|record| String::from_utf8_lossy(record.data()).into_owned())
        .collect()
}

/// Standard base64 with padding, as Jackson writes `byte[]`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(char::from(
                    ALPHABET[(group >> (18 - 6 * index)) as usize & 63],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift64), one stream per seed.
fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// A record as the daemon writes it.
fn wire_record(payload: &[u8], key: String, sequence: String, arrival_millis: i64) -> WireRecord {
    WireRecord {
        data: Some(base64(payload)),
        partition_key: key,
        sequence_number: sequence,
        approximate_arrival_timestamp: Some(arrival_millis),
        sub_sequence_number: Some(0),
    }
}

fn process_records_line(records: Vec<WireRecord>, millis_behind_latest: Option<u64>) -> String {
    DaemonMessage::ProcessRecords(ProcessRecordsMessage {
        records,
        millis_behind_latest,
    })
    .to_json()
}

#[test]
fn harness_self_check() {
    assert_eq!(seq(0), SEQ_BASE);
    assert_eq!(
        seq(2),
        "49590338271490256608559692538361571095921575989136588900"
    );
    assert_eq!(
        seq(10_000),
        "49590338271490256608559692538361571095921575989136598898"
    );
    // The encoder agrees with the Jackson output quoted in protocol.md.
    assert_eq!(base64(b"hello"), "aGVsbG8=");
    assert_eq!(base64(&[0x00, 0xff, 0x0a, 0x0d, 0x00, 0x22]), "AP8KDQAi");
    assert_eq!(base64("héllo\nwörld".as_bytes()), "aMOpbGxvCnfDtnJsZA==");
    assert_eq!(base64(b""), "");
    assert_eq!(base64(&vec![7u8; 1 << 20]).len(), 1_398_104);
    assert_ne!(pseudo_random_bytes(1, 64), pseudo_random_bytes(2, 64));
}

// ---------------------------------------------------------------------------------------------
// T1 - T15 (protocol.md §7)
// ---------------------------------------------------------------------------------------------

#[test]
fn t1_normal_lifecycle() {
    let seen = log::<String>();
    let handler_log = seen.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        handler_log.borrow_mut().extend(texts(batch));
        cp.checkpoint()?;
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"},{"data":"d29ybGQ=","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000500,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
    assert_eq!(*seen.borrow(), ["hello", "world"]);
}

#[test]
fn t2_checkpoint_at_sequence_and_sub_sequence() {
    let (processor, state) = shared(WordCount::default());
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"ZXZ0LTA=","partitionKey":"u-a","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"ZXZ0LTE=","partitionKey":"u-b","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":1,"action":"record"},{"data":"ZXZ0LTI=","partitionKey":"u-c","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":2,"action":"record"}],"millisBehindLatest":1200}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":2}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":2,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
    let state = state.borrow();
    assert_eq!((state.records, state.total_words, state.skipped), (3, 3, 0));
}

#[test]
fn t3_throttling_then_success_is_retried() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"ThrottlingException"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
}

#[test]
fn t3_dependency_exception_is_retried_like_throttling() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"KinesisClientLibDependencyException"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"KinesisClientLibDependencyException"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
}

#[test]
fn t3_throttled_on_every_attempt_gives_up_and_still_sends_the_status() {
    // RetryPolicy::immediate(3): three requests, then word_count logs the error and returns Ok.
    let (processor, state) = shared(WordCount::default());
    check_with(
        processor,
        RetryPolicy::immediate(3),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"ThrottlingException"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"ThrottlingException"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"ThrottlingException"}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
    assert_eq!(state.borrow().records, 1, "the batch was still counted");
}

#[test]
fn t3_retry_budget_is_max_attempts_requests() {
    for attempts in [1u32, 2, 4, 6] {
        let errors = log::<String>();
        let handler_errors = errors.clone();
        let processor = kcl::from_fn(move |batch, cp| {
            if let Err(error) = cp.checkpoint_at(batch.last().expect("one record")) {
                assert!(error.is_retryable());
                handler_errors.borrow_mut().push(format!("{error:?}"));
            }
            Ok(())
        });
        let s0 = seq(0);
        let record = format!(
            r#"{{"action":"processRecords","records":[{{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"{s0}","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}}],"millisBehindLatest":0}}"#
        );
        let request =
            format!(r#"{{"action":"checkpoint","sequenceNumber":"{s0}","subSequenceNumber":0}}"#);
        let throttled = format!(
            r#"{{"action":"checkpoint","sequenceNumber":"{s0}","subSequenceNumber":0,"error":"ThrottlingException"}}"#
        );
        // One throttled reply more than the budget: the surplus one arrives unasked and is ignored.
        let mut daemon = vec![record.as_str()];
        daemon.extend(std::iter::repeat_n(
            throttled.as_str(),
            attempts as usize + 1,
        ));
        daemon.push(r#"{"action":"leaseLost"}"#);
        let actual = transcript_with(processor, RetryPolicy::immediate(attempts), &daemon);

        let mut wanted = vec![request.as_str(); attempts as usize];
        wanted.push(r#"{"action":"status","responseFor":"processRecords"}"#);
        wanted.push(r#"{"action":"status","responseFor":"leaseLost"}"#);
        assert_lines(&actual, &expect(&wanted));
        assert_eq!(*errors.borrow(), ["Throttling"], "attempts = {attempts}");
    }
}

#[test]
fn t4_shutdown_exception_is_not_retried() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"ShutdownException"}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
}

#[test]
fn t4_shutdown_exception_is_typed_and_later_checkpoints_fail_locally() {
    #[derive(Default)]
    struct Recorder {
        outcomes: Log<String>,
    }
    impl RecordProcessor for Recorder {
        fn process_records(&mut self, batch: &Batch, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
            let mut outcomes = self.outcomes.borrow_mut();
            match cp.checkpoint_at(batch.last().expect("one record")) {
                Ok(()) => outcomes.push("ok".into()),
                Err(error) => outcomes.push(format!(
                    "checkpoint_at: {error:?} lease_lost={} retryable={}",
                    error.is_lease_lost(),
                    error.is_retryable()
                )),
            }
            if cp.is_lease_lost() {
                let null = cp.checkpoint().expect_err("the lease is gone");
                outcomes.push(format!("checkpoint: {null:?}"));
            }
            Ok(())
        }
        fn shutdown_requested(&mut self, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
            let error = cp.checkpoint_handled().expect_err("the lease is gone");
            self.outcomes
                .borrow_mut()
                .push(format!("shutdown_requested: {error:?}"));
            Ok(())
        }
    }
    let recorder = Recorder::default();
    let outcomes = recorder.outcomes.clone();
    check(
        recorder,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"ShutdownException"}"#,
            // The follow-up null checkpoint in the same handler is refused locally: no line.
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // Later checkpoints on this shard write nothing either.
            r#"D> {"action":"processRecords","records":[{"data":"d29ybGQ=","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000500,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shutdownRequested"}"#,
            r#"C< {"action":"status","responseFor":"shutdownRequested"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
    assert_eq!(
        *outcomes.borrow(),
        [
            "checkpoint_at: Shutdown lease_lost=true retryable=false",
            "checkpoint: Shutdown",
            "checkpoint_at: Shutdown lease_lost=true retryable=false",
            "checkpoint: Shutdown",
            "shutdown_requested: Shutdown",
        ]
    );
}

#[test]
fn t4_illegal_argument_exception_is_not_retried() {
    let errors = log::<String>();
    let handler_errors = errors.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        if let Err(error) = cp.checkpoint_at(batch.last().expect("one record")) {
            handler_errors.borrow_mut().push(format!(
                "{error:?} lease_lost={} retryable={}",
                error.is_lease_lost(),
                error.is_retryable()
            ));
        }
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"IllegalArgumentException"}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // Unlike ShutdownException, the shard can still checkpoint afterwards.
            r#"D> {"action":"processRecords","records":[{"data":"d29ybGQ=","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000500,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
    assert_eq!(
        *errors.borrow(),
        ["IllegalArgument lease_lost=false retryable=false"]
    );
}

#[test]
fn t4_illegal_argument_exception_with_word_count() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"IllegalArgumentException"}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
}

/// Records what `initialize` announced and what the checkpointer reports later.
#[derive(Default)]
struct InitProbe {
    initialized: Log<(String, StartingPosition)>,
    last_checkpoint_seen: Log<Option<Position>>,
}

impl RecordProcessor for InitProbe {
    fn initialize(&mut self, shard: &Initialize) -> kcl::Result<()> {
        self.initialized
            .borrow_mut()
            .push((shard.shard_id.clone(), shard.starting_position.clone()));
        Ok(())
    }
    fn process_records(&mut self, _batch: &Batch, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
        self.last_checkpoint_seen
            .borrow_mut()
            .push(cp.last_checkpoint().cloned());
        Ok(())
    }
}

#[test]
fn t5_initialize_has_no_checkpointer_and_exposes_the_resumed_position() {
    // This SDK hands `initialize` no checkpointer, so the checkpoint attempt of protocol.md T5 is
    // unrepresentable: the only output is the status.
    let probe = InitProbe::default();
    let (initialized, seen) = (
        probe.initialized.clone(),
        probe.last_checkpoint_seen.clone(),
    );
    check(
        probe,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000002","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
    let resumed = Position::new(seq(0), 0);
    assert_eq!(
        *initialized.borrow(),
        [(
            "shardId-000000000002".to_owned(),
            StartingPosition::Checkpoint(resumed.clone())
        )]
    );
    assert_eq!(*seen.borrow(), [Some(resumed)]);
}

#[test]
fn t5_initialize_positions_inside_an_aggregate_and_sentinels() {
    let probe = InitProbe::default();
    let initialized = probe.initialized.clone();
    check(
        probe,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000003","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":3}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
        ],
    );
    assert_eq!(
        initialized.borrow()[0].1,
        StartingPosition::Checkpoint(Position::new(seq(0), 3))
    );

    for (sentinel, expected) in [
        ("TRIM_HORIZON", StartingPosition::TrimHorizon),
        ("LATEST", StartingPosition::Latest),
        ("AT_TIMESTAMP", StartingPosition::AtTimestamp),
    ] {
        let probe = InitProbe::default();
        let initialized = probe.initialized.clone();
        let line = format!(
            r#"{{"action":"initialize","shardId":"shardId-000000000004","sequenceNumber":"{sentinel}","subSequenceNumber":0}}"#
        );
        let out = transcript(probe, &[&line]);
        assert_lines(
            &out,
            &expect(&[r#"{"action":"status","responseFor":"initialize"}"#]),
        );
        assert_eq!(initialized.borrow()[0].1, expected);
    }
}

#[test]
fn t6_lease_lost_is_answered_with_a_status_only() {
    let lease_lost_calls = Rc::new(RefCell::new(0));
    struct Probe(Rc<RefCell<u32>>);
    impl RecordProcessor for Probe {
        fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            Ok(())
        }
        fn lease_lost(&mut self) -> kcl::Result<()> {
            *self.0.borrow_mut() += 1;
            Ok(())
        }
    }
    check(
        Probe(lease_lost_calls.clone()),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
    assert_eq!(*lease_lost_calls.borrow(), 1);

    // EOF right after the leaseLost status: run_on returns Ok and nothing follows the status.
    let input = concat!(
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"leaseLost"}"#,
        "\n",
    );
    let mut output = Vec::new();
    let result = Runtime::new(WordCount::default())
        .checkpoint_retry(RetryPolicy::immediate(3))
        .run_on(input.as_bytes(), &mut output);
    assert!(result.is_ok(), "run_on at EOF: {result:?}");
    assert_eq!(
        String::from_utf8(output).unwrap(),
        "\n{\"action\":\"status\",\"responseFor\":\"initialize\"}\n\n{\"action\":\"status\",\"responseFor\":\"leaseLost\"}\n"
    );
}

#[test]
fn t7_shard_ended_checkpoints_null() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
}

#[test]
fn t7_shard_ended_shutdown_exception_is_not_retried() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ShutdownException"}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
}

/// A processor whose `shard_ended` forgets to checkpoint.
struct ForgetfulShardEnd;

impl RecordProcessor for ForgetfulShardEnd {
    fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
        Ok(())
    }
    fn shard_ended(&mut self, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
        Ok(())
    }
}

#[test]
fn t7_runtime_checkpoints_the_shard_end_when_the_handler_forgot() {
    check(
        ForgetfulShardEnd,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
    // The runtime's own checkpoint is not retried on ShutdownException either.
    check(
        ForgetfulShardEnd,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ShutdownException"}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
}

#[test]
fn t8_shutdown_requested_then_process_records_then_lease_lost() {
    let (processor, state) = shared(WordCount::default());
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            // Everything delivered (nothing yet) was handled: checkpoint_handled() sends a null checkpoint.
            r#"D> {"action":"shutdownRequested"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shutdownRequested"}"#,
            // The child keeps running: a batch between shutdownRequested and leaseLost is handled.
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8gd29ybGQ=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
    assert_eq!(state.borrow().total_words, 2);
}

#[test]
fn t9_legacy_shutdown_terminate_checkpoints_like_shard_ended() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"shutdown","reason":"TERMINATE"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shutdown"}"#,
        ],
    );
}

#[test]
fn t10_legacy_shutdown_zombie_is_a_lost_lease() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shutdown","reason":"ZOMBIE"}"#,
            r#"C< {"action":"status","responseFor":"shutdown"}"#,
        ],
    );
}

#[test]
fn t11_empty_batches_and_null_lag() {
    let (processor, state) = shared(WordCount::default());
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[],"millisBehindLatest":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
    assert_eq!(
        state.borrow().batches,
        2,
        "the handler saw both empty batches"
    );
}

#[test]
fn t11_null_checkpoint_on_an_empty_batch_is_sent() {
    let lags = log::<(usize, Option<u64>)>();
    let handler_lags = lags.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        handler_lags
            .borrow_mut()
            .push((batch.len(), batch.millis_behind_latest()));
        cp.checkpoint()?;
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[],"millisBehindLatest":null}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
    assert_eq!(*lags.borrow(), [(0, Some(0)), (0, None)]);
}

/// What a handler saw of one record.
#[derive(Clone, Debug, PartialEq)]
struct SeenRecord {
    data: Vec<u8>,
    key: String,
    position: Position,
    arrival: Option<i64>,
}

/// A processor that records every record it is given and never checkpoints.
fn record_keeper() -> (impl RecordProcessor, Log<SeenRecord>) {
    let seen = log::<SeenRecord>();
    let handler_seen = seen.clone();
    let processor = kcl::from_fn(move |batch, _cp| {
        handler_seen
            .borrow_mut()
            .extend(batch.iter().map(|record| SeenRecord {
                data: record.data().to_vec(),
                key: record.partition_key().to_owned(),
                position: record.position().clone(),
                arrival: record.approximate_arrival_millis(),
            }));
        Ok(())
    });
    (processor, seen)
}

#[test]
fn t12_unicode_and_binary_payloads() {
    let (processor, seen) = record_keeper();
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"AP8KDQAi","partitionKey":"ключ-🔑","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000002000,"subSequenceNumber":0,"action":"record"},{"data":"aMOpbGxvCnfDtnJsZA==","partitionKey":"tab\tkey\u0001","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000002001,"subSequenceNumber":0,"action":"record"},{"data":"","partitionKey":"empty","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000002002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":5}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
    assert_eq!(
        *seen.borrow(),
        [
            SeenRecord {
                data: vec![0x00, 0xff, 0x0a, 0x0d, 0x00, 0x22],
                key: "ключ-🔑".into(),
                position: Position::new(seq(0), 0),
                arrival: Some(1_700_000_002_000),
            },
            SeenRecord {
                data: "héllo\nwörld".as_bytes().to_vec(),
                key: "tab\tkey\u{1}".into(),
                position: Position::new(seq(1), 0),
                arrival: Some(1_700_000_002_001),
            },
            SeenRecord {
                data: Vec::new(),
                key: "empty".into(),
                position: Position::new(seq(2), 0),
                arrival: Some(1_700_000_002_002),
            },
        ]
    );
}

#[test]
fn t12_word_count_on_unicode_and_binary_payloads() {
    let (processor, state) = shared(WordCount::default());
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"AP8KDQAi","partitionKey":"ключ-🔑","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000002000,"subSequenceNumber":0,"action":"record"},{"data":"aMOpbGxvCnfDtnJsZA==","partitionKey":"tab\tkey\u0001","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000002001,"subSequenceNumber":0,"action":"record"},{"data":"","partitionKey":"empty","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000002002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":5}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
    let state = state.borrow();
    // 00 FF ... is not UTF-8 (skipped); "héllo\nwörld" has two words; "" has none.
    assert_eq!((state.records, state.skipped, state.total_words), (2, 1, 2));
}

#[test]
fn t12_partition_key_mangled_by_a_non_utf8_jvm_locale() {
    // JDK <= 17 with a non-UTF-8 locale writes unmappable characters as '?': the key arrives as
    // "ключ-??" (the emoji's UTF-16 surrogate pair became "??"), or with LANG=C as "????-??".
    let (processor, seen) = record_keeper();
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"AP8KDQAi","partitionKey":"ключ-??","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000002000,"subSequenceNumber":0,"action":"record"},{"data":"aMOpbGxvCnfDtnJsZA==","partitionKey":"????-??","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000002001,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":5}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
    let seen = seen.borrow();
    let keys: Vec<&str> = seen.iter().map(|record| record.key.as_str()).collect();
    assert_eq!(keys, ["ключ-??", "????-??"]);
    assert_eq!(seen[0].data, [0x00, 0xff, 0x0a, 0x0d, 0x00, 0x22]);
    assert_eq!(seen[1].data, "héllo\nwörld".as_bytes());
}

#[test]
fn t12_invalid_utf8_bytes_in_a_partition_key_do_not_crash() {
    let (processor, seen) = record_keeper();
    let mut input = Vec::new();
    input.extend_from_slice(br#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#);
    input.push(b'\n');
    input.extend_from_slice(
        br#"{"action":"processRecords","records":[{"data":"aGk=","partitionKey":"bad-"#,
    );
    input.extend_from_slice(&[0xff, 0xc3, 0x28, 0xe2, 0x82]); // not UTF-8
    input.extend_from_slice(br#"-key","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000002000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":5}"#);
    input.push(b'\n');
    input.extend_from_slice(br#"{"action":"leaseLost"}"#);
    input.push(b'\n');
    let out = run_input(processor, RetryPolicy::immediate(3), &input);
    assert_lines(
        &out,
        &expect(&[
            r#"{"action":"status","responseFor":"initialize"}"#,
            r#"{"action":"status","responseFor":"processRecords"}"#,
            r#"{"action":"status","responseFor":"leaseLost"}"#,
        ]),
    );
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].data, b"hi");
    assert!(
        seen[0].key.starts_with("bad-")
            && seen[0].key.ends_with("-key")
            && seen[0].key.contains('\u{fffd}'),
        "invalid bytes are replaced by U+FFFD: {:?}",
        seen[0].key
    );
    assert_eq!(seen[0].position, Position::new(seq(0), 0));
}

#[test]
fn t13_large_batch_of_10000_records() {
    const RECORDS: u64 = 10_000;
    const SIZE: usize = 1_000;
    let records: Vec<WireRecord> = (1..=RECORDS)
        .map(|n| {
            wire_record(
                &pseudo_random_bytes(n, SIZE),
                format!("pk-{n}"),
                seq(n),
                1_700_000_000_000 + n as i64,
            )
        })
        .collect();
    let batch = process_records_line(records, Some(86_400_000));
    assert!(batch.len() > 13_000_000, "a ~14 MB line: {}", batch.len());
    let last = seq(RECORDS);
    let reply = format!(
        r#"{{"action":"checkpoint","sequenceNumber":"{last}","subSequenceNumber":0,"error":null}}"#
    );

    // Every payload, key and position arrives intact.
    let (mut counter, totals) = shared(ByteCount::default());
    let mismatches = log::<String>();
    let handler_mismatches = mismatches.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        for (index, record) in batch.iter().enumerate() {
            let n = index as u64 + 1;
            if record.data() != pseudo_random_bytes(n, SIZE).as_slice()
                || record.partition_key() != format!("pk-{n}")
                || *record.position() != Position::new(seq(n), 0)
            {
                handler_mismatches.borrow_mut().push(format!("record {n}"));
            }
        }
        counter.process_records(batch, cp)
    });
    let out = transcript(
        processor,
        &[
            r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            &batch,
            &reply,
            r#"{"action":"leaseLost"}"#,
        ],
    );
    let request =
        format!(r#"{{"action":"checkpoint","sequenceNumber":"{last}","subSequenceNumber":0}}"#);
    assert_lines(
        &out,
        &expect(&[
            r#"{"action":"status","responseFor":"initialize"}"#,
            &request,
            r#"{"action":"status","responseFor":"processRecords"}"#,
            r#"{"action":"status","responseFor":"leaseLost"}"#,
        ]),
    );
    assert!(mismatches.borrow().is_empty(), "{:?}", mismatches.borrow());
    let totals = totals.borrow();
    assert_eq!((totals.records, totals.bytes), (10_000, 10_000_000));
}

#[test]
fn t13_one_mib_record() {
    let payload = pseudo_random_bytes(42, 1 << 20);
    let record = wire_record(&payload, "big".into(), seq(0), 1_700_000_000_000);
    assert_eq!(record.data.as_ref().map(String::len), Some(1_398_104));
    let batch = process_records_line(vec![record], Some(0));

    let (processor, seen) = record_keeper();
    let out = transcript(processor, &[&batch]);
    assert_lines(
        &out,
        &expect(&[r#"{"action":"status","responseFor":"processRecords"}"#]),
    );
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].data == payload, "the 1 MiB payload arrived altered");

    let (processor, totals) = shared(ByteCount::default());
    let reply = format!(
        r#"{{"action":"checkpoint","sequenceNumber":"{}","subSequenceNumber":0,"error":null}}"#,
        seq(0)
    );
    let request = format!(
        r#"{{"action":"checkpoint","sequenceNumber":"{}","subSequenceNumber":0}}"#,
        seq(0)
    );
    let out = transcript(processor, &[&batch, &reply]);
    assert_lines(
        &out,
        &expect(&[
            &request,
            r#"{"action":"status","responseFor":"processRecords"}"#,
        ]),
    );
    assert_eq!(totals.borrow().bytes, 1 << 20);
}

#[test]
fn t14_junk_input_lines_are_skipped_without_output() {
    check(
        WordCount::default(),
        &[
            "D> ",
            "D> DEBUG hello",
            r#"D> {"foo":1}"#,
            "D>    \t  ",
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            "D> ",
            "D> DEBUG hello",
            r#"D> {"foo":1}"#,
            r#"D> {"action":5}"#,
            "D> [1,2,3]",
            "D> null",
            "D> {not json",
            "D>  ",
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            "D> DEBUG hello",
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
            "D> ",
            "D> DEBUG bye",
        ],
    );
}

#[test]
fn t14_junk_only_input_produces_no_output() {
    let out = transcript(
        WordCount::default(),
        &["", "DEBUG hello", r#"{"foo":1}"#, "  \t ", "[]"],
    );
    assert_lines(&out, &[]);
}

#[test]
fn t15e_panicking_handler_is_answered_and_the_shard_stalls() {
    let calls = log::<Vec<String>>();
    let handler_calls = calls.clone();
    let processor = kcl::from_fn(move |batch, _cp| {
        let payloads = texts(batch);
        handler_calls.borrow_mut().push(payloads.clone());
        if payloads.iter().any(|p| p == "boom") {
            panic!("handler exploded on purpose");
        }
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            // seq(0), seq(1): handled (this handler never checkpoints by itself).
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"},{"data":"Yg==","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // seq(2) "boom": the handler panics; only the status is written.
            r#"D> {"action":"processRecords","records":[{"data":"Ym9vbQ==","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // seq(3): the shard is stalled; the handler is not called.
            r#"D> {"action":"processRecords","records":[{"data":"Yw==","partitionKey":"pk-4","sequenceNumber":"49590338271490256608559692538361571095921575989136588901","approximateArrivalTimestamp":1700000000003,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // The default shutdown_requested checkpoints the last handled record, seq(1), not past it.
            r#"D> {"action":"shutdownRequested"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shutdownRequested"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
    // The panicking batch is tried 3 times (the default failure policy), then the shard stalls.
    assert_eq!(
        *calls.borrow(),
        [vec!["a", "b"], vec!["boom"], vec!["boom"], vec!["boom"]]
    );
}

#[test]
fn t15e_after_a_failure_nothing_past_the_last_handled_record_can_be_checkpointed() {
    /// Panics on "boom"; at shutdown tries to checkpoint too far, then what is allowed.
    struct Greedy {
        outcomes: Log<String>,
    }
    impl RecordProcessor for Greedy {
        fn process_records(&mut self, batch: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            if texts(batch).iter().any(|p| p == "boom") {
                panic!("handler exploded on purpose");
            }
            Ok(())
        }
        fn shutdown_requested(&mut self, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
            let mut outcomes = self.outcomes.borrow_mut();
            let describe = |result: Result<(), CheckpointError>| match result {
                Ok(()) => "ok".to_owned(),
                Err(CheckpointError::PastFailure { .. }) => "refused: past failure".to_owned(),
                Err(other) => format!("{other:?}"),
            };
            outcomes.push(describe(cp.checkpoint()));
            outcomes.push(describe(cp.checkpoint_position(&Position::new(seq(2), 0))));
            outcomes.push(describe(cp.checkpoint_raw(&seq(3), None)));
            outcomes.push(format!("last_handled={:?}", cp.last_handled()));
            outcomes.push(describe(cp.checkpoint_handled()));
            Ok(())
        }
    }
    let outcomes = log::<String>();
    check(
        Greedy {
            outcomes: outcomes.clone(),
        },
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"},{"data":"Yg==","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"Ym9vbQ==","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"},{"data":"Yw==","partitionKey":"pk-4","sequenceNumber":"49590338271490256608559692538361571095921575989136588901","approximateArrivalTimestamp":1700000000003,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shutdownRequested"}"#,
            // Only the allowed checkpoint reaches the daemon; the refused ones write nothing.
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shutdownRequested"}"#,
        ],
    );
    assert_eq!(
        *outcomes.borrow(),
        [
            "refused: past failure".to_owned(),
            "refused: past failure".to_owned(),
            "refused: past failure".to_owned(),
            format!("last_handled={:?}", Some(Position::new(seq(1), 0))),
            "ok".to_owned(),
        ]
    );
}

#[test]
fn t15e_shard_end_is_not_checkpointed_after_a_failure() {
    // After a failed batch the default shard_ended checkpoints only what was handled, and the
    // runtime does not checkpoint the end of the shard (that would lose the failed records).
    let processor = kcl::from_fn(|batch, _cp| {
        if texts(batch).iter().any(|p| p == "boom") {
            return Err(kcl::Error::msg("cannot handle boom"));
        }
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"Ym9vbQ==","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // The default shard_ended checkpoints what was handled (seq(0)), never SHARD_END.
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Extras
// ---------------------------------------------------------------------------------------------

#[test]
fn crlf_line_endings_give_the_same_output_as_lf() {
    let daemon = [
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        r#"{"action":"processRecords","records":[{"data":"aGVsbG8gd29ybGQ=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        r#"{"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
        r#"{"action":"processRecords","records":[],"millisBehindLatest":null}"#,
        r#"{"action":"shardEnded"}"#,
        r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
    ];
    let expected = expect(&[
        r#"{"action":"status","responseFor":"initialize"}"#,
        r#"{"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
        r#"{"action":"status","responseFor":"processRecords"}"#,
        r#"{"action":"status","responseFor":"processRecords"}"#,
        r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
        r#"{"action":"status","responseFor":"shardEnded"}"#,
    ]);
    let (processor, lf_state) = shared(WordCount::default());
    let lf = transcript(processor, &daemon);
    assert_lines(&lf, &expected);

    let crlf_input: String = daemon.iter().map(|line| format!("{line}\r\n")).collect();
    let (processor, crlf_state) = shared(WordCount::default());
    let crlf = run_input(processor, RetryPolicy::immediate(3), crlf_input.as_bytes());
    assert_lines(&crlf, &expected);
    assert_eq!(crlf, lf);
    assert_eq!(crlf_state.borrow().total_words, 2);
    assert_eq!(lf_state.borrow().total_words, 2);
}

#[test]
fn invalid_utf8_payload_is_skipped_by_word_count_and_the_batch_end_checkpointed() {
    let (processor, state) = shared(WordCount::default());
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            // "hello world", bytes FF FE FD (not UTF-8), "one two three"
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8gd29ybGQ=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"},{"data":"//79","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"},{"data":"b25lIHR3byB0aHJlZQ==","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
    let state = state.borrow();
    assert_eq!((state.records, state.skipped, state.total_words), (2, 1, 5));
}

#[test]
fn unknown_action_is_answered_with_a_status() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"wave"}"#,
            r#"C< {"action":"status","responseFor":"wave"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
}

#[test]
fn eof_while_waiting_for_a_checkpoint_reply_ends_promptly() {
    // The daemon closes stdin after the checkpoint request. The checkpoint fails with
    // CheckpointError::ChannelClosed (not retryable, so no backoff even with the default policy);
    // word_count logs it and returns Ok, and the runtime, as always, answers the action with its
    // status before the main loop sees EOF and returns Ok. So the output ends with the request
    // followed by the status (which a real daemon, gone already, never reads).
    let input = concat!(
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        "\n",
    );
    let expected = expect(&[
        r#"{"action":"status","responseFor":"initialize"}"#,
        r#"{"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
        r#"{"action":"status","responseFor":"processRecords"}"#,
    ]);

    let started = Instant::now();
    let mut output = Vec::new();
    let result = Runtime::new(WordCount::default())
        .checkpoint_retry(RetryPolicy::default())
        .run_on(input.as_bytes(), &mut output);
    assert!(result.is_ok(), "run_on: {result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_lines(&child_messages(&output), &expected);

    // A handler that propagates the error with `?` fails its batch; the status is still written.
    let errors = log::<String>();
    let handler_errors = errors.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        let result = cp.checkpoint_at(batch.last().expect("one record"));
        handler_errors.borrow_mut().push(format!("{result:?}"));
        result?;
        Ok(())
    });
    let started = Instant::now();
    let mut output = Vec::new();
    let result = Runtime::new(processor)
        .checkpoint_retry(RetryPolicy::default())
        .run_on(input.as_bytes(), &mut output);
    assert!(result.is_ok(), "run_on: {result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_lines(&child_messages(&output), &expected);
    assert_eq!(*errors.borrow(), ["Err(ChannelClosed)"]);
}

#[test]
fn handler_error_is_answered_and_the_shard_stalls() {
    let calls = log::<Vec<String>>();
    let handler_calls = calls.clone();
    let processor = kcl::from_fn(move |batch, _cp| {
        let payloads = texts(batch);
        handler_calls.borrow_mut().push(payloads.clone());
        if payloads.iter().any(|p| p == "fail") {
            return Err(kcl::Error::msg("downstream unavailable"));
        }
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"ZmFpbA==","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"Yw==","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shutdownRequested"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shutdownRequested"}"#,
        ],
    );
    // The failing batch is tried 3 times (the default failure policy), then the shard stalls.
    assert_eq!(
        *calls.borrow(),
        [vec!["a"], vec!["fail"], vec!["fail"], vec!["fail"]]
    );
}

#[test]
fn strict_json_extraction_failure_is_answered_and_the_shard_stalls() {
    #[derive(serde::Deserialize)]
    struct Order {
        id: u64,
    }
    let ids = log::<u64>();
    let handler_ids = ids.clone();
    let calls = Rc::new(RefCell::new(0));
    let handler_calls = calls.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        *handler_calls.borrow_mut() += 1;
        for kcl::Json(order) in batch.extract::<kcl::Json<Order>>()? {
            handler_ids.borrow_mut().push(order.id);
        }
        if let Some(last) = batch.last() {
            cp.checkpoint_at(last)?;
        }
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            // {"id":1}
            r#"D> {"action":"processRecords","records":[{"data":"eyJpZCI6MX0=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // {"id":2}, then "not json": extract fails before any checkpoint.
            r#"D> {"action":"processRecords","records":[{"data":"eyJpZCI6Mn0=","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"},{"data":"bm90IGpzb24=","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // {"id":3}: stalled, handler not called.
            r#"D> {"action":"processRecords","records":[{"data":"eyJpZCI6M30=","partitionKey":"pk-4","sequenceNumber":"49590338271490256608559692538361571095921575989136588901","approximateArrivalTimestamp":1700000000003,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // seq(0) is already checkpointed and nothing past it may be: nothing to send.
            r#"D> {"action":"shutdownRequested"}"#,
            r#"C< {"action":"status","responseFor":"shutdownRequested"}"#,
        ],
    );
    assert_eq!(*ids.borrow(), [1]);
    // The first batch, then 3 attempts of the undecodable one (the default failure policy).
    assert_eq!(*calls.borrow(), 4);
}

#[test]
fn invalid_base64_is_answered_without_calling_the_handler_and_the_shard_stalls() {
    let calls = log::<Vec<String>>();
    let handler_calls = calls.clone();
    let processor = kcl::from_fn(move |batch, _cp| {
        handler_calls.borrow_mut().push(texts(batch));
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"Yg==","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"},{"data":"%%%%","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"Yw==","partitionKey":"pk-4","sequenceNumber":"49590338271490256608559692538361571095921575989136588901","approximateArrivalTimestamp":1700000000003,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shutdownRequested"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shutdownRequested"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
    assert_eq!(*calls.borrow(), [vec!["a"]]);
}

#[test]
fn unsolicited_checkpoint_reply_is_ignored() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"ThrottlingException"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // A duplicate reply after the status answers nothing.
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
}

#[test]
fn junk_while_waiting_for_a_checkpoint_reply_is_skipped() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            "D> DEBUG the daemon is thinking",
            "D> ",
            "D>   ",
            r#"D> {"foo":1}"#,
            "D> {not json",
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"ThrottlingException"}"#,
            // The throttled reply was used (one retry follows), so the junk was not taken as a reply.
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            "D> DEBUG still thinking",
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
}

#[test]
fn another_action_instead_of_the_checkpoint_reply_fails_the_checkpoint_and_is_handled_next() {
    let errors = log::<String>();
    let handler_errors = errors.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        if let Err(error) = cp.checkpoint_at(batch.last().expect("one record")) {
            handler_errors.borrow_mut().push(format!("{error:?}"));
        }
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"leaseLost"}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"C< {"action":"status","responseFor":"leaseLost"}"#,
        ],
    );
    assert_eq!(*errors.borrow(), [r#"UnexpectedReply("leaseLost")"#]);
}

#[test]
fn process_records_without_initialize_and_missing_optional_fields() {
    // Tolerant parsing: unknown keys ignored; a record without `action`, `subSequenceNumber` or
    // arrival time still works. (Not the Jackson shape, so fed as raw input.)
    let (processor, seen) = record_keeper();
    let input = concat!(
        r#"{"action":"processRecords","extra":true,"records":[{"data":"aGk=","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588898"}],"millisBehindLatest":null}"#,
        "\n",
    );
    let out = run_input(processor, RetryPolicy::immediate(3), input.as_bytes());
    assert_lines(
        &out,
        &expect(&[r#"{"action":"status","responseFor":"processRecords"}"#]),
    );
    assert_eq!(
        *seen.borrow(),
        [SeenRecord {
            data: b"hi".to_vec(),
            key: "k".into(),
            position: Position::new(seq(0), 0),
            arrival: None,
        }]
    );
}

#[test]
fn malformed_initialize_is_answered_and_the_shard_stalls() {
    // No shardId: the initialize hook cannot be called, so no batch may be handled either.
    let (processor, seen) = record_keeper();
    let input = concat!(
        r#"{"action":"initialize","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        "\n",
        r#"{"action":"shutdownRequested"}"#,
        "\n",
        r#"{"action":"leaseLost"}"#,
        "\n",
    );
    let out = run_input(processor, RetryPolicy::immediate(3), input.as_bytes());
    assert_lines(
        &out,
        &expect(&[
            r#"{"action":"status","responseFor":"initialize"}"#,
            r#"{"action":"status","responseFor":"processRecords"}"#,
            r#"{"action":"status","responseFor":"shutdownRequested"}"#,
            r#"{"action":"status","responseFor":"leaseLost"}"#,
        ]),
    );
    assert!(seen.borrow().is_empty(), "the handler must not be called");
}

#[test]
fn malformed_process_records_is_answered_and_the_shard_stalls() {
    // `records` is not an array: the batch's records are unknown, so they count as not handled.
    let (processor, seen) = record_keeper();
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":"nope","millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"Yw==","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // Only the record handled before the malformed batch may be checkpointed.
            r#"D> {"action":"shutdownRequested"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shutdownRequested"}"#,
        ],
    );
    assert_eq!(
        seen.borrow().len(),
        1,
        "only the first batch reached the handler"
    );
}

#[test]
fn initialize_hook_failure_stalls_the_shard() {
    struct FailsToStart {
        batches: Rc<RefCell<u32>>,
    }
    impl RecordProcessor for FailsToStart {
        fn initialize(&mut self, _: &Initialize) -> kcl::Result<()> {
            Err(kcl::Error::msg("cannot connect to the database"))
        }
        fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            *self.batches.borrow_mut() += 1;
            Ok(())
        }
    }
    let batches = Rc::new(RefCell::new(0));
    check(
        FailsToStart {
            batches: batches.clone(),
        },
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // Nothing was handled: neither the default shard_ended nor the runtime checkpoints.
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
    assert_eq!(*batches.borrow(), 0);
}

#[test]
fn kcl_1x_record_shape_and_missing_final_newline_are_tolerated() {
    // KCL-Java 1.x could write `"subSequenceNumber":null`; the last line has no terminator.
    let (processor, seen) = record_keeper();
    let input = concat!(
        r#"{"action":"processRecords","records":[{"data":"aGk=","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":null,"subSequenceNumber":null,"action":"record"}],"millisBehindLatest":null}"#,
        "\n",
        r#"{"action":"shutdown","reason":"ZOMBIE"}"#,
    );
    let out = run_input(processor, RetryPolicy::immediate(3), input.as_bytes());
    assert_lines(
        &out,
        &expect(&[
            r#"{"action":"status","responseFor":"processRecords"}"#,
            r#"{"action":"status","responseFor":"shutdown"}"#,
        ]),
    );
    assert_eq!(seen.borrow()[0].position, Position::new(seq(0), 0));
    assert_eq!(seen.borrow()[0].arrival, None);
}

#[test]
fn a_failing_output_channel_ends_run_on() {
    // The output fails: run_on ends instead of looping or panicking. A broken pipe means the
    // daemon is gone (nobody is left to answer, whether or not this process has read the end of
    // its input yet): a normal end. Any other output error is reported.
    struct Failing(std::io::ErrorKind);
    impl std::io::Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let input = concat!(
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"leaseLost"}"#,
        "\n",
    );
    let run = |kind| {
        Runtime::new(WordCount::default())
            .checkpoint_retry(RetryPolicy::immediate(3))
            .run_on(input.as_bytes(), Failing(kind))
            .map_err(|error| error.kind())
    };
    assert_eq!(run(std::io::ErrorKind::BrokenPipe), Ok(()));
    assert_eq!(
        run(std::io::ErrorKind::StorageFull),
        Err(std::io::ErrorKind::StorageFull)
    );
}

#[test]
fn null_checkpoint_before_any_record_keeps_the_resumed_position() {
    // Checkpointer::last_checkpoint documents "the last position the daemon confirmed (including
    // the one `initialize` resumed from)". A null checkpoint before any record was delivered
    // re-stores the lease's checkpoint (the daemon's largest permitted value starts at it), so
    // the resumed position is still the last confirmed one. kcl-core's Checkpointer::checkpoint
    // sets `progress.checkpointed = progress.delivered.clone()`, which is None here.
    let seen = log::<(Option<Position>, Option<Position>)>();
    let handler_seen = seen.clone();
    let processor = kcl::from_fn(move |_batch, cp| {
        let before = cp.last_checkpoint().cloned();
        cp.checkpoint()?;
        let after = cp.last_checkpoint().cloned();
        handler_seen.borrow_mut().push((before, after));
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000002","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
    let resumed = Some(Position::new(seq(0), 0));
    assert_eq!(*seen.borrow(), [(resumed.clone(), resumed)]);
}

#[test]
fn t7_explicit_checkpoint_at_the_last_record_completes_the_shard() {
    // Checkpointing exactly the last delivered record during shardEnded is stored as SHARD_END by
    // the daemon, so the runtime adds no null checkpoint of its own.
    struct EndsAtLastRecord {
        last: Option<kcl::Record>,
    }
    impl RecordProcessor for EndsAtLastRecord {
        fn process_records(&mut self, batch: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            self.last = batch.last().cloned();
            Ok(())
        }
        fn shard_ended(&mut self, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
            cp.checkpoint_at(self.last.as_ref().expect("a record was delivered"))?;
            Ok(())
        }
    }
    check(
        EndsAtLastRecord { last: None },
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"ZXZ0LTA=","partitionKey":"u-a","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"ZXZ0LTE=","partitionKey":"u-b","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":1,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
}

#[test]
fn t7_runtime_shard_end_checkpoint_is_retried_when_throttled() {
    check(
        ForgetfulShardEnd,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ThrottlingException"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
}

#[test]
fn t2_raw_checkpoint_without_sub_sequence_writes_null() {
    // checkpoint_raw(S, None) sends the sub-sequence number as null (the daemon reads (S, 0)).
    let processor = kcl::from_fn(|batch, cp| {
        let last = batch.last().expect("one record");
        cp.checkpoint_raw(last.sequence_number().as_str(), None)?;
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// The harness itself rejects what it must
// ---------------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "status keys")]
fn harness_rejects_a_status_with_an_extra_key() {
    child_messages(b"\n{\"action\":\"status\",\"responseFor\":\"x\",\"ok\":true}\n");
}

#[test]
#[should_panic(expected = "framed")]
fn harness_rejects_unframed_output() {
    child_messages(b"{\"action\":\"status\",\"responseFor\":\"x\"}\n");
}

#[test]
#[should_panic(expected = "neither a status nor a checkpoint")]
fn harness_rejects_other_child_lines() {
    child_messages(b"\n{\"action\":\"initialize\",\"shardId\":\"x\"}\n");
}

#[test]
#[should_panic(expected = "differs from the expected transcript")]
fn harness_reports_a_different_transcript() {
    assert_lines(
        &expect(&[r#"{"action":"status","responseFor":"initialize"}"#]),
        &expect(&[r#"{"action":"status","responseFor":"leaseLost"}"#]),
    );
}

// ---------------------------------------------------------------------------------------------
// Checkpoint strategies: the runtime checkpoints by itself
// ---------------------------------------------------------------------------------------------

#[test]
fn default_strategy_checkpoints_the_last_record_of_every_batch() {
    // A processor that never touches the checkpointer; the runtime's default strategy
    // checkpoints the last handled record (sequence + sub-sequence) after each batch.
    let processor = kcl::from_fn(|_, _| Ok(()));
    check_strategy(
        processor,
        CheckpointStrategy::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"ZXZ0LTA=","partitionKey":"u-a","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"ZXZ0LTE=","partitionKey":"u-b","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":1,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shutdownRequested"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shutdownRequested"}"#,
        ],
    );
}

#[test]
fn default_strategy_stops_just_before_the_record_that_failed() {
    // The handler fails at the second record and says so (`Error::at_record`): the first record
    // counts as handled and is checkpointed; the failed one and everything after it never are.
    let processor = kcl::from_fn(|batch, _| {
        for record in batch {
            if record.data() == b"bad" {
                return Err(kcl::Error::msg("sink refused it").at_record(record.position().clone()));
            }
        }
        Ok(())
    });
    check_strategy(
        processor,
        CheckpointStrategy::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"b2s=","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"YmFk","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"b2s=","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
}

#[test]
fn every_n_records_strategy_waits_for_enough_handled_records() {
    let processor = kcl::from_fn(|_, _| Ok(()));
    check_strategy(
        processor,
        CheckpointStrategy::every_records(3),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"Yg==","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"Yw==","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
}

#[test]
fn a_daemon_that_dies_while_a_checkpoint_reply_is_awaited_ends_the_run_normally() {
    // kill -9 of the daemon: the child's checkpoint request gets EOF instead of a reply, and
    // the status that follows hits a closed pipe. stdin has ended, so this is a normal end.
    struct ClosedAfter(usize);
    impl std::io::Write for ClosedAfter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.0 -= 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let input = concat!(
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        "\n",
    );
    // Two writes succeed (the initialize status, the checkpoint request); the status after the
    // failed checkpoint meets the closed pipe.
    let result = Runtime::new(WordCount::default())
        .checkpoint_retry(RetryPolicy::immediate(3))
        .run_on(input.as_bytes(), ClosedAfter(2));
    assert!(result.is_ok(), "{result:?}");
}
