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
//! use kcl_protocol::daemon::{parse_child_line, ChildLine};
//! let line = br#"{"action": "status", "responseFor": "processRecords"}"#;
//! assert_eq!(parse_child_line(line), ChildLine::Status { response_for: Some("processRecords".into()) });
//! // One extra key and the daemon skips the whole line (and keeps waiting for a status).
//! let extra = br#"{"action":"status","responseFor":"processRecords","ok":true}"#;
//! assert!(matches!(parse_child_line(extra), ChildLine::Skipped { .. }));
//! ```

use std::io::{self, BufRead};

use crate::message::{CheckpointReply, DaemonMessage};

/// What the daemon makes of one line written by a child on its stdout.
///
/// ```
/// use kcl_protocol::daemon::{parse_child_line, ChildLine};
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
/// use kcl_protocol::daemon::{parse_child_line, ChildLine, CheckpointRequest};
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
    /// use kcl_protocol::daemon::CheckpointRequest;
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
/// use kcl_protocol::daemon::{parse_child_line, ChildLine};
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
/// use kcl_protocol::daemon::LineReader;
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
                        return self.fail("unescaped control character in a string");
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
