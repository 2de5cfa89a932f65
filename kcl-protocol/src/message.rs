//! Wire types of the MultiLangDaemon protocol: what the daemon sends, what the child answers.
//!
//! Incoming lines are parsed tolerantly (unknown keys ignored, numbers and nulls accepted where
//! the Java daemon could write either); outgoing messages carry exactly the documented keys.
//!
//! ```
//! use kcl_protocol::message::{parse_line, ChildMessage, DaemonMessage, ParsedLine};
//! let ParsedLine::Message(message) = parse_line(br#"{"action":"shutdownRequested"}"#) else {
//!     panic!("not a message");
//! };
//! assert_eq!(message, DaemonMessage::ShutdownRequested);
//! let status = ChildMessage::Status { response_for: message.action().into() };
//! assert_eq!(status.to_json(), r#"{"action":"status","responseFor":"shutdownRequested"}"#);
//! ```

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::position::{Position, StartingPosition};
use crate::vocab::Action;

/// A message from the daemon to the child.
///
/// ```
/// use kcl_protocol::message::{parse_line, DaemonMessage, ParsedLine};
/// let line = br#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#;
/// match parse_line(line) {
///     ParsedLine::Message(DaemonMessage::Initialize(init)) => assert_eq!(init.shard_id, "shardId-000000000001"),
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum DaemonMessage {
    /// `initialize`: a lease on a shard was taken.
    Initialize(Initialize),
    /// `processRecords`: a batch of records.
    ProcessRecords(ProcessRecordsMessage),
    /// `leaseLost`: another worker holds the lease now; checkpointing is impossible.
    LeaseLost,
    /// `shardEnded`: the shard was split or merged and every record was delivered.
    ShardEnded,
    /// `shutdownRequested`: the worker is shutting down or handing the lease over.
    ShutdownRequested,
    /// Legacy `shutdown` (KCL-Java 1.x) with its reason.
    Shutdown(ShutdownReason),
    /// `checkpoint`: the daemon's reply to a checkpoint request.
    CheckpointReply(CheckpointReply),
}

impl DaemonMessage {
    /// The `action` name as it appears on the wire (what a status must echo).
    ///
    /// ```
    /// assert_eq!(kcl_protocol::message::DaemonMessage::LeaseLost.action(), "leaseLost");
    /// ```
    pub fn action(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The [`Action`] this message is.
    ///
    /// ```
    /// use kcl_protocol::{message::DaemonMessage, Action};
    /// assert_eq!(DaemonMessage::ShardEnded.kind(), Action::ShardEnded);
    /// ```
    pub fn kind(&self) -> Action {
        match self {
            DaemonMessage::Initialize(_) => Action::Initialize,
            DaemonMessage::ProcessRecords(_) => Action::ProcessRecords,
            DaemonMessage::LeaseLost => Action::LeaseLost,
            DaemonMessage::ShardEnded => Action::ShardEnded,
            DaemonMessage::ShutdownRequested => Action::ShutdownRequested,
            DaemonMessage::Shutdown(_) => Action::Shutdown,
            DaemonMessage::CheckpointReply(_) => Action::Checkpoint,
        }
    }

    /// Whether the daemon gives the child a checkpointer while this action is in progress, and
    /// whether the action is the shard's end (where a checkpoint at the last record stores
    /// `SHARD_END`). The one place this rule is written.
    ///
    /// ```
    /// use kcl_protocol::message::{DaemonMessage, Grant, ShutdownReason};
    /// assert_eq!(DaemonMessage::LeaseLost.grant(), Grant::None);
    /// assert_eq!(DaemonMessage::ShutdownRequested.grant(), Grant::Checkpointer);
    /// assert_eq!(DaemonMessage::ShardEnded.grant(), Grant::AtShardEnd);
    /// assert_eq!(DaemonMessage::Shutdown(ShutdownReason::Zombie).grant(), Grant::None);
    /// ```
    pub fn grant(&self) -> Grant {
        match self {
            DaemonMessage::ProcessRecords(_)
            | DaemonMessage::ShutdownRequested
            | DaemonMessage::Shutdown(ShutdownReason::Requested) => Grant::Checkpointer,
            DaemonMessage::ShardEnded | DaemonMessage::Shutdown(ShutdownReason::Terminate) => {
                Grant::AtShardEnd
            }
            DaemonMessage::Initialize(_)
            | DaemonMessage::LeaseLost
            | DaemonMessage::Shutdown(ShutdownReason::Zombie | ShutdownReason::Other(_))
            | DaemonMessage::CheckpointReply(_) => Grant::None,
        }
    }
}

/// What an action gives the child to checkpoint with (see [`DaemonMessage::grant`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// No checkpointer: a checkpoint request is refused (`initialize`, `leaseLost`).
    None,
    /// A checkpointer bounded by the records delivered so far.
    Checkpointer,
    /// A checkpointer at the shard's end: the bound is `SHARD_END`.
    AtShardEnd,
}

