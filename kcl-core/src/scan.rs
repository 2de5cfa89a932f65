//! The fast path for `processRecords`: a scanner for exactly the Java daemon's form of the line
//! (Jackson's key order, no whitespace, `"action":"record"` last) that decodes records straight
//! from the line into one shared buffer, with no intermediate JSON tree and no allocation per
//! record. Anything else — other key orders, escapes in a partition key, `null` data, a number
//! where a string is expected, invalid base64 — makes it give up, and the general (serde) parser
//! handles the line, so behaviour never depends on which path ran.

use crate::position::Position;
use crate::record::{Record, RecordsBuilder};

/// A batch decoded by the fast path.
pub(crate) struct ScannedBatch {
    pub(crate) records: Vec<Record>,
    pub(crate) millis_behind_latest: Option<u64>,
}

/// What every line the fast path takes starts with.
pub(crate) const PREFIX: &[u8] = br#"{"action":"processRecords","records":["#;

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

    /// A string without escapes: the bytes between the quotes.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.literal(b"\"")?;
        let rest = &self.bytes[self.at..];
        let len = memchr::memchr(b'"', rest)?;
        let text = &rest[..len];
        if memchr::memchr(b'\\', text).is_some() {
            return None;
        }
        self.at += len + 1;
        Some(text)
    }

    fn integer(&mut self) -> Option<i64> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
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

/// Decodes a `processRecords` line in the daemon's exact form, or `None`.
pub(crate) fn scan_process_records(line: &[u8]) -> Option<ScannedBatch> {
    let mut cursor = Cursor { bytes: line, at: 0 };
    cursor.literal(PREFIX)?;
    // Decoded payloads are about 3/4 of the line; keys and the rest fit in the remainder.
    let mut builder = RecordsBuilder::new(Vec::with_capacity(line.len() * 3 / 4), line.len() / 300);
    if cursor.peek() != Some(b']') {
        loop {
            cursor.literal(br#"{"data":"#)?;
            let data = cursor.plain_string()?;
            cursor.literal(br#","partitionKey":"#)?;
            let key = std::str::from_utf8(cursor.plain_string()?).ok()?;
            cursor.literal(br#","sequenceNumber":"#)?;
            let sequence = cursor.plain_string()?;
            if sequence.is_empty() || !sequence.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let sequence = std::str::from_utf8(sequence).ok()?;
            cursor.literal(br#","approximateArrivalTimestamp":"#)?;
            let arrival = cursor.integer_or_null()?;
            cursor.literal(br#","subSequenceNumber":"#)?;
            let sub = u64::try_from(cursor.integer()?).ok()?;
            cursor.literal(br#","action":"record"}"#)?;
            let position = Position::new(sequence, sub);
            builder.push_base64(data, key, position, arrival).ok()?;
            match cursor.peek()? {
                b',' => cursor.at += 1,
                b']' => break,
                _ => return None,
            }
        }
    }
    cursor.literal(br#"],"millisBehindLatest":"#)?;
    let lag = match cursor.integer_or_null()? {
        Some(lag) => Some(u64::try_from(lag).ok()?),
        None => None,
    };
    cursor.literal(b"}")?;
    if !line[cursor.at..].iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(ScannedBatch {
        records: builder.finish(),
        millis_behind_latest: lag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse_line, DaemonMessage, ParsedLine};

    const LINE: &str = r#"{"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"},{"data":"","partitionKey":"ключ-🔑","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":null,"subSequenceNumber":2,"action":"record"}],"millisBehindLatest":5}"#;

    #[test]
    fn agrees_with_the_general_parser() {
        let scanned = scan_process_records(LINE.as_bytes()).expect("the daemon's form");
        let ParsedLine::Message(DaemonMessage::ProcessRecords(message)) =
            parse_line(LINE.as_bytes())
        else {
            panic!("not parsed");
        };
        let general = Record::batch_from_wire(message.records).unwrap();
        assert_eq!(scanned.records, general);
        assert_eq!(scanned.millis_behind_latest, Some(5));
        assert_eq!(scanned.records[1].partition_key(), "ключ-🔑");
        assert_eq!(scanned.records[1].approximate_arrival_millis(), None);
    }

    #[test]
    fn gives_up_on_anything_unusual() {
        for line in [
            LINE.replace(r#""partitionKey":"pk-1""#, r#""partitionKey":"p\"k""#),
            LINE.replace(r#""data":"aGVsbG8=""#, r#""data":null"#),
            LINE.replace(r#""data":"aGVsbG8=""#, r#""data":"!!!""#),
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
            assert!(scan_process_records(line.as_bytes()).is_none(), "{line}");
        }
        assert!(scan_process_records(
            br#"{"action":"processRecords","records":[],"millisBehindLatest":null}"#
        )
        .is_some());
    }
}
