//! Daemon-side helpers: read a child's output the way the Java MultiLangDaemon does, and judge its
//! checkpoint requests the way the KCL's checkpointer does.
//!
//! These are for programs that *play the daemon* (local runners such as `kcl run`, test drivers),
//! not for child processes. Every rule here was checked against the KCL 3.1.3 jars (Jackson 2.18
//! `ObjectMapper` on the daemon's message classes, `ShardRecordProcessorCheckpointer`):
//!
//! * [`parse_child_line`] accepts exactly the lines the daemon accepts: unknown keys, a second
//!   `action`, wrong types or unknown actions make the whole line unparseable (the daemon skips
//!   it); text after the closing brace is ignored; scalars are coerced like Jackson does
//!   (`"subSequenceNumber":"2"` is 2, `1.9` is 1, `"sequenceNumber":123` is `"123"`).
//! * [`LineReader`] splits lines like Java's `BufferedReader.readLine` (`\n`, `\r\n` or `\r`).
//! * [`LeaseCheckpointer`] accepts or refuses checkpoints like the KCL (range checks, the
//!   `SHARD_END` substitution at the end of a shard, no write for an unchanged value).
//!
//! ```
//! use kcl_core::driver::{parse_child_line, ChildLine};
//! let line = br#"{"action": "status", "responseFor": "processRecords"}"#;
//! assert_eq!(parse_child_line(line), ChildLine::Status { response_for: Some("processRecords".into()) });
//! // One extra key and the daemon skips the whole line (and keeps waiting for a status).
//! let extra = br#"{"action":"status","responseFor":"processRecords","ok":true}"#;
//! assert!(matches!(parse_child_line(extra), ChildLine::Skipped { .. }));
//! ```

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::io::{self, BufRead};

use crate::message::{CheckpointReply, DaemonMessage};

/// What the daemon makes of one line written by a child on its stdout.
///
/// ```
/// use kcl_core::driver::{parse_child_line, ChildLine};
/// assert_eq!(parse_child_line(b""), ChildLine::Blank);
/// assert!(matches!(parse_child_line(b"DEBUG hello"), ChildLine::Skipped { .. }));
/// assert_eq!(
///     parse_child_line(br#"{"action":"initialize","shardId":"x"}"#),
///     ChildLine::OtherMessage { action: "initialize" },
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildLine {
    /// An empty or whitespace-only line: skipped without a trace.
    Blank,
    /// A `status` message. `response_for` is `None` when the key is absent or `null` (the daemon
    /// then fails the action, as for any other wrong value).
    Status {
        /// The `responseFor` value, coerced to text as Jackson does.
        response_for: Option<String>,
    },
    /// A `checkpoint` request.
    Checkpoint(CheckpointRequest),
    /// A valid message of a kind the daemon does not expect from a child (`initialize`, ...): it
    /// is read and ignored.
    OtherMessage {
        /// The message's action.
        action: &'static str,
    },
    /// A line the daemon cannot parse as a message: logged ("Skipping unexpected line on
    /// STDOUT") and skipped. It does not reset the daemon's `timeoutInSeconds` timer.
    Skipped {
        /// Why Jackson would refuse it.
        reason: String,
    },
}

/// A checkpoint request, with its values coerced the way the daemon reads them.
///
/// ```
/// use kcl_core::driver::{parse_child_line, ChildLine, CheckpointRequest};
/// let line = br#"{"action":"checkpoint","sequenceNumber":4959,"subSequenceNumber":"2"}"#;
/// assert_eq!(parse_child_line(line), ChildLine::Checkpoint(CheckpointRequest {
///     sequence_number: Some("4959".into()),
///     sub_sequence_number: Some(2),
///     error: None,
/// }));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointRequest {
    /// The requested sequence number; `None` means "everything delivered so far".
    pub sequence_number: Option<String>,
    /// The requested sub-sequence number (a Java `Long`: it may be negative, which the
    /// checkpointer refuses).
    pub sub_sequence_number: Option<i64>,
    /// An `error` key sent by the child (tolerated and ignored by the daemon).
    pub error: Option<String>,
}

impl CheckpointRequest {
    /// The daemon's reply line: an echo of the request (as coerced) with `error` set to the
    /// exception's simple class name, or `null` on success.
    ///
    /// ```
    /// use kcl_core::driver::CheckpointRequest;
    /// let request = CheckpointRequest { sequence_number: Some("7".into()), sub_sequence_number: None, error: None };
    /// assert_eq!(
    ///     request.reply_json(Some("ThrottlingException")),
    ///     r#"{"action":"checkpoint","sequenceNumber":"7","subSequenceNumber":null,"error":"ThrottlingException"}"#,
    /// );
    /// let negative = CheckpointRequest { sequence_number: Some("7".into()), sub_sequence_number: Some(-1), error: None };
    /// assert_eq!(
    ///     negative.reply_json(Some("IllegalArgumentException")),
    ///     r#"{"action":"checkpoint","sequenceNumber":"7","subSequenceNumber":-1,"error":"IllegalArgumentException"}"#,
    /// );
    /// ```
    pub fn reply_json(&self, error: Option<&str>) -> String {
        match self.sub_sequence_number.map(u64::try_from) {
            None | Some(Ok(_)) => DaemonMessage::CheckpointReply(CheckpointReply {
                sequence_number: self.sequence_number.clone(),
                sub_sequence_number: self.sub_sequence_number.map(|n| n as u64),
                error: error.map(str::to_owned),
            })
            .to_json(),
            // `CheckpointReply` holds unsigned numbers; Java echoes the negative value as is.
            Some(Err(_)) => format!(
                "{{\"action\":\"checkpoint\",\"sequenceNumber\":{},\"subSequenceNumber\":{},\"error\":{}}}",
                serde_json::to_string(&self.sequence_number).expect("strings serialize"),
                self.sub_sequence_number.unwrap_or_default(),
                serde_json::to_string(&error).expect("strings serialize"),
            ),
        }
    }
}