/// Fields of `initialize`.
///
/// ```
/// use kcl_protocol::message::{parse_line, DaemonMessage, ParsedLine};
/// use kcl_protocol::{Position, StartingPosition};
/// let line = br#"{"action":"initialize","shardId":"shardId-000000000004","sequenceNumber":"4959","subSequenceNumber":3}"#;
/// let ParsedLine::Message(DaemonMessage::Initialize(init)) = parse_line(line) else { panic!() };
/// assert_eq!(init.shard_id, "shardId-000000000004");
/// assert_eq!(init.starting_position, StartingPosition::Checkpoint(Position::new("4959", 3)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Initialize {
    /// The bare shard id, e.g. `shardId-000000000001`.
    pub shard_id: String,
    /// Where the lease resumes.
    pub starting_position: StartingPosition,
}

/// Fields of `processRecords`, records still in wire form (base64 payloads).
///
/// ```
/// use kcl_protocol::message::{parse_line, DaemonMessage, ParsedLine};
/// let line = br#"{"action":"processRecords","records":[{"data":"aGk=","partitionKey":"p","sequenceNumber":"7"}],"millisBehindLatest":"250"}"#;
/// let ParsedLine::Message(DaemonMessage::ProcessRecords(batch)) = parse_line(line) else { panic!() };
/// assert_eq!(batch.records[0].data.as_deref(), Some("aGk="));
/// assert_eq!(batch.millis_behind_latest, Some(250)); // numeric strings are accepted
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessRecordsMessage {
    /// The records of the batch, in order.
    pub records: Vec<WireRecord>,
    /// How far behind the tip of the stream the batch is, if the daemon knows.
    pub millis_behind_latest: Option<u64>,
}

/// One record as the daemon writes it.
///
/// ```
/// let json = r#"{"data":null,"partitionKey":"k","sequenceNumber":42,"subSequenceNumber":null}"#;
/// let record: kcl_protocol::message::WireRecord = serde_json::from_str(json).unwrap();
/// assert_eq!(record.sequence_number, "42"); // a number on the wire, kept as text
/// assert_eq!((record.data, record.sub_sequence_number), (None, None));
/// assert_eq!(record.approximate_arrival_timestamp, None);
/// let json = r#"{"data":"aGk=","partitionKey":null,"sequenceNumber":"7"}"#;
/// let record: kcl_protocol::message::WireRecord = serde_json::from_str(json).unwrap();
/// assert_eq!(record.partition_key, ""); // Jackson writes a null key as null
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireRecord {
    /// Standard base64 of the payload (`null` is read as an empty payload).
    #[serde(default)]
    pub data: Option<String>,
    /// The partition key (an empty string when absent or `null`: the Java field is nullable).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub partition_key: String,
    /// The sequence number, kept as text.
    #[serde(deserialize_with = "sequence_text")]
    pub sequence_number: String,
    /// Epoch milliseconds, if known.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub approximate_arrival_timestamp: Option<i64>,
    /// Index inside a KPL aggregate (absent or `null` read as 0).
    #[serde(default, deserialize_with = "lenient_u64")]
    pub sub_sequence_number: Option<u64>,
}

