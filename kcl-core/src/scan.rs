//! The fast path for `processRecords`: a scanner for exactly the Java daemon's form of the line
//! (Jackson's key order, no whitespace, `"action":"record"` last). A first pass checks the shape
//! and notes where each field lies without copying anything; a second pass decodes each base64
//! payload in place, inside the line's own buffer, which the batch's records then share: a
//! 14 MB batch needs no second buffer and no allocation per record.
//!
//! Anything else — other key orders, escapes in a partition key, `null` data, a number where a
//! string is expected — fails the first pass, which changes nothing, and the general (serde)
//! parser handles the line, so behaviour never depends on which path ran. The scanner is never
//! more lenient than JSON: no leading zeros, no raw control bytes inside strings, and only
//! JSON's whitespace (space, tab, CR, LF) after the closing brace; whatever it refuses, the
//! serde path decides.

use std::sync::Arc;

use base64::Engine as _;

use crate::payload::PayloadError;
use crate::position::Position;
use crate::record::{Record, LENIENT_BASE64};

/// What every line the fast path takes starts with.
pub(crate) const PREFIX: &[u8] = br#"{"action":"processRecords","records":["#;

/// A batch decoded by the fast path.
pub(crate) struct ScannedBatch {
    /// The records, or the first payload that is not base64.
    pub(crate) records: Result<Vec<Record>, PayloadError>,
    pub(crate) first: Option<Position>,
    pub(crate) last: Option<Position>,
    pub(crate) count: usize,
    pub(crate) millis_behind_latest: Option<u64>,
    /// The line's buffer, shared with the records: once they are gone it can be read into again.
    pub(crate) buffer: Arc<Vec<u8>>,
}

/// Where one record's fields lie in the line (offsets from the line's start).
struct Fields {
    data: (usize, usize),
    key: (usize, usize),
    position: Position,
    arrival_millis: Option<i64>,
}

/// The first pass's result: the shape is right, here is where everything is.
pub(crate) struct Layout {
    records: Vec<Fields>,
    millis_behind_latest: Option<u64>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn literal(&mut self, expected: &[u8]) -> Option<()> {
        let end = self.at + expected.len();
        (self.bytes.get(self.at..end)? == expected).then(|| self.at = end)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// A string without escapes or raw control bytes (which JSON forbids inside strings): the
    /// range between the quotes. `ascii` also refuses bytes above 0x7f (for base64 text, so
    /// that the line's bytes are exactly what the serde path sees).
    fn plain_string(&mut self, ascii: bool) -> Option<(usize, usize)> {
        self.literal(b"\"")?;
        let start = self.at;
        let len = memchr::memchr(b'"', &self.bytes[start..])?;
        // One branch-free pass (it vectorises) for everything the serde path would read
        // differently: escapes, control bytes and, for base64, non-ASCII bytes.
        let limit = if ascii { 0x60 } else { 0xe0 };
        let unusual = self.bytes[start..start + len]
            .iter()
            .fold(false, |found, &b| {
                found | (b == b'\\') | (b.wrapping_sub(0x20) >= limit)
            });
        if unusual {
            return None;
        }
        self.at = start + len + 1;
        Some((start, start + len))
    }

    /// A JSON integer: an optional minus sign, then `0` alone or digits not starting with `0`.
    fn integer(&mut self) -> Option<i64> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        if self.at - digits > 1 && self.bytes[digits] == b'0' {
            return None; // a leading zero: not JSON
        }
        std::str::from_utf8(&self.bytes[start..self.at])
            .ok()?
            .parse()
            .ok()
    }

    fn integer_or_null(&mut self) -> Option<Option<i64>> {
        if self.literal(b"null").is_some() {
            return Some(None);
        }
        self.integer().map(Some)
    }
}