/// Parses one line (without its terminator) the way the daemon's Jackson `ObjectMapper` reads
/// it into a message.
///
/// Invalid UTF-8 is replaced by U+FFFD first, as the JVM's decoder does.
///
/// ```
/// use kcl_core::driver::{parse_child_line, ChildLine};
/// // Text after the object is ignored; a second `action` is an unknown property.
/// let trailing = br#"{"action":"status","responseFor":"initialize"} trailing"#;
/// assert_eq!(parse_child_line(trailing), ChildLine::Status { response_for: Some("initialize".into()) });
/// let twice = br#"{"action":"status","action":"status","responseFor":"initialize"}"#;
/// assert!(matches!(parse_child_line(twice), ChildLine::Skipped { .. }));
/// // Wrong case is an unknown type id; the legacy `checkpoint` key is an unknown property.
/// assert!(matches!(parse_child_line(br#"{"action":"STATUS","responseFor":"x"}"#), ChildLine::Skipped { .. }));
/// assert!(matches!(parse_child_line(br#"{"action":"checkpoint","checkpoint":"1"}"#), ChildLine::Skipped { .. }));
/// ```
pub fn parse_child_line(line: &[u8]) -> ChildLine {
    let text = String::from_utf8_lossy(line);
    if text.trim().is_empty() {
        return ChildLine::Blank;
    }
    let value = match json::parse_leading_object(&text) {
        Ok(json::Root::Object(entries)) => entries,
        Ok(json::Root::NotAnObject) => {
            return skipped("not a JSON object");
        }
        Err(error) => return skipped(&format!("not valid JSON: {error}")),
    };
    match to_message(value) {
        Ok(line) => line,
        Err(reason) => ChildLine::Skipped { reason },
    }
}

fn skipped(reason: &str) -> ChildLine {
    ChildLine::Skipped {
        reason: reason.to_owned(),
    }
}

/// The message types the daemon registers, and their properties.
const ACTIONS: [&str; 8] = [
    "status",
    "checkpoint",
    "initialize",
    "processRecords",
    "leaseLost",
    "shardEnded",
    "shutdownRequested",
    "shutdown",
];

fn to_message(entries: Vec<(String, json::Value)>) -> Result<ChildLine, String> {
    let Some(position) = entries.iter().position(|(key, _)| key == "action") else {
        return Err("missing type id property `action`".into());
    };
    let action = match &entries[position].1 {
        json::Value::String(text) => text.clone(),
        json::Value::Number(text) => text.clone(),
        json::Value::Bool(flag) => flag.to_string(),
        json::Value::Null => return Err("`action` is null".into()),
        _ => return Err("`action` is not a string".into()),
    };
    let Some(action) = ACTIONS.iter().copied().find(|known| *known == action) else {
        return Err(format!(
            "unknown action {action:?} (names are case-sensitive)"
        ));
    };
    let mut properties = entries;
    properties.remove(position);
    let mut status = None;
    let mut request = CheckpointRequest::default();
    for (key, value) in properties {
        let Some(kind) = property_kind(action, &key) else {
            return Err(format!(
                "unrecognized property {key:?} for action {action:?}"
            ));
        };
        let invalid = |problem| format!("{key}: {problem}");
        match kind {
            Kind::Text => {
                let text = coerce_text(&value).map_err(invalid)?;
                match key.as_str() {
                    "responseFor" => status = text,
                    "sequenceNumber" => request.sequence_number = text,
                    "error" => request.error = text,
                    _ => {}
                }
            }
            Kind::Long => {
                let number = coerce_long(&value).map_err(invalid)?;
                if key == "subSequenceNumber" {
                    request.sub_sequence_number = number;
                }
            }
            Kind::Records => check_records(&value).map_err(invalid)?,
        }
    }
    Ok(match action {
        "status" => ChildLine::Status {
            response_for: status,
        },
        "checkpoint" => ChildLine::Checkpoint(request),
        other => ChildLine::OtherMessage { action: other },
    })
}

/// How a property of a message type is read (Java field types of the daemon's classes).
enum Kind {
    Text,
    Long,
    Records,
}

fn property_kind(action: &str, key: &str) -> Option<Kind> {
    Some(match (action, key) {
        ("status", "responseFor") => Kind::Text,
        ("checkpoint", "sequenceNumber" | "error") => Kind::Text,
        ("checkpoint", "subSequenceNumber") => Kind::Long,
        ("initialize", "shardId" | "sequenceNumber") => Kind::Text,
        ("initialize", "subSequenceNumber") => Kind::Long,
        ("processRecords", "records") => Kind::Records,
        ("processRecords", "millisBehindLatest") => Kind::Long,
        ("shutdown", "reason") => Kind::Text,
        _ => return None,
    })
}

/// A Java `String` property: text, or the literal text of a number or boolean.
fn coerce_text(value: &json::Value) -> Result<Option<String>, &'static str> {
    match value {
        json::Value::Null => Ok(None),
        json::Value::String(text) | json::Value::Number(text) => Ok(Some(text.clone())),
        json::Value::Bool(flag) => Ok(Some(flag.to_string())),
        json::Value::Array(_) | json::Value::Object(_) => Err("expected a string"),
    }
}

/// A Java `Long` property: integers in range, floats truncated toward zero, numeric strings
/// (trimmed; empty or `"null"` is null).
fn coerce_long(value: &json::Value) -> Result<Option<i64>, &'static str> {
    match value {
        json::Value::Null => Ok(None),
        json::Value::Number(text) => {
            if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                text.parse::<i64>()
                    .map(Some)
                    .map_err(|_| "out of range for a long")
            } else {
                // Jackson refuses floats outside the range of a long, then truncates.
                let float: f64 = text.parse().map_err(|_| "not a number")?;
                const LIMIT: f64 = i64::MAX as f64; // 2^63 after rounding, as in Java
                if (-LIMIT..=LIMIT).contains(&float) {
                    Ok(Some(float as i64))
                } else {
                    Err("out of range for a long")
                }
            }
        }
        json::Value::String(text) => {
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed == "null" {
                return Ok(None);
            }
            let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
            let unsigned = digits.strip_prefix('-').unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return Err("not an integer");
            }
            digits
                .parse::<i64>()
                .map(Some)
                .map_err(|_| "out of range for a long")
        }
        json::Value::Bool(_) | json::Value::Array(_) | json::Value::Object(_) => {
            Err("expected an integer")
        }
    }
}

/// `records` of a `processRecords` sent by a child (never useful; checked only so that the line
/// is classified like Jackson would, approximately: each record must be `null` or an object with
/// the record's writable properties).
fn check_records(value: &json::Value) -> Result<(), &'static str> {
    let records = match value {
        json::Value::Null => return Ok(()),
        json::Value::Array(records) => records,
        _ => return Err("expected an array"),
    };
    for record in records {
        match record {
            json::Value::Null => {}
            json::Value::Object(fields) => {
                for (key, value) in fields {
                    match key.as_str() {
                        "data" | "partitionKey" | "sequenceNumber" => {
                            coerce_text(value)?;
                        }
                        "approximateArrivalTimestamp" | "subSequenceNumber" => {
                            coerce_long(value)?;
                        }
                        _ => return Err("unrecognized record property"),
                    }
                }
            }
            _ => return Err("expected record objects"),
        }
    }
    Ok(())
}