impl WireRecord {
    /// A record as the daemon writes it: the payload in standard base64 (as Jackson writes
    /// `byte[]`), the position's sequence and sub-sequence numbers.
    ///
    /// ```
    /// use kcl_protocol::{message::WireRecord, Position};
    /// let record = WireRecord::new(b"hi", "key", &Position::new("12", 3), Some(1_700_000_000_000));
    /// assert_eq!(record.data.as_deref(), Some("aGk="));
    /// assert_eq!(record.position(), Position::new("12", 3));
    /// ```
    pub fn new(
        payload: &[u8],
        partition_key: impl Into<String>,
        position: &Position,
        approximate_arrival_millis: Option<i64>,
    ) -> Self {
        use base64::Engine as _;
        WireRecord {
            data: Some(base64::engine::general_purpose::STANDARD.encode(payload)),
            partition_key: partition_key.into(),
            sequence_number: position.sequence_number().as_str().to_owned(),
            approximate_arrival_timestamp: approximate_arrival_millis,
            sub_sequence_number: Some(position.sub_sequence_number()),
        }
    }

    /// The record's position (sequence number + sub-sequence number, missing read as 0).
    ///
    /// ```
    /// let r = kcl_protocol::message::WireRecord {
    ///     data: None, partition_key: "k".into(), sequence_number: "12".into(),
    ///     approximate_arrival_timestamp: None, sub_sequence_number: None,
    /// };
    /// assert_eq!(r.position(), kcl_protocol::Position::new("12", 0));
    /// ```
    pub fn position(&self) -> Position {
        Position::new(
            self.sequence_number.as_str(),
            self.sub_sequence_number.unwrap_or(0),
        )
    }
}

/// Why a legacy (KCL-Java 1.x) `shutdown` was sent.
///
/// The 2.x names `SHARD_END` and `LEASE_LOST` are read as `TERMINATE` and `ZOMBIE`.
///
/// ```
/// use kcl_protocol::message::{parse_line, DaemonMessage, ParsedLine, ShutdownReason};
/// let reason = |line: &[u8]| match parse_line(line) {
///     ParsedLine::Message(DaemonMessage::Shutdown(reason)) => reason,
///     other => panic!("unexpected {other:?}"),
/// };
/// assert_eq!(reason(br#"{"action":"shutdown","reason":"ZOMBIE"}"#), ShutdownReason::Zombie);
/// assert_eq!(reason(br#"{"action":"shutdown","reason":"SHARD_END"}"#), ShutdownReason::Terminate);
/// assert_eq!(reason(br#"{"action":"shutdown"}"#), ShutdownReason::Other(String::new()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The shard ended: checkpoint, then exit (mapped to the shard-ended hook).
    Terminate,
    /// The lease was lost (mapped to the lease-lost hook).
    Zombie,
    /// The 2.x/3.x name of a graceful shutdown request (mapped to the shutdown-requested hook).
    Requested,
    /// Any other text; handled like a lost lease (nothing is checkpointed).
    Other(String),
}

impl ShutdownReason {
    fn from_wire(text: Option<&str>) -> Self {
        match text {
            Some("TERMINATE") | Some("SHARD_END") => ShutdownReason::Terminate,
            Some("ZOMBIE") | Some("LEASE_LOST") => ShutdownReason::Zombie,
            Some("REQUESTED") => ShutdownReason::Requested,
            Some(other) => ShutdownReason::Other(other.to_owned()),
            None => ShutdownReason::Other(String::new()),
        }
    }
}

/// The daemon's answer to a checkpoint request.
///
/// ```
/// use kcl_protocol::message::{parse_line, CheckpointReply, DaemonMessage, ParsedLine};
/// let line = br#"{"action":"checkpoint","sequenceNumber":"9","subSequenceNumber":0,"error":"ThrottlingException"}"#;
/// let ParsedLine::Message(DaemonMessage::CheckpointReply(reply)) = parse_line(line) else { panic!() };
/// assert_eq!(reply, CheckpointReply {
///     sequence_number: Some("9".into()),
///     sub_sequence_number: Some(0),
///     error: Some("ThrottlingException".into()),
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointReply {
    /// Echo of the requested sequence number.
    pub sequence_number: Option<String>,
    /// Echo of the requested sub-sequence number.
    pub sub_sequence_number: Option<u64>,
    /// `None` on success, otherwise the simple class name of the Java exception.
    pub error: Option<String>,
}

