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

use crate::record::decode::{SCRATCH, decode_range};
use crate::record::{PayloadError, Record};
use kcl_protocol::Position;

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

/// Where one record's fields lie in the line: offsets from the line's start, as `u32` (the fast
/// path takes lines under 4 GiB; the daemon, a JVM, cannot write longer ones). Small on purpose:
/// a 15 MB batch has 10,000 of these alive beside its records.
struct Fields {
    /// The base64 text; after decoding, `data.1` is the payload's end.
    data: (u32, u32),
    key: (u32, u32),
    /// The sequence number's digits.
    sequence: (u32, u32),
    sub_sequence_number: u64,
    arrival_millis: Option<i64>,
}

/// A range of the line as `u32` offsets.
fn narrow((start, end): (usize, usize)) -> Option<(u32, u32)> {
    Some((u32::try_from(start).ok()?, u32::try_from(end).ok()?))
}

/// `line[start..end]`.
fn range(line: &[u8], (start, end): (u32, u32)) -> &[u8] {
    &line[start as usize..end as usize]
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

    /// The text of a string up to its closing quote: the range between the quotes.
    fn string_body(&mut self) -> Option<(usize, usize)> {
        self.literal(b"\"")?;
        let start = self.at;
        let len = memchr::memchr(b'"', &self.bytes[start..])?;
        self.at = start + len + 1;
        Some((start, start + len))
    }

    /// A string of base64 text: no escapes, no raw control bytes (which JSON forbids inside
    /// strings) and nothing above 0x7f, so that the line's bytes are exactly what the serde path
    /// sees. The range between the quotes.
    fn ascii_string(&mut self) -> Option<(usize, usize)> {
        let (start, end) = self.string_body()?;
        // One branch-free pass (it vectorises) over everything the serde path would read
        // differently: escapes, control bytes and non-ASCII bytes.
        let unusual = self.bytes[start..end].iter().fold(false, |found, &b| {
            found | (b == b'\\') | (b.wrapping_sub(0x20) >= 0x60)
        });
        (!unusual).then_some((start, end))
    }

    /// A string of text (a partition key): no escapes or raw control bytes, valid UTF-8. The
    /// range between the quotes. UTF-8 is checked only when a byte above 0x7f is there.
    fn text_string(&mut self) -> Option<(usize, usize)> {
        let (start, end) = self.string_body()?;
        let text = &self.bytes[start..end];
        let (unusual, high) = text.iter().fold((false, false), |(unusual, high), &b| {
            (unusual | (b == b'\\') | (b < 0x20), high | (b >= 0x80))
        });
        if unusual || (high && std::str::from_utf8(text).is_err()) {
            return None;
        }
        Some((start, end))
    }

    /// A string of one or more ASCII digits (a sequence number): the range between the quotes.
    fn digit_string(&mut self) -> Option<(usize, usize)> {
        let (start, end) = self.string_body()?;
        let digits = &self.bytes[start..end];
        // Branch-free, so that it vectorises (`all` stops early, byte by byte).
        let all_digits = digits
            .iter()
            .fold(true, |all, &b| all & (b.wrapping_sub(b'0') < 10));
        if digits.is_empty() || !all_digits {
            return None;
        }
        Some((start, end))
    }

    /// A JSON integer that fits an `i64`: an optional minus sign, then `0` alone or digits not
    /// starting with `0`. Anything else (also a fraction or an exponent, which the next literal
    /// refuses) leaves the line to the serde path.
    fn integer(&mut self) -> Option<i64> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let digits = self.at;
        let mut magnitude: u64 = 0;
        while let Some(digit) = self
            .peek()
            .map(|b| b.wrapping_sub(b'0'))
            .filter(|d| *d < 10)
        {
            magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(digit))?;
            self.at += 1;
        }
        let count = self.at - digits;
        if count == 0 || (count > 1 && self.bytes[digits] == b'0') {
            return None; // no digits, or a leading zero: not JSON
        }
        if negative {
            // Down to i64::MIN, whose magnitude is one more than i64::MAX.
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        }
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
            let data = cursor.ascii_string()?;
            cursor.literal(br#","partitionKey":"#)?;
            // Jackson writes a null key as `null`: an empty key, as on the serde path.
            let key = match cursor.literal(b"null") {
                Some(()) => (cursor.at, cursor.at),
                None => cursor.text_string()?,
            };
            cursor.literal(br#","sequenceNumber":"#)?;
            let sequence = cursor.digit_string()?;
            cursor.literal(br#","approximateArrivalTimestamp":"#)?;
            let arrival_millis = cursor.integer_or_null()?;
            cursor.literal(br#","subSequenceNumber":"#)?;
            let sub = u64::try_from(cursor.integer()?).ok()?;
            cursor.literal(br#","action":"record"}"#)?;
            records.push(Fields {
                data: narrow(data)?,
                key: narrow(key)?,
                sequence: narrow(sequence)?,
                sub_sequence_number: sub,
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

/// The position of a record whose fields `layout` checked, in `line`.
fn position(line: &[u8], fields: &Fields) -> Position {
    let digits = range(line, fields.sequence);
    // SAFETY: `layout` took only sequence numbers of ASCII digits (so UTF-8), and decoding
    // writes only inside payload texts, never over them.
    let sequence = unsafe { std::str::from_utf8_unchecked(digits) };
    Position::new(sequence, fields.sub_sequence_number)
}

/// Second pass: decodes every payload in place inside `buffer`, whose line starts at `offset`,
/// and makes the records share the buffer.
pub(crate) fn decode_in_place(
    mut buffer: Vec<u8>,
    offset: usize,
    mut layout: Layout,
) -> ScannedBatch {
    let line = &buffer[offset..];
    let first = layout.records.first().map(|f| position(line, f));
    let last = layout.records.last().map(|f| position(line, f));
    let count = layout.records.len();
    let mut scratch = [0u8; SCRATCH];
    for fields in &mut layout.records {
        let (start, end) = (
            offset + fields.data.0 as usize,
            offset + fields.data.1 as usize,
        );
        match decode_range(&mut buffer, start, end, &mut scratch) {
            // Never longer than the text, so it fits the text's `u32` range.
            Ok(len) => fields.data.1 = fields.data.0 + len as u32,
            Err(error) => {
                let line = &buffer[offset..];
                let key = String::from_utf8_lossy(range(line, fields.key)).into_owned();
                return ScannedBatch {
                    records: Err(PayloadError::invalid_base64(
                        &position(line, fields),
                        &key,
                        error,
                    )),
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
    let line = &buffer[offset..];
    let at = |(start, end): (u32, u32)| (offset + start as usize, offset + end as usize);
    let records = layout
        .records
        .iter()
        .map(|fields| {
            // SAFETY: `layout` returned only keys it checked as UTF-8 (or empty ones), as
            // ranges of the line, which lies in `buffer` at `offset`, unchanged outside the
            // payloads.
            unsafe {
                Record::in_buffer(
                    Arc::clone(&buffer),
                    at(fields.data),
                    at(fields.key),
                    position(line, fields),
                    fields.arrival_millis,
                )
            }
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

/// Both passes on a borrowed line (copied first): for callers that do not own the buffer.
pub(crate) fn scan_process_records(line: &[u8]) -> Option<ScannedBatch> {
    let layout = layout(line)?;
    Some(decode_in_place(line.to_vec(), 0, layout))
}

/// The two parsers of `processRecords` side by side, for the `scan_vs_serde` fuzz target and
/// the tests: whenever the fast path takes a line, it must give what the serde path gives.
/// Not API: reached through `kcl_core::__not_api`, with no stability promise.
pub(crate) mod differential {
    use super::{PREFIX, scan_process_records};
    use crate::message::{DaemonMessage, ParsedLine, parse_line};
    use crate::record::Record;
    use kcl_protocol::Position;

    /// What one parser made of a line, in the form the runtime acts on.
    ///
    /// ```
    /// use kcl_core::__not_api::{serde_path, Outcome};
    /// let line = br#"{"action":"processRecords","records":[],"millisBehindLatest":null}"#;
    /// assert!(matches!(serde_path(line), Outcome::Batch { count: 0, .. }));
    /// assert!(matches!(serde_path(b"junk"), Outcome::Other(_)));
    /// ```
    #[derive(Debug, PartialEq)]
    pub enum Outcome {
        /// A `processRecords` batch.
        Batch {
            /// The records, or the message of the payload error that fails the batch.
            records: Result<Vec<Record>, String>,
            /// The first record's position.
            first: Option<Position>,
            /// The last record's position.
            last: Option<Position>,
            /// How many records the line holds.
            count: usize,
            /// The lag the line carries.
            millis_behind_latest: Option<u64>,
        },
        /// Anything else, as [`parse_line`] classified it.
        Other(ParsedLine),
    }

    /// What the fast path makes of `line` (a line without its terminator, as the transport
    /// sees it), or `None` when it leaves the line to the serde path.
    ///
    /// ```
    /// use kcl_core::__not_api::fast_path;
    /// assert!(fast_path(br#"{"action":"processRecords","records":[],"millisBehindLatest":0}"#).is_some());
    /// assert!(fast_path(br#"{ "action":"processRecords","records":[],"millisBehindLatest":0}"#).is_none());
    /// ```
    pub fn fast_path(line: &[u8]) -> Option<Outcome> {
        if !line.starts_with(PREFIX) {
            return None;
        }
        let batch = scan_process_records(line)?;
        Some(Outcome::Batch {
            records: batch.records.map_err(|error| error.to_string()),
            first: batch.first,
            last: batch.last,
            count: batch.count,
            millis_behind_latest: batch.millis_behind_latest,
        })
    }

    /// What the serde path makes of `line`: [`parse_line`], then the records decoded as the
    /// runtime decodes them.
    ///
    /// ```
    /// use kcl_core::__not_api::{serde_path, Outcome};
    /// let line = br#"{ "action":"processRecords","records":[{"data":"aGk=","partitionKey":"k","sequenceNumber":"7"}],"millisBehindLatest":3}"#;
    /// let Outcome::Batch { records, count, millis_behind_latest, .. } = serde_path(line) else { panic!() };
    /// assert_eq!((records.unwrap()[0].data(), count, millis_behind_latest), (&b"hi"[..], 1, Some(3)));
    /// ```
    pub fn serde_path(line: &[u8]) -> Outcome {
        match parse_line(line) {
            ParsedLine::Message(DaemonMessage::ProcessRecords(message)) => Outcome::Batch {
                first: message.records.first().map(|r| r.position()),
                last: message.records.last().map(|r| r.position()),
                count: message.records.len(),
                millis_behind_latest: message.millis_behind_latest,
                records: Record::batch_from_wire(message.records).map_err(|e| e.to_string()),
            },
            other => Outcome::Other(other),
        }
    }

    /// Runs both paths on `line`: `Ok(true)` when the fast path took it and agrees with the
    /// serde path, `Ok(false)` when it left the line to the serde path, `Err` (both outcomes)
    /// when they differ.
    ///
    /// ```
    /// use kcl_core::__not_api::check;
    /// let line = br#"{"action":"processRecords","records":[{"data":"aGk=","partitionKey":"k","sequenceNumber":"7","approximateArrivalTimestamp":null,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#;
    /// assert_eq!(check(line), Ok(true));
    /// assert_eq!(check(b"{\"action\":\"leaseLost\"}"), Ok(false));
    /// ```
    pub fn check(line: &[u8]) -> Result<bool, String> {
        let Some(fast) = fast_path(line) else {
            return Ok(false);
        };
        let general = serde_path(line);
        if fast == general {
            Ok(true)
        } else {
            Err(format!(
                "the paths differ on {:?}:\nfast path:  {fast:?}\nserde path: {general:?}",
                String::from_utf8_lossy(line)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{DaemonMessage, ParsedLine, parse_line};

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
    fn the_differential_check_tells_taken_from_left() {
        // The oracle of the fuzz target and of the crafted-lines test: it must be able to say
        // "left to the serde path", or every divergence test would pass vacuously.
        assert_eq!(
            differential::check(b"{\"action\":\"leaseLost\"}"),
            Ok(false)
        );
        assert_eq!(differential::check(LINE.as_bytes()), Ok(true));
        assert_eq!(differential::check(b"junk"), Ok(false));
    }

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

    /// One Jackson-shaped record with its fields given as raw JSON text.
    fn record(data: &str, key: &str, sequence: &str, arrival: &str, sub: &str) -> String {
        format!(
            r#"{{"data":{data},"partitionKey":{key},"sequenceNumber":{sequence},"approximateArrivalTimestamp":{arrival},"subSequenceNumber":{sub},"action":"record"}}"#
        )
    }

    fn line_of(records: &[String], lag: &str) -> String {
        format!(
            r#"{{"action":"processRecords","records":[{}],"millisBehindLatest":{lag}}}"#,
            records.join(",")
        )
    }

    /// The fast path and the serde path agree on every line the fast path takes (the
    /// differential check the `scan_vs_serde` fuzz target runs, on crafted lines).
    #[test]
    fn fast_and_serde_paths_agree_on_crafted_lines() {
        let ok = |data: &str| record(data, r#""pk""#, r#""4959""#, "1700000000000", "0");
        let field = |slot: usize, text: &str| {
            let mut fields = [r#""aGk=""#, r#""pk""#, r#""4959""#, "1700000000000", "0"];
            fields[slot] = text;
            line_of(
                &[record(
                    fields[0], fields[1], fields[2], fields[3], fields[4],
                )],
                "0",
            )
        };
        // 20,000 characters of base64: pieces through the scratch array, then straight ones.
        let long = "QUJD".repeat(5000);
        let mut lines = vec![
            LINE.to_owned(),
            line_of(&[], "null"),
            line_of(&[ok(r#""""#), ok(r#""AP8KDQAi""#), ok("null")], "7"),
        ];
        // Numbers: leading zeros, signs, zero, exponents, fractions, huge values.
        for number in [
            "0",
            "-0",
            "00",
            "01",
            "-01",
            "-1",
            "1e3",
            "1E3",
            "1.0",
            "1.5",
            "-0.0",
            "+1",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "1e400",
            "-",
            "--1",
            "-a",
            "99999999999999999999999",
            "1:2",
            "null",
            r#""12""#,
            "true",
        ] {
            lines.push(field(3, number));
            lines.push(field(4, number));
            lines.push(line_of(&[ok(r#""aGk=""#)], number));
        }
        // Strings: escapes, control bytes, non-ASCII, nulls, wrong types.
        for text in [
            r#""p\"k""#,
            r#""p\\k""#,
            r#""p\u0041k""#,
            r#""p\u0000k""#,
            "\"p\tk\"",
            "\"p\t\tk\"",
            "\"p\u{1}\u{2}k\"",
            "\"p\u{1}k\"",
            "\"p\u{7f}k\"",
            r#""ключ-🔑""#,
            "null",
            r#""""#,
            "17",
        ] {
            lines.push(field(1, text));
            lines.push(field(2, text));
        }
        // Payloads: valid, unpadded, escaped, broken anywhere, long and broken late.
        for data in [
            r#""aGk""#,
            r#""aGk\u003d""#,
            r#""aG\/k""#,
            // Two escapes (an even number of backslashes), two control bytes.
            r#""\/\/\/\/""#,
            "\"aG\t\tk\"",
            "\"aG\tk\"",
            r#""aGk=aGk=""#,
            r#""aGl=""#,
            r#""!!!!""#,
            r#""aGk==""#,
            r#""A===""#,
            r#""a""#,
            r#""aé==""#,
            r#""aGVsbG8=!""#,
            r#""QUJD!UJD""#,
            r#""QUJDQUJ!""#,
        ] {
            lines.push(line_of(&[ok(r#""aGk=""#), ok(data)], "0"));
        }
        for at in [
            0, 1, 5, 100, 3071, 3072, 4095, 4096, 4097, 8191, 12_287, 12_288, 12_290, 16_383,
            19_999,
        ] {
            let mut broken = long.clone().into_bytes();
            broken[at] = b'!';
            let broken = String::from_utf8(broken).unwrap();
            lines.push(line_of(&[ok(&format!("\"{broken}\""))], "0"));
            let mut padded = long[..at / 4 * 4].to_owned();
            padded.push_str("QQ==QUJD");
            lines.push(line_of(&[ok(&format!("\"{padded}\""))], "0"));
        }
        lines.push(line_of(&[ok(&format!("\"{long}\""))], "0"));
        let varied: Vec<u8> = (0..20_011u32).map(|i| (i * 7919 % 251) as u8).collect();
        let varied = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, varied);
        lines.push(line_of(&[ok(&format!("\"{varied}\""))], "0"));
        lines.push(line_of(
            &[ok(&format!("\"{}\"", varied.trim_end_matches('=')))],
            "0",
        ));
        lines.push(line_of(&[ok(&format!("\"{}QQ==\"", &long[..4096]))], "0"));
        // Bytes after the object.
        for tail in [
            " ", "\t", "\r", "\n", " \r\n", "\u{c}", "\u{b}", "\0", "x", "}", " ,",
        ] {
            lines.push(format!("{LINE}{tail}"));
        }
        let mut taken = 0;
        let mut differences = Vec::new();
        for line in &lines {
            match differential::check(line.as_bytes()) {
                Ok(fast) => taken += usize::from(fast),
                Err(difference) => differences.push(difference),
            }
        }
        // Invalid UTF-8 in a key and in a payload, and a key of nothing but bytes above 0x7f.
        let only_high = LINE.replace("pk-1", "\u{1}").into_bytes();
        let at = only_high.iter().position(|&b| b == 1).unwrap();
        let only_high = [&only_high[..at], b"\xff\xfe", &only_high[at + 1..]].concat();
        if let Err(difference) = differential::check(&only_high) {
            differences.push(difference);
        }
        for bytes in [&b"pk\xff"[..], b"aG\xffk"] {
            let mut line = LINE.as_bytes().to_vec();
            let at = line.windows(2).position(|w| w == &bytes[..2]).unwrap();
            line.splice(at..at + 2, bytes.iter().copied());
            if let Err(difference) = differential::check(&line) {
                differences.push(difference);
            }
        }
        assert!(differences.is_empty(), "{}", differences.join("\n\n"));
        assert!(
            taken > 50,
            "the fast path took only {taken} of {} lines",
            lines.len()
        );
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
            // The bytes on either side of the digits.
            LINE.replace(r#""sequenceNumber":"4959"#, r#""sequenceNumber":"49:9"#),
            LINE.replace(r#""sequenceNumber":"4959"#, r#""sequenceNumber":"49/9"#),
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