/// Reads lines like Java's `BufferedReader.readLine`: a line ends at `\n`, `\r\n` or a lone
/// `\r`; the terminator is not returned; the last line may lack one.
///
/// ```
/// use kcl_core::driver::LineReader;
/// let mut reader = LineReader::new(&b"a\r\nb\rc\nd"[..]);
/// let mut lines = Vec::new();
/// while let Some(line) = reader.next_line().unwrap() {
///     lines.push(String::from_utf8(line).unwrap());
/// }
/// assert_eq!(lines, ["a", "b", "c", "d"]);
/// ```
pub struct LineReader<R> {
    inner: R,
    skip_lf: bool,
}

impl<R: BufRead> LineReader<R> {
    /// Wraps a buffered reader.
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            skip_lf: false,
        }
    }

    /// The next line, or `None` at end of input.
    ///
    /// It never waits for more input once a line is complete (a `\r` ends the line at once; a
    /// `\n` right after it is dropped with the next read).
    pub fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let mut any = false;
        loop {
            let buffer = match self.inner.fill_buf() {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if buffer.is_empty() {
                return Ok(any.then_some(line));
            }
            let mut start = 0;
            if self.skip_lf {
                self.skip_lf = false;
                if buffer[0] == b'\n' {
                    start = 1;
                }
            }
            match buffer[start..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
            {
                Some(offset) => {
                    let end = start + offset;
                    line.extend_from_slice(&buffer[start..end]);
                    self.skip_lf = buffer[end] == b'\r';
                    self.inner.consume(end + 1);
                    return Ok(Some(line));
                }
                None => {
                    any |= buffer.len() > start;
                    line.extend_from_slice(&buffer[start..]);
                    let used = buffer.len();
                    self.inner.consume(used);
                }
            }
        }
    }
}

/// A checkpoint value as the KCL compares it (Java's `ExtendedSequenceNumber`): a decimal
/// sequence number or a sentinel, plus a sub-sequence number.
///
/// Order: `AT_TIMESTAMP` < `TRIM_HORIZON` < `LATEST` < every sequence number (numerically) <
/// `SHARD_END`; then by sub-sequence number, except that `SHARD_END` equals `SHARD_END` whatever
/// their sub-sequence numbers (as in Java). Equality is textual (`"0100"` ≠ `"100"`), as in
/// Java, while the order is numeric. Like Java's `Character.isDigit`, a sequence number may use
/// the decimal digits of any script of the Basic Multilingual Plane (`"١٠٠"` is 100).
///
/// ```
/// use kcl_core::driver::ExtendedSequenceNumber as E;
/// use std::cmp::Ordering;
/// assert_eq!(E::new("TRIM_HORIZON", 0).compare(&E::new("1", 0)), Ok(Ordering::Less));
/// assert_eq!(E::new("0100", 0).compare(&E::new("100", 0)), Ok(Ordering::Equal));
/// assert_eq!(E::new("١٠٠", 0).compare(&E::new("100", 0)), Ok(Ordering::Equal));
/// assert_eq!(E::shard_end().compare(&E::new("99999", 7)), Ok(Ordering::Greater));
/// assert_eq!(E::new("SHARD_END", 3).compare(&E::shard_end()), Ok(Ordering::Equal));
/// assert!(E::new("abc", 0).compare(&E::new("1", 0)).is_err());
/// assert!(E::new("\u{1D7CF}", 0).compare(&E::new("1", 0)).is_err()); // beyond the BMP
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExtendedSequenceNumber {
    sequence_number: String,
    sub_sequence_number: i64,
}

/// The sentinel names the KCL stores instead of a sequence number.
pub const SENTINELS: [&str; 4] = ["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "SHARD_END"];

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank<'a> {
    AtTimestamp,
    TrimHorizon,
    Latest,
    /// The significant ASCII digits of the value ("0" for zero).
    Number(Cow<'a, str>),
    ShardEnd,
}

/// The digit zero of every run of ten decimal digits (Unicode category Nd) in the Basic
/// Multilingual Plane: what Java's `Character.isDigit(char)` accepts (listed with Java 17; no
/// digit was added to the BMP since). Java sees characters beyond the BMP as two surrogates,
/// which are not digits.
const BMP_DIGIT_ZEROS: [u32; 37] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10,
];

/// A digit's value as Java's `Character.digit(c, 10)` reads it, for a digit of the BMP.
fn java_digit(c: char) -> Option<u8> {
    let code = u32::from(c);
    BMP_DIGIT_ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&code))
        .map(|zero| (code - zero) as u8)
}

/// The significant ASCII digits of a text that Java's `ExtendedSequenceNumber` reads as a number
/// (every character a decimal digit, which `BigInteger` then reads), or `None`.
fn decimal_digits(text: &str) -> Option<Cow<'_, str>> {
    if text.is_empty() {
        return None;
    }
    // Leading zeros are not significant; zero itself is "0".
    let significant = |digits: &str| -> usize {
        let zeros = digits.len() - digits.trim_start_matches('0').len();
        zeros.min(digits.len() - 1)
    };
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Cow::Borrowed(&text[significant(text)..]));
    }
    let ascii: String = text
        .chars()
        .map(|c| java_digit(c).map(|d| char::from(b'0' + d)))
        .collect::<Option<_>>()?;
    let start = significant(&ascii);
    Some(Cow::Owned(ascii[start..].to_owned()))
}

impl ExtendedSequenceNumber {
    /// A value from its parts.
    pub fn new(sequence_number: impl Into<String>, sub_sequence_number: i64) -> Self {
        ExtendedSequenceNumber {
            sequence_number: sequence_number.into(),
            sub_sequence_number,
        }
    }

    /// `SHARD_END`: the shard was completely processed.
    pub fn shard_end() -> Self {
        Self::new("SHARD_END", 0)
    }

    /// `TRIM_HORIZON`: where a fresh lease starts (with `initialPositionInStream = TRIM_HORIZON`).
    pub fn trim_horizon() -> Self {
        Self::new("TRIM_HORIZON", 0)
    }

    /// The sequence number (or sentinel name).
    pub fn sequence_number(&self) -> &str {
        &self.sequence_number
    }