/// A message from the child to the daemon.
///
/// ```
/// use kcl_protocol::message::ChildMessage;
/// let status = ChildMessage::Status { response_for: "initialize".into() };
/// assert_eq!(status.to_json(), r#"{"action":"status","responseFor":"initialize"}"#);
/// let cp = ChildMessage::Checkpoint { sequence_number: Some("42".into()), sub_sequence_number: Some(1) };
/// assert_eq!(cp.to_json(), r#"{"action":"checkpoint","sequenceNumber":"42","subSequenceNumber":1}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum ChildMessage {
    /// The answer that ends the handling of one action.
    #[serde(rename_all = "camelCase")]
    Status {
        /// The `action` of the message being answered, verbatim.
        response_for: String,
    },
    /// A checkpoint request; both keys are always written (`null` = everything delivered).
    #[serde(rename_all = "camelCase")]
    Checkpoint {
        /// Sequence number to checkpoint at, or `None` for everything delivered so far.
        sequence_number: Option<String>,
        /// Sub-sequence number, or `None`.
        sub_sequence_number: Option<u64>,
    },
}

impl ChildMessage {
    /// The compact JSON text of the message (no framing).
    ///
    /// A checkpoint request always writes both keys, as `null` when absent:
    ///
    /// ```
    /// use kcl_protocol::message::ChildMessage;
    /// let all = ChildMessage::Checkpoint { sequence_number: None, sub_sequence_number: None };
    /// assert_eq!(all.to_json(), r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#);
    /// ```
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("child messages always serialize")
    }
}