/// First pass: checks that `line` is a `processRecords` in the daemon's exact form and notes
/// where each field lies. Reads only.
pub(crate) fn layout(line: &[u8]) -> Option<Layout> {
    let mut cursor = Cursor { bytes: line, at: 0 };
    cursor.literal(PREFIX)?;
    let mut records = Vec::with_capacity(line.len() / 400 + 1);
    if cursor.peek() != Some(b']') {
        loop {
            cursor.literal(br#"{"data":"#)?;
            let data = cursor.plain_string(true)?;
            cursor.literal(br#","partitionKey":"#)?;
            let key = cursor.plain_string(false)?;
            std::str::from_utf8(&line[key.0..key.1]).ok()?;
            cursor.literal(br#","sequenceNumber":"#)?;
            let (start, end) = cursor.plain_string(true)?;
            let sequence = &line[start..end];
            if sequence.is_empty() || !sequence.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let sequence = std::str::from_utf8(sequence).ok()?;
            cursor.literal(br#","approximateArrivalTimestamp":"#)?;
            let arrival_millis = cursor.integer_or_null()?;
            cursor.literal(br#","subSequenceNumber":"#)?;
            let sub = u64::try_from(cursor.integer()?).ok()?;
            cursor.literal(br#","action":"record"}"#)?;
            records.push(Fields {
                data,
                key,
                position: Position::new(sequence, sub),
                arrival_millis,
            });
            match cursor.peek()? {
                b',' => cursor.at += 1,
                b']' => break,
                _ => return None,
            }
        }
    }
    cursor.literal(br#"],"millisBehindLatest":"#)?;
    let millis_behind_latest = match cursor.integer_or_null()? {
        Some(lag) => Some(u64::try_from(lag).ok()?),
        None => None,
    };
    cursor.literal(b"}")?;
    // JSON's whitespace only (not form feed or vertical tab).
    if !line[cursor.at..]
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return None;
    }
    Some(Layout {
        records,
        millis_behind_latest,
    })
}

/// Second pass: decodes every payload in place inside `buffer`, whose line starts at `offset`,
/// and makes the records share the buffer.
pub(crate) fn decode_in_place(mut buffer: Vec<u8>, offset: usize, layout: Layout) -> ScannedBatch {
    let first = layout.records.first().map(|f| f.position.clone());
    let last = layout.records.last().map(|f| f.position.clone());
    let count = layout.records.len();
    let mut decoded = Vec::with_capacity(count);
    for fields in &layout.records {
        let (start, end) = (offset + fields.data.0, offset + fields.data.1);
        match decode_range(&mut buffer, start, end) {
            Some(len) => decoded.push((start, start + len)),
            None => {
                let key = &buffer[offset + fields.key.0..offset + fields.key.1];
                let error = LENIENT_BASE64
                    .decode(&buffer[start..end])
                    .expect_err("decode_range failed, so the lenient engine fails too");
                let key = String::from_utf8_lossy(key).into_owned();
                return ScannedBatch {
                    records: Err(PayloadError::invalid_base64(&fields.position, &key, error)),
                    first,
                    last,
                    count,
                    millis_behind_latest: layout.millis_behind_latest,
                    buffer: Arc::new(buffer),
                };
            }
        }
    }
    let buffer = Arc::new(buffer);
    let records = layout
        .records
        .into_iter()
        .zip(decoded)
        .map(|(fields, data)| {
            let key = (offset + fields.key.0, offset + fields.key.1);
            Record::in_buffer(
                Arc::clone(&buffer),
                data,
                key,
                fields.position,
                fields.arrival_millis,
            )
        })
        .collect();
    ScannedBatch {
        records: Ok(records),
        first,
        last,
        count,
        millis_behind_latest: layout.millis_behind_latest,
        buffer,
    }
}

/// Decodes `buffer[start..end]` into its own beginning; the decoded length.
fn decode_range(buffer: &mut [u8], start: usize, end: usize) -> Option<usize> {
    if let Ok(decoded) = base64_simd::STANDARD.decode_inplace(&mut buffer[start..end]) {
        return Some(decoded.len());
    }
    // Unpadded or otherwise unusual: the lenient scalar engine, then copied into place (the
    // decoded bytes are never longer than the text).
    let decoded = LENIENT_BASE64.decode(&buffer[start..end]).ok()?;
    buffer[start..start + decoded.len()].copy_from_slice(&decoded);
    Some(decoded.len())
}

/// Both passes on a borrowed line (copied first): for callers that do not own the buffer.
pub(crate) fn scan_process_records(line: &[u8]) -> Option<ScannedBatch> {
    let layout = layout(line)?;
    Some(decode_in_place(line.to_vec(), 0, layout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse_line, DaemonMessage, ParsedLine};

    const LINE: &str = r#"{"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"},{"data":"","partitionKey":"ключ-🔑","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":null,"subSequenceNumber":2,"action":"record"},{"data":"aGk","partitionKey":"unpadded","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":5}"#;

    #[test]
    fn agrees_with_the_general_parser() {
        let scanned = scan_process_records(LINE.as_bytes()).expect("the daemon's form");
        let ParsedLine::Message(DaemonMessage::ProcessRecords(message)) =
            parse_line(LINE.as_bytes())
        else {
            panic!("not parsed");
        };
        let general = Record::batch_from_wire(message.records).unwrap();
        let records = scanned.records.unwrap();
        assert_eq!(records, general);
        assert_eq!(scanned.millis_behind_latest, Some(5));
        assert_eq!(records[1].partition_key(), "ключ-🔑");
        assert_eq!(records[2].data(), b"hi");
        assert_eq!(records[1].approximate_arrival_millis(), None);
        assert_eq!(scanned.count, 3);
    }

    #[test]
    fn decodes_inside_a_larger_buffer() {
        let mut buffer = b"previous line\n".to_vec();
        let offset = buffer.len();
        buffer.extend_from_slice(LINE.as_bytes());
        buffer.extend_from_slice(b"\n{\"action\":\"leaseLost\"}");
        let layout = layout(&buffer[offset..offset + LINE.len()]).unwrap();
        let scanned = decode_in_place(buffer, offset, layout);
        assert_eq!(scanned.records.unwrap()[0].data(), b"hello");
    }

    #[test]
    fn invalid_base64_is_a_payload_error_naming_the_record() {
        let line = LINE.replace(r#""data":"aGVsbG8=""#, r#""data":"!!!!""#);
        let scanned = scan_process_records(line.as_bytes()).expect("the shape is right");
        let error = scanned.records.unwrap_err().to_string();
        assert!(
            error.contains("49590338271490256608559692538361571095921575989136588898/0"),
            "{error}"
        );
        assert!(error.contains("pk-1"), "{error}");
        assert_eq!(scanned.first.unwrap().sub_sequence_number(), 0);
    }

    /// Every form serde_json refuses (JSON's grammar) must fail the first pass too, so that the
    /// serde path decides; a lone `0` and `-0` are whole numbers and stay accepted.
    #[test]
    fn is_exactly_as_strict_as_json() {
        let refused = [
            // leading zeros
            LINE.replace(":1700000000000,", ":01700000000000,"),
            LINE.replace(":1700000000000,", ":-01700000000000,"),
            LINE.replace(r#""subSequenceNumber":2,"#, r#""subSequenceNumber":02,"#),
            LINE.replace(r#""subSequenceNumber":2,"#, r#""subSequenceNumber":00,"#),
            LINE.replace(r#""millisBehindLatest":5}"#, r#""millisBehindLatest":05}"#),
            // raw control bytes inside strings
            LINE.replace("pk-1", "pk\t1"),
            LINE.replace("pk-1", "pk\u{1}1"),
            LINE.replace("pk-1", "pk\u{1f}1"),
            LINE.replace("aGVsbG8=", "aGVs\tbG8="),
            // trailing bytes that are not JSON whitespace
            format!("{LINE}\u{c}"),
            format!("{LINE}\u{b}"),
            format!("{LINE} \u{0}"),
        ];
        let mut taken = Vec::new();
        for line in &refused {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_err(),
                "serde_json takes {line:?}"
            );
            if layout(line.as_bytes()).is_some() {
                taken.push(line.chars().take(200).collect::<String>());
            }
        }
        assert!(
            taken.is_empty(),
            "the scanner takes {} of {} lines JSON refuses: {taken:#?}",
            taken.len(),
            refused.len()
        );
        let accepted = [
            format!("{LINE} \t\r\n"),
            LINE.replace(":1700000000000,", ":0,"),
            LINE.replace(":1700000000000,", ":-0,"),
            LINE.replace(r#""millisBehindLatest":5}"#, r#""millisBehindLatest":0}"#),
            LINE.replace("pk-1", "pk\u{7f}~ \u{80}"),
        ];
        for line in accepted {
            assert!(
                layout(line.as_bytes()).is_some(),
                "the scanner refuses {line:?}"
            );
        }
    }

    #[test]
    fn gives_up_on_anything_unusual() {
        for line in [
            LINE.replace(r#""partitionKey":"pk-1""#, r#""partitionKey":"p\"k""#),
            LINE.replace(r#""data":"aGVsbG8=""#, r#""data":null"#),
            LINE.replace(r#","action":"record"}"#, "}"),
            LINE.replace(
                r#""millisBehindLatest":5}"#,
                r#""millisBehindLatest":5,"x":1}"#,
            ),
            LINE.replace(r#""sequenceNumber":"4959"#, r#""sequenceNumber":"x959"#),
            LINE.replace(
                "{\"action\":\"processRecords\",",
                "{ \"action\":\"processRecords\",",
            ),
        ] {
            assert!(layout(line.as_bytes()).is_none(), "{line}");
        }
        assert!(
            layout(br#"{"action":"processRecords","records":[],"millisBehindLatest":null}"#)
                .is_some()
        );
    }
}