    /// The sub-sequence number.
    pub fn sub_sequence_number(&self) -> i64 {
        self.sub_sequence_number
    }

    /// Whether this is `SHARD_END`.
    pub fn is_shard_end(&self) -> bool {
        self.sequence_number == "SHARD_END"
    }

    /// Whether this is a sentinel (`TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`, `SHARD_END`).
    pub fn is_sentinel(&self) -> bool {
        SENTINELS.contains(&self.sequence_number.as_str())
    }

    fn rank(&self) -> Result<Rank<'_>, NotASequenceNumber> {
        Ok(match self.sequence_number.as_str() {
            "AT_TIMESTAMP" => Rank::AtTimestamp,
            "TRIM_HORIZON" => Rank::TrimHorizon,
            "LATEST" => Rank::Latest,
            "SHARD_END" => Rank::ShardEnd,
            other => match decimal_digits(other) {
                Some(digits) => Rank::Number(digits),
                None => return Err(NotASequenceNumber(other.to_owned())),
            },
        })
    }

    /// Java's `compareTo`: numeric order of the sequence numbers, then sub-sequence numbers
    /// (`SHARD_END` is above everything else and equal to itself whatever the sub-sequence
    /// numbers). Text that is neither digits nor a sentinel cannot be compared.
    pub fn compare(&self, other: &Self) -> Result<Ordering, NotASequenceNumber> {
        let (a, b) = (self.rank()?, other.rank()?);
        let by_sequence = match (&a, &b) {
            (Rank::ShardEnd, _) | (_, Rank::ShardEnd) => return Ok(a.cmp(&b)),
            (Rank::Number(x), Rank::Number(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
            _ => a.cmp(&b),
        };
        Ok(by_sequence.then(self.sub_sequence_number.cmp(&other.sub_sequence_number)))
    }
}

impl fmt::Display for ExtendedSequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.sequence_number, self.sub_sequence_number)
    }
}

/// A sequence number that is neither decimal digits nor a sentinel name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotASequenceNumber(pub String);

impl fmt::Display for NotASequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is neither a sequence number nor a sentinel",
            self.0
        )
    }
}

impl std::error::Error for NotASequenceNumber {}

/// What an accepted checkpoint did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// The value was written to the lease table (this one; `SHARD_END` at the end of a shard).
    Stored(ExtendedSequenceNumber),
    /// Accepted without a write: the value equals the last checkpoint.
    Unchanged,
}

/// The daemon's per-lease checkpointer (the KCL's `ShardRecordProcessorCheckpointer`), for
/// drivers that answer checkpoint requests themselves.
///
/// ```
/// use kcl_core::driver::{CheckpointOutcome, ExtendedSequenceNumber as E, LeaseCheckpointer};
/// let mut cp = LeaseCheckpointer::new(E::trim_horizon());
/// cp.records_delivered(E::new("100", 0)); // before `processRecords` is sent
/// assert_eq!(cp.checkpoint(Some("50"), None), Ok(CheckpointOutcome::Stored(E::new("50", 0))));
/// assert_eq!(cp.checkpoint(Some("40"), None), Err("IllegalArgumentException")); // below the last
/// assert_eq!(cp.checkpoint(Some("101"), None), Err("IllegalArgumentException")); // beyond delivered
/// assert_eq!(cp.checkpoint(Some("50"), Some(0)), Ok(CheckpointOutcome::Unchanged));
/// cp.shard_ended(); // before `shardEnded` is sent
/// assert_eq!(cp.checkpoint(None, None), Ok(CheckpointOutcome::Stored(E::shard_end())));
/// ```
#[derive(Clone, Debug)]
pub struct LeaseCheckpointer {
    last: ExtendedSequenceNumber,
    largest_permitted: ExtendedSequenceNumber,
    at_shard_end: Option<ExtendedSequenceNumber>,
}

impl LeaseCheckpointer {
    /// A checkpointer for a lease whose stored checkpoint is `initial` (what `initialize`
    /// carries); nothing delivered yet.
    pub fn new(initial: ExtendedSequenceNumber) -> Self {
        LeaseCheckpointer {
            largest_permitted: initial.clone(),
            last: initial,
            at_shard_end: None,
        }
    }

    /// Raises the upper bound to the largest record of the batch about to be sent.
    pub fn records_delivered(&mut self, largest: ExtendedSequenceNumber) {
        self.largest_permitted = largest;
    }

    /// Enters the end of the shard: the bound becomes `SHARD_END`, and a checkpoint at the last
    /// delivered record (or a null one) stores `SHARD_END`.
    pub fn shard_ended(&mut self) {
        let last_delivered = std::mem::replace(
            &mut self.largest_permitted,
            ExtendedSequenceNumber::shard_end(),
        );
        self.at_shard_end = Some(last_delivered);
    }

    /// The last stored checkpoint.
    pub fn last(&self) -> &ExtendedSequenceNumber {
        &self.last
    }

    /// The largest value a checkpoint may take now.
    pub fn largest_permitted(&self) -> &ExtendedSequenceNumber {
        &self.largest_permitted
    }