/// What one input line turned out to be.
///
/// ```
/// use kcl_protocol::message::{parse_line, ParsedLine};
/// match parse_line(br#"{"action":"processRecords","records":"none"}"#) {
///     ParsedLine::Malformed { action, .. } => assert_eq!(action, "processRecords"),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert!(matches!(parse_line(br#"{"action":7}"#), ParsedLine::Junk { .. }));
/// assert_eq!(parse_line(b""), ParsedLine::Blank);
/// // Not JSON (a leading zero), but it starts as the daemon writes a known action: malformed.
/// match parse_line(br#"{"action":"initialize","shardId":"s","sequenceNumber":"1","subSequenceNumber":01}"#) {
///     ParsedLine::Malformed { action, cause } => {
///         assert_eq!(action, "initialize");
///         assert!(cause.starts_with("invalid number"), "{cause}");
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// // Cut short: junk (what it asks is unknown).
/// assert!(matches!(parse_line(br#"{"action":"leaseLost""#), ParsedLine::Junk { .. }));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum ParsedLine {
    /// A blank line (the daemon never sends one; skipped silently).
    Blank,
    /// A well-formed daemon message.
    Message(DaemonMessage),
    /// A JSON object with a string `action` this SDK does not know.
    UnknownAction(String),
    /// A JSON object naming a known action whose fields are unusable (wrong types, missing keys),
    /// or a line that is not JSON but starts as the daemon writes a known action
    /// (`{"action":"<known>",` with `action` the first key) and is not cut short.
    Malformed {
        /// The action the line names.
        action: String,
        /// What was wrong with it.
        cause: String,
    },
    /// Not a JSON object with an `action`, nor a broken line that starts as a known action:
    /// skipped.
    Junk {
        /// Why it is not a message.
        cause: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessage {
    action: String,
    #[serde(default)]
    shard_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_sequence")]
    sequence_number: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    sub_sequence_number: Option<u64>,
    #[serde(default)]
    records: Option<Vec<WireRecord>>,
    #[serde(default, deserialize_with = "lenient_u64")]
    millis_behind_latest: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ActionOnly {
    action: serde_json::Value,
}

/// Parses one line (without its line terminator) from the daemon.
///
/// Invalid UTF-8 inside the line is replaced (U+FFFD) rather than rejected: the JVM may write
/// partition keys in a non-UTF-8 default charset.
///
/// ```
/// use kcl_protocol::message::{parse_line, ParsedLine};
/// assert_eq!(parse_line(b"   "), ParsedLine::Blank);
/// assert!(matches!(parse_line(b"DEBUG hello"), ParsedLine::Junk { .. }));
/// assert_eq!(parse_line(br#"{"action":"wave"}"#), ParsedLine::UnknownAction("wave".into()));
/// ```
pub fn parse_line(line: &[u8]) -> ParsedLine {
    if line.iter().all(u8::is_ascii_whitespace) {
        return ParsedLine::Blank;
    }
    match serde_json::from_slice::<RawMessage>(line) {
        Ok(raw) => classify(raw),
        Err(first_error) => match std::str::from_utf8(line) {
            Ok(_) => diagnose(line, first_error),
            Err(_) => {
                let repaired = String::from_utf8_lossy(line).into_owned();
                match serde_json::from_str::<RawMessage>(&repaired) {
                    Ok(raw) => classify(raw),
                    Err(error) => diagnose(repaired.as_bytes(), error),
                }
            }
        },
    }
}

fn diagnose(line: &[u8], error: serde_json::Error) -> ParsedLine {
    match serde_json::from_slice::<ActionOnly>(line) {
        Ok(ActionOnly {
            action: serde_json::Value::String(action),
        }) => {
            if is_known_action(&action) {
                ParsedLine::Malformed {
                    action,
                    cause: error.to_string(),
                }
            } else {
                ParsedLine::UnknownAction(action)
            }
        }
        Ok(_) => ParsedLine::Junk {
            cause: "`action` is not a string".into(),
        },
        // Not JSON at all. If it starts as the daemon writes every message, with a known
        // `action` as the first key, it is that message, broken: the daemon waits for its
        // status, so it is answered as malformed. A line cut short is not (see
        // `unanswerable_known_action`), nor is one whose `action` comes later, where the text
        // could lie inside a value.
        Err(_) => match leading_action(line) {
            Some(action) if is_known_action(&action) && !error.is_eof() => ParsedLine::Malformed {
                action,
                cause: error.to_string(),
            },
            _ => ParsedLine::Junk {
                cause: error.to_string(),
            },
        },
    }
}

/// JSON's whitespace.
fn is_json_space(byte: &u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// The JSON string token at `*at` (escapes decoded); moves past it and any whitespace after.
fn string_token(line: &[u8], at: &mut usize) -> Option<String> {
    if line.get(*at) != Some(&b'"') {
        return None;
    }
    let mut end = *at + 1;
    loop {
        match line.get(end)? {
            b'\\' => end += 2,
            b'"' => break,
            _ => end += 1,
        }
    }
    let text = serde_json::from_slice::<String>(&line[*at..=end]).ok()?;
    *at = end + 1;
    while line.get(*at).is_some_and(is_json_space) {
        *at += 1;
    }
    Some(text)
}

/// The string value of the `action` member starting at `*at` (`"action"`, `:`, a string), and
/// the offset just past it and the whitespace after it.
fn action_member(line: &[u8], mut at: usize) -> Option<(String, usize)> {
    if string_token(line, &mut at)? != "action" || line.get(at) != Some(&b':') {
        return None;
    }
    at += 1;
    while line.get(at).is_some_and(is_json_space) {
        at += 1;
    }
    let action = string_token(line, &mut at)?;
    Some((action, at))
}

/// The value of `action` when it is the first member of the object the line starts with, as
/// the daemon writes every message (`{"action":"leaseLost",…` or `…}`; JSON whitespace allowed
/// between tokens), whatever is wrong further on. Record payloads and partition keys come
/// after it, so text inside them is never taken for the line's action.
fn leading_action(line: &[u8]) -> Option<String> {
    let mut at = line.iter().position(|b| !is_json_space(b))?;
    if line[at] != b'{' {
        return None;
    }
    at += 1;
    while line.get(at).is_some_and(is_json_space) {
        at += 1;
    }
    let (action, after) = action_member(line, at)?;
    matches!(line.get(after)?, b',' | b'}').then_some(action)
}

/// For a line [`parse_line`] found to be junk that still seems to name a known daemon action:
/// the action, and why the line cannot be answered with a status (the runtime logs it as an
/// error: if the daemon did send it, it waits for a status that never comes). Used by the child
/// runtime; it lives here beside the reader it completes.
pub fn unanswerable_known_action(line: &[u8]) -> Option<(String, &'static str)> {
    if let Some(action) = leading_action(line).filter(|action| is_known_action(action)) {
        return Some((
            action,
            "the line is cut short (what a daemon stopped mid-write leaves behind), so what it asks is unknown",
        ));
    }
    memchr::memmem::find_iter(line, b"\"action\"").find_map(|at| {
        let (action, _) = action_member(line, at)?;
        is_known_action(&action).then_some((
            action,
            "`action` is not its first key, as the daemon writes it, so the text may lie inside a value such as a partition key",
        ))
    })
}

fn is_known_action(action: &str) -> bool {
    Action::from_wire(action).is_some()
}

fn classify(raw: RawMessage) -> ParsedLine {
    let Some(action) = Action::from_wire(&raw.action) else {
        return ParsedLine::UnknownAction(raw.action);
    };
    let message = match action {
        Action::Initialize => match raw.shard_id {
            Some(shard_id) => DaemonMessage::Initialize(Initialize {
                shard_id,
                starting_position: StartingPosition::from_wire(
                    raw.sequence_number.as_deref(),
                    raw.sub_sequence_number,
                ),
            }),
            None => {
                return ParsedLine::Malformed {
                    action: raw.action,
                    cause: "missing field `shardId`".into(),
                };
            }
        },
        Action::ProcessRecords => match raw.records {
            Some(records) => DaemonMessage::ProcessRecords(ProcessRecordsMessage {
                records,
                millis_behind_latest: raw.millis_behind_latest,
            }),
            None => {
                return ParsedLine::Malformed {
                    action: raw.action,
                    cause: "missing field `records`".into(),
                };
            }
        },
        Action::LeaseLost => DaemonMessage::LeaseLost,
        Action::ShardEnded => DaemonMessage::ShardEnded,
        Action::ShutdownRequested => DaemonMessage::ShutdownRequested,
        Action::Shutdown => {
            DaemonMessage::Shutdown(ShutdownReason::from_wire(raw.reason.as_deref()))
        }
        Action::Checkpoint => DaemonMessage::CheckpointReply(CheckpointReply {
            sequence_number: raw.sequence_number,
            sub_sequence_number: raw.sub_sequence_number,
            error: raw.error,
        }),
    };
    ParsedLine::Message(message)
}

struct NumberOrText;

impl<'de> Visitor<'de> for NumberOrText {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence number as a string or an integer")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

fn lenient_sequence<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(NumberOrText)
}

fn sequence_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(NumberOrText)?
        .ok_or_else(|| de::Error::custom("sequenceNumber is null"))
}

struct LenientInteger;

impl<'de> Visitor<'de> for LenientInteger {
    type Value = Option<i128>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer, a numeric string or null")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.fract() == 0.0 && v.is_finite() {
            Ok(Some(v as i128))
        } else {
            Err(E::custom(format!("{v} is not an integer")))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.trim()
            .parse::<i128>()
            .map(Some)
            .map_err(|_| E::custom(format!("{v:?} is not an integer")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match d.deserialize_any(LenientInteger)? {
        None => Ok(None),
        Some(v) => u64::try_from(v)
            .map(Some)
            .map_err(|_| de::Error::custom(format!("{v} is out of range for an unsigned number"))),
    }
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match d.deserialize_any(LenientInteger)? {
        None => Ok(None),
        Some(v) => i64::try_from(v)
            .map(Some)
            .map_err(|_| de::Error::custom(format!("{v} is out of range"))),
    }
}

/// Daemon-side serialization, shaped like the Java daemon's Jackson output (key order, nulls
/// written, `"action":"record"` last in each record): for test drivers and local runners.
impl DaemonMessage {
    /// The message as the Java daemon would write it (one line, no terminator).
    ///
    /// ```
    /// use kcl_protocol::message::DaemonMessage;
    /// assert_eq!(DaemonMessage::ShardEnded.to_json(), r#"{"action":"shardEnded"}"#);
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push_str("{\"action\":");
        push_json(&mut out, self.action());
        match self {
            DaemonMessage::Initialize(init) => {
                out.push_str(",\"shardId\":");
                push_json(&mut out, &init.shard_id);
                let (sequence, sub) = match &init.starting_position {
                    StartingPosition::TrimHorizon => (Some("TRIM_HORIZON"), Some(0)),
                    StartingPosition::Latest => (Some("LATEST"), Some(0)),
                    StartingPosition::AtTimestamp => (Some("AT_TIMESTAMP"), Some(0)),
                    StartingPosition::ShardEnd => (Some("SHARD_END"), Some(0)),
                    StartingPosition::Checkpoint(position) => (
                        Some(position.sequence_number().as_str()),
                        Some(position.sub_sequence_number()),
                    ),
                    StartingPosition::Other(text) => (Some(text.as_str()), Some(0)),
                    StartingPosition::Unknown => (None, None),
                };
                out.push_str(",\"sequenceNumber\":");
                push_json(&mut out, &sequence);
                out.push_str(",\"subSequenceNumber\":");
                push_json(&mut out, &sub);
            }
            DaemonMessage::ProcessRecords(batch) => {
                out.push_str(",\"records\":[");
                for (index, record) in batch.records.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"data\":");
                    push_json(&mut out, &record.data);
                    out.push_str(",\"partitionKey\":");
                    push_json(&mut out, &record.partition_key);
                    out.push_str(",\"sequenceNumber\":");
                    push_json(&mut out, &record.sequence_number);
                    out.push_str(",\"approximateArrivalTimestamp\":");
                    push_json(&mut out, &record.approximate_arrival_timestamp);
                    out.push_str(",\"subSequenceNumber\":");
                    push_json(&mut out, &record.sub_sequence_number.unwrap_or(0));
                    out.push_str(",\"action\":\"record\"}");
                }
                out.push_str("],\"millisBehindLatest\":");
                push_json(&mut out, &batch.millis_behind_latest);
            }
            DaemonMessage::Shutdown(reason) => {
                out.push_str(",\"reason\":");
                let text = match reason {
                    ShutdownReason::Terminate => "TERMINATE",
                    ShutdownReason::Zombie => "ZOMBIE",
                    ShutdownReason::Requested => "REQUESTED",
                    ShutdownReason::Other(text) => text.as_str(),
                };
                push_json(&mut out, text);
            }
            DaemonMessage::CheckpointReply(reply) => {
                out.push_str(",\"sequenceNumber\":");
                push_json(&mut out, &reply.sequence_number);
                out.push_str(",\"subSequenceNumber\":");
                push_json(&mut out, &reply.sub_sequence_number);
                out.push_str(",\"error\":");
                push_json(&mut out, &reply.error);
            }
            DaemonMessage::LeaseLost
            | DaemonMessage::ShardEnded
            | DaemonMessage::ShutdownRequested => {}
        }
        out.push('}');
        out
    }
}

fn push_json<T: Serialize + ?Sized>(out: &mut String, value: &T) {
    out.push_str(&serde_json::to_string(value).expect("plain values always serialize"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_missing_record_action_are_tolerated() {
        let line = br#"{"action":"processRecords","extra":1,"records":[{"data":"aGk=","partitionKey":"p","sequenceNumber":"1","approximateArrivalTimestamp":null}],"millisBehindLatest":null}"#;
        let ParsedLine::Message(DaemonMessage::ProcessRecords(batch)) = parse_line(line) else {
            panic!("not parsed");
        };
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.millis_behind_latest, None);
        assert_eq!(batch.records[0].sub_sequence_number, None);
    }

    #[test]
    fn wrong_types_in_a_known_action_are_malformed_not_junk() {
        let line = br#"{"action":"processRecords","records":"nope"}"#;
        assert!(
            matches!(parse_line(line), ParsedLine::Malformed { action, .. } if action == "processRecords")
        );
    }

    #[test]
    fn numeric_strings_and_numbers_are_coerced() {
        let line =
            br#"{"action":"checkpoint","sequenceNumber":12,"subSequenceNumber":"3","error":null}"#;
        assert_eq!(
            parse_line(line),
            ParsedLine::Message(DaemonMessage::CheckpointReply(CheckpointReply {
                sequence_number: Some("12".into()),
                sub_sequence_number: Some(3),
                error: None
            }))
        );
    }

    /// A line that is not JSON but starts like the daemon's messages (`{"action":"<known>",`)
    /// is answered as malformed, never dropped: the daemon waits for its status.
    #[test]
    fn syntax_errors_in_a_line_naming_a_known_action_are_malformed() {
        let cases: [(&[u8], &str); 9] = [
            (
                br#"{"action":"processRecords","records":[{"data":"aGk=","partitionKey":"k","sequenceNumber":"1","approximateArrivalTimestamp":01700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
                "processRecords",
            ),
            (
                b"{\"action\":\"processRecords\",\"records\":[{\"data\":\"aGk=\",\"partitionKey\":\"a\tb\",\"sequenceNumber\":\"1\"}],\"millisBehindLatest\":0}",
                "processRecords",
            ),
            (b"{\"action\":\"leaseLost\"}\x0c", "leaseLost"),
            (br#"{"action":"shardEnded",}"#, "shardEnded"),
            (
                br#"{"action":"initialize","shardId":"s","sequenceNumber":"1","subSequenceNumber":00}"#,
                "initialize",
            ),
            (br#"{"action":"shutdownRequested"} x"#, "shutdownRequested"),
            (
                br#" { "action" : "shutdown" , "reason":"ZOMBIE" "x"}"#,
                "shutdown",
            ),
            (br#"{"action":"le\u0061seLost",]"#, "leaseLost"),
            (
                b"{\"action\":\"checkpoint\",\"sequenceNumber\":\"1\x01\",\"subSequenceNumber\":0,\"error\":null}",
                "checkpoint",
            ),
        ];
        let mut wrong = Vec::new();
        for (line, expected) in cases {
            match parse_line(line) {
                ParsedLine::Malformed { action, cause } if action == expected => {
                    assert!(!cause.is_empty());
                }
                other => wrong.push(format!("{:?} -> {other:?}", String::from_utf8_lossy(line))),
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Lines that do not start as a daemon message with a known action stay junk, whatever
    /// text they hold further on; so do lines cut short (see `transport`).
    #[test]
    fn other_broken_lines_stay_junk() {
        for line in [
            &br#"{"action":"processRecords","records":[{"#[..],
            br#"{"action":"processRecords""#,
            br#"{"records":[{"partitionKey":"{\"action\":\"leaseLost\"}"}],"action":"processRecords",]"#,
            br#"{"records":[],"action":"leaseLost",]"#,
            br#"DEBUG {"action":"leaseLost"}"#,
            br#"{"action":"wave",]"#,
            br#"{"action":"leaseLost"x}"#,
            br#"{"action":"LEASELOST",]"#,
            b"{\"action\":\"lease\0Lost\"}",
            br#"["action","leaseLost",]"#,
        ] {
            assert!(
                matches!(parse_line(line), ParsedLine::Junk { .. }),
                "{:?} -> {:?}",
                String::from_utf8_lossy(line),
                parse_line(line)
            );
        }
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut line = br#"{"action":"initialize","shardId":"s-"#.to_vec();
        line.push(0xff);
        line.extend_from_slice(br#"","sequenceNumber":"LATEST","subSequenceNumber":0}"#);
        let ParsedLine::Message(DaemonMessage::Initialize(init)) = parse_line(&line) else {
            panic!("not parsed");
        };
        assert_eq!(init.shard_id, "s-\u{fffd}");
    }
}