    /// Judges a checkpoint request: `Err` carries the Java exception's simple name that goes in
    /// the reply's `error`.
    ///
    /// * `None` checkpoints the largest permitted value (everything delivered; `SHARD_END`
    ///   during `shardEnded`); a sub-sequence number given with it is ignored.
    /// * A negative sub-sequence number, text that is neither digits nor a sentinel, or a value
    ///   outside [last checkpoint, largest permitted] → `IllegalArgumentException`.
    /// * A value textually equal to the last checkpoint is accepted without a write, even at
    ///   the end of a shard (so a child that already checkpointed its last record and repeats
    ///   that checkpoint at `shardEnded` does **not** store `SHARD_END`: only a null checkpoint
    ///   does then).
    ///
    /// ```
    /// use kcl_core::driver::{CheckpointOutcome, ExtendedSequenceNumber as E, LeaseCheckpointer};
    /// let mut cp = LeaseCheckpointer::new(E::trim_horizon());
    /// cp.records_delivered(E::new("100", 0));
    /// cp.checkpoint(Some("100"), None).unwrap();
    /// cp.shard_ended();
    /// assert_eq!(cp.checkpoint(Some("100"), Some(0)), Ok(CheckpointOutcome::Unchanged));
    /// assert_eq!(cp.last(), &E::new("100", 0)); // not SHARD_END
    /// assert_eq!(cp.checkpoint(None, None), Ok(CheckpointOutcome::Stored(E::shard_end())));
    /// ```
    pub fn checkpoint(
        &mut self,
        sequence_number: Option<&str>,
        sub_sequence_number: Option<i64>,
    ) -> Result<CheckpointOutcome, &'static str> {
        let Some(sequence_number) = sequence_number else {
            let target = self.largest_permitted.clone();
            return Ok(self.advance(target));
        };
        let sub = sub_sequence_number.unwrap_or(0);
        if sub < 0 {
            return Err("IllegalArgumentException");
        }
        let target = ExtendedSequenceNumber::new(sequence_number, sub);
        let above_last = target
            .compare(&self.last)
            .map_err(|_| "IllegalArgumentException")?;
        let below_largest = target
            .compare(&self.largest_permitted)
            .map_err(|_| "IllegalArgumentException")?;
        if above_last == Ordering::Less || below_largest == Ordering::Greater {
            return Err("IllegalArgumentException");
        }
        Ok(self.advance(target))
    }

    /// Java's `advancePosition`: nothing is written when the requested value equals the last
    /// checkpoint; the last delivered record at the end of the shard is written as `SHARD_END`.
    fn advance(&mut self, requested: ExtendedSequenceNumber) -> CheckpointOutcome {
        if requested == self.last {
            return CheckpointOutcome::Unchanged;
        }
        let stored = if self.at_shard_end.as_ref() == Some(&requested) {
            ExtendedSequenceNumber::shard_end()
        } else {
            requested
        };
        self.last = stored.clone();
        CheckpointOutcome::Stored(stored)
    }
}

/// A strict JSON reader that keeps numbers as text, as Jackson's parser sees them.
mod json {
    use std::fmt;

    /// Jackson's default nesting limit.
    const MAX_DEPTH: usize = 1000;
    /// Jackson's default limit on the length of a number.
    const MAX_NUMBER_LENGTH: usize = 1000;

    #[derive(Clone, Debug, PartialEq)]
    pub(super) enum Value {
        Null,
        Bool(bool),
        Number(String),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    pub(super) enum Root {
        Object(Vec<(String, Value)>),
        NotAnObject,
    }

    #[derive(Debug)]
    pub(super) struct Error {
        at: usize,
        what: &'static str,
    }

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} at character {}", self.what, self.at + 1)
        }
    }

    /// Parses the first JSON value of `text` if it is an object; anything after it is ignored.
    pub(super) fn parse_leading_object(text: &str) -> Result<Root, Error> {
        let mut parser = Parser {
            chars: text.chars().collect(),
            at: 0,
        };
        parser.skip_whitespace();
        match parser.peek() {
            Some('{') => match parser.value(0)? {
                Value::Object(entries) => Ok(Root::Object(entries)),
                _ => unreachable!("an object starts with a brace"),
            },
            Some(_) => {
                // Scalars and arrays are read (and may be invalid) but are never messages.
                parser.value(0)?;
                Ok(Root::NotAnObject)
            }
            None => Ok(Root::NotAnObject),
        }
    }

    struct Parser {
        chars: Vec<char>,
        at: usize,
    }

    impl Parser {
        fn peek(&self) -> Option<char> {
            self.chars.get(self.at).copied()
        }

        fn fail<T>(&self, what: &'static str) -> Result<T, Error> {
            Err(Error { at: self.at, what })
        }

        fn skip_whitespace(&mut self) {
            while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
                self.at += 1;
            }
        }

        fn expect(&mut self, wanted: char, what: &'static str) -> Result<(), Error> {
            self.skip_whitespace();
            if self.peek() == Some(wanted) {
                self.at += 1;
                Ok(())
            } else {
                self.fail(what)
            }
        }

        fn value(&mut self, depth: usize) -> Result<Value, Error> {
            if depth > MAX_DEPTH {
                return self.fail("nesting too deep");
            }
            self.skip_whitespace();
            match self.peek() {
                Some('{') => {
                    self.at += 1;
                    let mut entries = Vec::new();
                    self.skip_whitespace();
                    if self.peek() == Some('}') {
                        self.at += 1;
                        return Ok(Value::Object(entries));
                    }
                    loop {
                        self.skip_whitespace();
                        if self.peek() != Some('"') {
                            return self.fail("expected a double-quoted field name");
                        }
                        let key = self.string()?;
                        self.expect(':', "expected ':'")?;
                        let value = self.value(depth + 1)?;
                        entries.push((key, value));
                        self.skip_whitespace();
                        match self.peek() {
                            Some(',') => self.at += 1,
                            Some('}') => {
                                self.at += 1;
                                return Ok(Value::Object(entries));
                            }
                            _ => return self.fail("expected ',' or '}'"),
                        }
                    }
                }
                Some('[') => {
                    self.at += 1;
                    let mut items = Vec::new();
                    self.skip_whitespace();
                    if self.peek() == Some(']') {
                        self.at += 1;
                        return Ok(Value::Array(items));
                    }
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.skip_whitespace();
                        match self.peek() {
                            Some(',') => self.at += 1,
                            Some(']') => {
                                self.at += 1;
                                return Ok(Value::Array(items));
                            }
                            _ => return self.fail("expected ',' or ']'"),
                        }
                    }
                }
                Some('"') => self.string().map(Value::String),
                Some('-' | '0'..='9') => self.number().map(Value::Number),
                Some('t') => self.literal("true", Value::Bool(true)),
                Some('f') => self.literal("false", Value::Bool(false)),
                Some('n') => self.literal("null", Value::Null),
                Some(_) => self.fail("unexpected character"),
                None => self.fail("unexpected end of input"),
            }
        }

        fn literal(&mut self, word: &'static str, value: Value) -> Result<Value, Error> {
            let end = self.at + word.chars().count();
            if end <= self.chars.len()
                && self.chars[self.at..end].iter().copied().eq(word.chars())
                && !self
                    .chars
                    .get(end)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                self.at = end;
                Ok(value)
            } else {
                self.fail("unrecognized token")
            }
        }

        fn digits(&mut self) -> usize {
            let start = self.at;
            while matches!(self.peek(), Some('0'..='9')) {
                self.at += 1;
            }
            self.at - start
        }

        fn number(&mut self) -> Result<String, Error> {
            let start = self.at;
            if self.peek() == Some('-') {
                self.at += 1;
            }
            match self.peek() {
                Some('0') => {
                    self.at += 1;
                    if matches!(self.peek(), Some('0'..='9')) {
                        return self.fail("leading zeroes are not allowed");
                    }
                }
                Some('1'..='9') => {
                    self.digits();
                }
                _ => return self.fail("expected a digit"),
            }
            if self.peek() == Some('.') {
                self.at += 1;
                if self.digits() == 0 {
                    return self.fail("expected a digit after the decimal point");
                }
            }
            if matches!(self.peek(), Some('e' | 'E')) {
                self.at += 1;
                if matches!(self.peek(), Some('+' | '-')) {
                    self.at += 1;
                }
                if self.digits() == 0 {
                    return self.fail("expected a digit in the exponent");
                }
            }
            if self.at - start > MAX_NUMBER_LENGTH {
                return self.fail("number too long");
            }
            if self
                .peek()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
            {
                return self.fail("unexpected character after a number");
            }
            Ok(self.chars[start..self.at].iter().collect())
        }

        fn hex4(&mut self) -> Result<u32, Error> {
            let mut code = 0;
            for _ in 0..4 {
                let Some(digit) = self.peek().and_then(|c| c.to_digit(16)) else {
                    return self.fail("expected 4 hex digits after \\u");
                };
                code = code * 16 + digit;
                self.at += 1;
            }
            Ok(code)
        }

        fn string(&mut self) -> Result<String, Error> {
            self.at += 1; // the opening quote
            let mut out = String::new();
            loop {
                let Some(c) = self.peek() else {
                    return self.fail("unterminated string");
                };
                self.at += 1;
                match c {
                    '"' => return Ok(out),
                    '\\' => {
                        let Some(escaped) = self.peek() else {
                            return self.fail("unterminated string");
                        };
                        self.at += 1;
                        match escaped {
                            '"' => out.push('"'),
                            '\\' => out.push('\\'),
                            '/' => out.push('/'),
                            'b' => out.push('\u{8}'),
                            'f' => out.push('\u{c}'),
                            'n' => out.push('\n'),
                            'r' => out.push('\r'),
                            't' => out.push('\t'),
                            'u' => {
                                let code = self.hex4()?;
                                let decoded = if (0xD800..0xDC00).contains(&code)
                                    && self.chars.get(self.at) == Some(&'\\')
                                    && self.chars.get(self.at + 1) == Some(&'u')
                                {
                                    let resume = self.at;
                                    self.at += 2;
                                    let low = self.hex4()?;
                                    if (0xDC00..0xE000).contains(&low) {
                                        char::from_u32(
                                            0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00),
                                        )
                                    } else {
                                        self.at = resume;
                                        None
                                    }
                                } else {
                                    char::from_u32(code)
                                };
                                // Java keeps lone surrogates; text here cannot.
                                out.push(decoded.unwrap_or('\u{fffd}'));
                            }
                            _ => return self.fail("unrecognized escape"),
                        }
                    }
                    c if (c as u32) < 0x20 => {
                        return self.fail("unescaped control character in a string")
                    }
                    c => out.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(text: &str) -> ChildLine {
        ChildLine::Status {
            response_for: Some(text.into()),
        }
    }

    fn checkpoint(sequence: Option<&str>, sub: Option<i64>) -> ChildLine {
        ChildLine::Checkpoint(CheckpointRequest {
            sequence_number: sequence.map(Into::into),
            sub_sequence_number: sub,
            error: None,
        })
    }

    fn is_skipped(line: &str) -> bool {
        matches!(parse_child_line(line.as_bytes()), ChildLine::Skipped { .. })
    }

    /// Each case was fed to the daemon's own `ObjectMapper` (KCL 3.1.3, Jackson 2.18).
    #[test]
    fn status_lines_are_read_like_jackson() {
        let accepted = [
            (
                r#"{"action":"status","responseFor":"processRecords"}"#,
                "processRecords",
            ),
            (
                r#"{"action": "status", "responseFor": "processRecords"}"#,
                "processRecords",
            ),
            (
                r#"{"responseFor":"processRecords","action":"status"}"#,
                "processRecords",
            ),
            (
                r#"{"action":"status","responseFor":"x"} trailing junk"#,
                "x",
            ),
            (r#"{"action":"status","responseFor":"x"}}"#, "x"),
            (
                r#"{"action":"status","responseFor":"x"}{"action":"status","responseFor":"y"}"#,
                "x",
            ),
            (
                r#"{"action":"status","responseFor":"a","responseFor":"b"}"#,
                "b",
            ),
            (r#"{"action":"status","responseFor":5}"#, "5"),
            (r#"{"action":"status","responseFor":true}"#, "true"),
            (r#"{"action":"status","responseFor":1E5}"#, "1E5"),
            (
                r#"{"action":"status","responseFor":"\u0069nitialize"}"#,
                "initialize",
            ),
            (
                r#" {"action":"status","responseFor":"initialize"}  "#,
                "initialize",
            ),
            (r#"{"action" : "status" , "responseFor" : "x" }"#, "x"),
            (r#"{"action":"status","responseFor":"x"}/* comment */"#, "x"),
        ];
        for (line, response_for) in accepted {
            assert_eq!(
                parse_child_line(line.as_bytes()),
                status(response_for),
                "{line}"
            );
        }
        for line in [
            r#"{"action":"status"}"#,
            r#"{"action":"status","responseFor":null}"#,
        ] {
            assert_eq!(
                parse_child_line(line.as_bytes()),
                ChildLine::Status { response_for: None }
            );
        }
        let refused = [
            r#"{"action":"status","responseFor":"processRecords","ok":true}"#,
            r#"{"action":"status","action":"status","responseFor":"b"}"#,
            r#"{"action":"status","responseFor":"x","action":"checkpoint"}"#,
            r#"{"action":"STATUS","responseFor":"b"}"#,
            r#"{"action":"Status","responseFor":"b"}"#,
            r#"{"responseFor":"b"}"#,
            r#"{"action":"status","responseFor":["a"]}"#,
            r#"{"action":"status","responseFor":{"a":1}}"#,
            r#"{"action":"status","responseFor":"x","responseFor":["y"]}"#,
            r#"{"action":"record"}"#,
            r#"{"action":5}"#,
            r#"{"action":null,"responseFor":"x"}"#,
            r#"{"foo":1}"#,
            "DEBUG hello",
            "[]",
            r#""status""#,
            "null",
            "{'action':'status','responseFor':'x'}",
            r#"{"action":"status","responseFor":"x",}"#,
            r#"{"action":"status","responseFor":"x""#,
            "{\"action\":\"status\",\"responseFor\":\"a\tb\"}",
        ];
        for line in refused {
            assert!(is_skipped(line), "{line} should be skipped");
        }
    }

    #[test]
    fn checkpoint_values_are_coerced_like_jackson() {
        let cases = [
            (
                r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
                None,
                None,
            ),
            (r#"{"action":"checkpoint"}"#, None, None),
            (
                r#"{"action":"checkpoint","sequenceNumber":"123","subSequenceNumber":2}"#,
                Some("123"),
                Some(2),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":123,"subSequenceNumber":"2"}"#,
                Some("123"),
                Some(2),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":12345678901234567890123456789012345678901234567890123456,"subSequenceNumber":0}"#,
                Some("12345678901234567890123456789012345678901234567890123456"),
                Some(0),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":1.50,"subSequenceNumber":0}"#,
                Some("1.50"),
                Some(0),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":1e2,"subSequenceNumber":0}"#,
                Some("1e2"),
                Some(0),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":false,"subSequenceNumber":0}"#,
                Some("false"),
                Some(0),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"","subSequenceNumber":0}"#,
                Some(""),
                Some(0),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":1.5}"#,
                Some("1"),
                Some(1),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":-1.5}"#,
                Some("1"),
                Some(-1),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":1e2}"#,
                Some("1"),
                Some(100),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":-1}"#,
                Some("1"),
                Some(-1),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":-0}"#,
                Some("1"),
                Some(0),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":9223372036854775807}"#,
                Some("1"),
                Some(i64::MAX),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":" 2"}"#,
                Some("1"),
                Some(2),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"+2"}"#,
                Some("1"),
                Some(2),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"-2"}"#,
                Some("1"),
                Some(-2),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"007"}"#,
                Some("1"),
                Some(7),
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":""}"#,
                Some("1"),
                None,
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"   "}"#,
                Some("1"),
                None,
            ),
            (
                r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"null"}"#,
                Some("1"),
                None,
            ),
        ];
        for (line, sequence, sub) in cases {
            assert_eq!(
                parse_child_line(line.as_bytes()),
                checkpoint(sequence, sub),
                "{line}"
            );
        }
        let with_error = r#"{"action":"checkpoint","sequenceNumber":"1","error":5}"#;
        assert_eq!(
            parse_child_line(with_error.as_bytes()),
            ChildLine::Checkpoint(CheckpointRequest {
                sequence_number: Some("1".into()),
                sub_sequence_number: None,
                error: Some("5".into())
            })
        );
        let refused = [
            r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":99999999999999999999}"#,
            r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":1e30}"#,
            r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":9.9e18}"#,
            r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"abc"}"#,
            r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"1.5"}"#,
            r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"1e2"}"#,
            r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"0x10"}"#,
            r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"99999999999999999999"}"#,
            r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":true}"#,
            r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":[1]}"#,
            r#"{"action":"checkpoint","sequenceNumber":["1"],"subSequenceNumber":0}"#,
            r#"{"action":"checkpoint","sequenceNumber":{"a":1},"subSequenceNumber":0}"#,
            r#"{"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":0,"error":{}}"#,
            r#"{"action":"checkpoint","sequenceNumber":01,"subSequenceNumber":0}"#,
            r#"{"action":"checkpoint","checkpoint":"1"}"#,
        ];
        for line in refused {
            assert!(is_skipped(line), "{line} should be skipped");
        }
    }

    #[test]
    fn other_messages_are_recognized_but_not_status() {
        let others = [
            (r#"{"action":"initialize","shardId":"x"}"#, "initialize"),
            (r#"{"action":"initialize"}"#, "initialize"),
            (
                r#"{"action":"processRecords","records":[],"millisBehindLatest":5}"#,
                "processRecords",
            ),
            (
                r#"{"action":"processRecords","records":[null]}"#,
                "processRecords",
            ),
            (r#"{"action":"leaseLost"}"#, "leaseLost"),
            (r#"{"action":"shardEnded"}"#, "shardEnded"),
            (r#"{"action":"shutdownRequested"}"#, "shutdownRequested"),
            (r#"{"action":"shutdown","reason":"BOGUS"}"#, "shutdown"),
            (r#"{"action":"shutdown","reason":5}"#, "shutdown"),
        ];
        for (line, action) in others {
            assert_eq!(
                parse_child_line(line.as_bytes()),
                ChildLine::OtherMessage { action },
                "{line}"
            );
        }
        for line in [
            r#"{"action":"initialize","shardId":"x","extra":1}"#,
            r#"{"action":"leaseLost","x":1}"#,
            r#"{"action":"processRecords","records":"x"}"#,
            r#"{"action":"processRecords","records":[1]}"#,
            r#"{"action":"processRecords","records":[{"x":1}]}"#,
            // The daemon cannot read back its own records: `action` is read-only there.
            r#"{"action":"processRecords","records":[{"data":"aGk=","action":"record"}]}"#,
            r#"{"action":"shutdown","reason":[1]}"#,
        ] {
            assert!(is_skipped(line), "{line} should be skipped");
        }
    }

    #[test]
    fn blank_and_invalid_utf8_lines() {
        assert_eq!(parse_child_line(b""), ChildLine::Blank);
        assert_eq!(parse_child_line(b"  \t "), ChildLine::Blank);
        let mut line = br#"{"action":"status","responseFor":"z"#.to_vec();
        line.push(0xff);
        line.extend_from_slice(br#""}"#);
        assert_eq!(parse_child_line(&line), status("z\u{fffd}"));
        assert!(matches!(
            parse_child_line(b"\xff{\"action\":\"status\",\"responseFor\":\"z\"}"),
            ChildLine::Skipped { .. }
        ));
    }

    #[test]
    fn surrogates_and_deep_nesting() {
        let pair = r#"{"action":"status","responseFor":"\ud83d\udd11"}"#;
        assert_eq!(parse_child_line(pair.as_bytes()), status("🔑"));
        let lone = r#"{"action":"status","responseFor":"\ud800"}"#;
        assert_eq!(parse_child_line(lone.as_bytes()), status("\u{fffd}"));
        let deep = format!(
            r#"{{"action":"status","responseFor":"x","n":{}{}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert!(is_skipped(&deep));
    }

    #[test]
    fn line_reader_splits_like_java() {
        let mut reader = LineReader::new(&b"\r\n\na\r\rb\n"[..]);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            lines.push(line);
        }
        assert_eq!(lines, [&b""[..], b"", b"a", b"", b"b"]);
        let mut tiny = LineReader::new(io::BufReader::with_capacity(1, &b"x\r\ny"[..]));
        assert_eq!(tiny.next_line().unwrap(), Some(b"x".to_vec()));
        assert_eq!(tiny.next_line().unwrap(), Some(b"y".to_vec()));
        assert_eq!(tiny.next_line().unwrap(), None);
    }

    /// Each case was run against the KCL 3.1.3 `ShardRecordProcessorCheckpointer`;
    /// `kcl-cli/tests/judge.rs` compares thousands of generated ones with the jar.
    #[test]
    fn checkpointer_matches_the_kcl() {
        let e = ExtendedSequenceNumber::new;
        let illegal = Err("IllegalArgumentException");
        let mut cp = LeaseCheckpointer::new(ExtendedSequenceNumber::trim_horizon());
        cp.records_delivered(e("100", 0));
        assert_eq!(
            cp.checkpoint(Some("50"), Some(0)),
            Ok(CheckpointOutcome::Stored(e("50", 0)))
        );
        assert_eq!(cp.checkpoint(Some("40"), Some(0)), illegal);
        assert_eq!(
            cp.checkpoint(Some("50"), Some(0)),
            Ok(CheckpointOutcome::Unchanged)
        );
        assert_eq!(cp.checkpoint(Some("101"), Some(0)), illegal);
        for text in [
            "abc",
            "",
            "-12",
            "1.50",
            "TRIM_HORIZON",
            "SHARD_END",
            "LATEST",
            "trim_horizon",
        ] {
            assert_eq!(cp.checkpoint(Some(text), Some(0)), illegal, "{text}");
        }
        assert_eq!(cp.checkpoint(Some("100"), Some(-1)), illegal);
        assert_eq!(cp.checkpoint(Some("100"), Some(1)), illegal);
        assert_eq!(
            cp.checkpoint(Some("0100"), Some(0)),
            Ok(CheckpointOutcome::Stored(e("0100", 0)))
        );
        assert_eq!(
            cp.checkpoint(Some("100"), None),
            Ok(CheckpointOutcome::Stored(e("100", 0)))
        );
        assert_eq!(
            cp.checkpoint(None, Some(-5)),
            Ok(CheckpointOutcome::Unchanged)
        );

        // Fresh lease, nothing delivered: only the starting sentinel (or later ones) is in range.
        let mut fresh = LeaseCheckpointer::new(ExtendedSequenceNumber::trim_horizon());
        assert_eq!(fresh.checkpoint(Some("5"), None), illegal);
        assert_eq!(
            fresh.checkpoint(None, None),
            Ok(CheckpointOutcome::Unchanged)
        );
        fresh.records_delivered(e("100", 0));
        assert_eq!(
            fresh.checkpoint(Some("TRIM_HORIZON"), None),
            Ok(CheckpointOutcome::Unchanged)
        );
        assert_eq!(fresh.checkpoint(Some("AT_TIMESTAMP"), None), illegal);
        assert_eq!(
            fresh.checkpoint(Some("LATEST"), None),
            Ok(CheckpointOutcome::Stored(e("LATEST", 0)))
        );
        assert_eq!(fresh.checkpoint(Some("TRIM_HORIZON"), None), illegal);

        // End of shard: anything from the last checkpoint up is accepted; the last delivered
        // record (or null) stores SHARD_END.
        fn at_end(last: &str) -> LeaseCheckpointer {
            let mut cp = LeaseCheckpointer::new(ExtendedSequenceNumber::new(last, 0));
            cp.records_delivered(ExtendedSequenceNumber::new("100", 0));
            cp.shard_ended();
            cp
        }
        let mut cp = at_end("50");
        assert_eq!(
            cp.checkpoint(Some("70"), None),
            Ok(CheckpointOutcome::Stored(e("70", 0)))
        );
        assert_eq!(
            cp.checkpoint(Some("200"), None),
            Ok(CheckpointOutcome::Stored(e("200", 0)))
        );
        assert_eq!(cp.checkpoint(Some("100"), None), illegal);
        assert_eq!(
            cp.checkpoint(None, None),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
        assert_eq!(cp.checkpoint(Some("100"), None), illegal);
        let mut cp = at_end("50");
        assert_eq!(
            cp.checkpoint(Some("100"), Some(0)),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
        let mut cp = at_end("50");
        assert_eq!(
            cp.checkpoint(Some("SHARD_END"), None),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
        assert_eq!(cp.checkpoint(None, None), Ok(CheckpointOutcome::Unchanged));
        let mut cp = at_end("50");
        assert_eq!(
            cp.checkpoint(Some("0100"), None),
            Ok(CheckpointOutcome::Stored(e("0100", 0)))
        );
        assert_eq!(
            cp.checkpoint(Some("100"), None),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
        let mut cp = at_end("100");
        assert_eq!(
            cp.checkpoint(Some("100"), None),
            Ok(CheckpointOutcome::Unchanged)
        );
        // SHARD_END equals SHARD_END whatever the sub-sequence numbers, so any is in range.
        let mut cp = at_end("50");
        assert_eq!(
            cp.checkpoint(Some("SHARD_END"), Some(3)),
            Ok(CheckpointOutcome::Stored(e("SHARD_END", 3)))
        );
        assert_eq!(
            cp.checkpoint(Some("SHARD_END"), Some(0)),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
        // Java's Character.isDigit: decimal digits of any script of the BMP, stored as written.
        let mut cp = LeaseCheckpointer::new(ExtendedSequenceNumber::trim_horizon());
        cp.records_delivered(e("100", 0));
        assert_eq!(
            cp.checkpoint(Some("١٠"), None),
            Ok(CheckpointOutcome::Stored(e("١٠", 0)))
        );
        assert_eq!(cp.checkpoint(Some("9"), None), illegal);
        assert_eq!(
            cp.checkpoint(Some("０１００"), None),
            Ok(CheckpointOutcome::Stored(e("０１００", 0)))
        );
        assert_eq!(cp.checkpoint(Some("1\u{1D7CE}"), None), illegal);
        let mut empty = LeaseCheckpointer::new(ExtendedSequenceNumber::trim_horizon());
        empty.shard_ended();
        assert_eq!(
            empty.checkpoint(None, None),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
    }

    #[test]
    fn reply_echoes_the_coerced_request() {
        let request = CheckpointRequest {
            sequence_number: None,
            sub_sequence_number: Some(3),
            error: None,
        };
        assert_eq!(
            request.reply_json(None),
            r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":3,"error":null}"#
        );
    }
}
