//! Input formats of `kcl run`, and how records get their sequence numbers and shards.
//!
//! * `lines`: one record per line; the terminator (`\n` or `\r\n`) is removed, other bytes are
//!   kept as they are (not necessarily UTF-8).
//! * `jsonl`: one JSON object per line (blank lines skipped):
//!   `{"data": "text" | any JSON, "dataBase64": "...", "partitionKey": "...",
//!   "explicitHashKey": "decimal", "approximateArrivalTimestamp": epoch-millis}`. Exactly one of
//!   `data` (a string is sent as its UTF-8 bytes, other JSON as its compact text) and
//!   `dataBase64`.
//! * `raw`: the bytes cut into records of a fixed size.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;

use base64::Engine as _;
use kcl_protocol::SequenceNumber;
use md5::{Digest, Md5};

use super::InputFormat;
use crate::error::{Error, Result};

/// One input record, before it is given a shard and a sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct InputRecord {
    /// The payload.
    pub data: Vec<u8>,
    /// The partition key.
    pub partition_key: String,
    /// A hash key that picks the shard instead of the partition key's MD5.
    pub explicit_hash_key: Option<u128>,
    /// Arrival time, epoch milliseconds, if the input gives one.
    pub arrival: Option<i64>,
    /// Where it came from, for messages: "line 12" or "chunk 3".
    pub origin: u64,
}

/// Opens `--input`: the file, or stdin for `-` (with a reminder of how to end it when stdin is
/// a terminal).
pub(super) fn open(input: &str) -> Result<Box<dyn BufRead + Send>> {
    if input == "-" {
        if std::io::stdin().is_terminal() {
            eprintln!(
                "kcl run: reading records from the terminal, one per line; end with Ctrl-D (or pass --input FILE)"
            );
        }
        Ok(Box::new(BufReader::new(std::io::stdin())))
    } else {
        let file =
            File::open(input).map_err(|e| Error::file("open the input", Path::new(input), e))?;
        Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
    }
}

/// Reads records from the input in one of the formats.
pub(super) struct InputReader {
    reader: Box<dyn BufRead + Send>,
    format: InputFormat,
    partition_key: Option<String>,
    record_size: usize,
    number: u64,
}

impl InputReader {
    /// A reader of `format` records; `partition_key` replaces the default key (the line or
    /// chunk number) in the `lines` and `raw` formats.
    pub(super) fn new(
        reader: Box<dyn BufRead + Send>,
        format: InputFormat,
        partition_key: Option<String>,
        record_size: usize,
    ) -> Self {
        InputReader {
            reader,
            format,
            partition_key,
            record_size,
            number: 0,
        }
    }

    /// The next record, `None` at the end of the input.
    pub(super) fn next_record(&mut self) -> Result<Option<InputRecord>> {
        loop {
            self.number += 1;
            let number = self.number;
            let data = match self.format {
                InputFormat::Raw => {
                    let mut chunk = Vec::with_capacity(self.record_size.min(1 << 20));
                    (&mut self.reader)
                        .take(self.record_size as u64)
                        .read_to_end(&mut chunk)
                        .map_err(|e| Error::io("cannot read the input", e))?;
                    if chunk.is_empty() {
                        return Ok(None);
                    }
                    chunk
                }
                InputFormat::Lines | InputFormat::Jsonl => {
                    let mut line = Vec::new();
                    let read = self
                        .reader
                        .read_until(b'\n', &mut line)
                        .map_err(|e| Error::io("cannot read the input", e))?;
                    if read == 0 {
                        return Ok(None);
                    }
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    line
                }
            };
            if self.format == InputFormat::Jsonl {
                if data.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return parse_jsonl(&data, number).map(Some);
            }
            let partition_key = self
                .partition_key
                .clone()
                .unwrap_or_else(|| number.to_string());
            return Ok(Some(InputRecord {
                data,
                partition_key,
                explicit_hash_key: None,
                arrival: None,
                origin: number,
            }));
        }
    }
}

fn parse_jsonl(line: &[u8], number: u64) -> Result<InputRecord> {
    let bad = |what: String| {
        Error::usage_hint(
            format!("input line {number}: {what}"),
            r#"each jsonl line is an object like {"data":"hello","partitionKey":"k1"} (or "dataBase64" instead of "data")"#,
        )
    };
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| bad(format!("not JSON ({e})")))?;
    let serde_json::Value::Object(fields) = value else {
        return Err(bad("not a JSON object".into()));
    };
    let mut data = None;
    let mut partition_key = None;
    let mut explicit_hash_key = None;
    let mut arrival = None;
    for (key, value) in fields {
        match key.as_str() {
            "data" => {
                let bytes = match value {
                    serde_json::Value::String(text) => text.into_bytes(),
                    other => other.to_string().into_bytes(),
                };
                if data.replace(bytes).is_some() {
                    return Err(bad("both data and dataBase64".into()));
                }
            }
            "dataBase64" => {
                let serde_json::Value::String(text) = value else {
                    return Err(bad("dataBase64 must be a string".into()));
                };
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|e| bad(format!("dataBase64 is not base64 ({e})")))?;
                if data.replace(bytes).is_some() {
                    return Err(bad("both data and dataBase64".into()));
                }
            }
            "partitionKey" => match value {
                serde_json::Value::String(text) => partition_key = Some(text),
                serde_json::Value::Number(n) => partition_key = Some(n.to_string()),
                _ => return Err(bad("partitionKey must be a string".into())),
            },
            "explicitHashKey" => {
                let text = match value {
                    serde_json::Value::String(text) => text,
                    serde_json::Value::Number(n) => n.to_string(),
                    _ => return Err(bad("explicitHashKey must be a decimal string".into())),
                };
                explicit_hash_key = Some(text.trim().parse::<u128>().map_err(|_| {
                    bad(format!(
                        "explicitHashKey {text:?} is not a number in 0..2^128"
                    ))
                })?);
            }
            "approximateArrivalTimestamp" => {
                arrival = Some(value.as_i64().ok_or_else(|| {
                    bad("approximateArrivalTimestamp must be epoch milliseconds".into())
                })?);
            }
            other => {
                return Err(bad(format!(
                    "unknown key {other:?} (known: data, dataBase64, partitionKey, explicitHashKey, approximateArrivalTimestamp)"
                )));
            }
        }
    }
    let Some(data) = data else {
        return Err(bad("no data (or dataBase64)".into()));
    };
    let partition_key = partition_key.unwrap_or_else(|| number.to_string());
    if partition_key.is_empty() || partition_key.chars().count() > 256 {
        return Err(bad(
            "partitionKey must have 1 to 256 characters (as in Kinesis)".into(),
        ));
    }
    Ok(InputRecord {
        data,
        partition_key,
        explicit_hash_key,
        arrival,
        origin: number,
    })
}

/// The shard (0-based) that Kinesis would put a record in, for a stream of `shards` shards
/// that split the hash key space evenly: the hash key is the explicit one or the MD5 of the
/// partition key (a 128-bit big-endian number).
pub fn shard_index(partition_key: &str, explicit_hash_key: Option<u128>, shards: u32) -> u32 {
    let hash = explicit_hash_key.unwrap_or_else(|| {
        let digest = Md5::digest(partition_key.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest);
        u128::from_be_bytes(bytes)
    });
    // floor(hash * shards / 2^128), without overflow.
    let n = u128::from(shards);
    let high = hash >> 64;
    let low = hash & u128::from(u64::MAX);
    let carry = (low * n) >> 64;
    (((high * n) + carry) >> 64) as u32
}

/// The 56-digit sequence number of the input record with 0-based `index`: the same for the
/// same input in every run, increasing with the position in the input
/// ([`SequenceNumber::synthetic`] of `index + 1`: checkpoint files of earlier runs hold them).
pub fn sequence_number(index: u64) -> String {
    SequenceNumber::synthetic(index + 1).as_str().to_owned()
}

/// The 0-based input index of a sequence number made by [`sequence_number`].
pub fn record_index(sequence_number: &str) -> Option<u64> {
    SequenceNumber::new(sequence_number)
        .synthetic_index()?
        .checked_sub(1)
}

/// The shard id of shard `index`, as Kinesis names them.
pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read_all(format: InputFormat, input: &[u8], key: Option<&str>) -> Result<Vec<InputRecord>> {
        let mut reader = InputReader::new(
            Box::new(Cursor::new(input.to_vec())),
            format,
            key.map(Into::into),
            4,
        );
        let mut out = Vec::new();
        while let Some(record) = reader.next_record()? {
            out.push(record);
        }
        Ok(out)
    }

    #[test]
    fn lines_keep_bytes_and_number_keys() {
        let records = read_all(InputFormat::Lines, b"a\r\n\nb\xffc\nlast", None).unwrap();
        let data: Vec<&[u8]> = records.iter().map(|r| r.data.as_slice()).collect();
        assert_eq!(data, [&b"a"[..], b"", b"b\xffc", b"last"]);
        assert_eq!(records[2].partition_key, "3");
        let constant = read_all(InputFormat::Lines, b"x\ny\n", Some("k")).unwrap();
        assert!(constant.iter().all(|r| r.partition_key == "k"));
        assert_eq!(constant.len(), 2);
    }

    #[test]
    fn raw_is_cut_into_chunks() {
        let records = read_all(InputFormat::Raw, b"0123456789", None).unwrap();
        let data: Vec<&[u8]> = records.iter().map(|r| r.data.as_slice()).collect();
        assert_eq!(data, [&b"0123"[..], b"4567", b"89"]);
    }

    #[test]
    fn jsonl_fields() {
        let input =
            br#"{"data":"hello","partitionKey":"k1","approximateArrivalTimestamp":1700000000000}

{"dataBase64":"AP8=","explicitHashKey":"340282366920938463463374607431768211455"}
{"data":{"user":"a"},"partitionKey":7}
"#;
        let records = read_all(InputFormat::Jsonl, input, None).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].data, b"hello");
        assert_eq!(records[0].arrival, Some(1_700_000_000_000));
        assert_eq!(records[1].data, [0, 255]);
        assert_eq!(records[1].partition_key, "3");
        assert_eq!(records[1].explicit_hash_key, Some(u128::MAX));
        assert_eq!(records[2].data, br#"{"user":"a"}"#);
        assert_eq!(records[2].partition_key, "7");
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        for (input, expected) in [
            (&br#"{"data":"a","extra":1}"#[..], "unknown key \"extra\""),
            (br#"{"partitionKey":"k"}"#, "no data"),
            (br#"{"data":"a","dataBase64":"YQ=="}"#, "both"),
            (b"not json", "not JSON"),
            (br#"{"data":"a","partitionKey":""}"#, "1 to 256"),
        ] {
            let error = read_all(InputFormat::Jsonl, input, None)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("line 1") && error.contains(expected),
                "{error}"
            );
        }
    }

    #[test]
    fn shards_split_the_hash_space_evenly() {
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[shard_index(&i.to_string(), None, 4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        // Kinesis: the MD5 of "0" is cfcd2084..., in the last quarter of the space.
        assert_eq!(shard_index("0", None, 4), 3);
    }

    #[test]
    fn sequence_numbers_sort_like_the_input() {
        let a = sequence_number(8);
        let b = sequence_number(9);
        let c = sequence_number(10);
        assert!(a < b && b < c);
        assert_eq!(record_index(&c), Some(10));
        assert_eq!(record_index("123"), None);
        assert_eq!(shard_id(3), "shardId-000000000003");
    }

    #[test]
    fn shard_index_examples() {
        assert_eq!(shard_index("anything", None, 1), 0);
        assert_eq!(shard_index("k", Some(0), 4), 0);
        assert_eq!(shard_index("k", Some(u128::MAX), 4), 3);
        assert_eq!(shard_index("k", Some(1u128 << 127), 2), 1);
    }

    #[test]
    fn sequence_number_examples() {
        let first = sequence_number(0);
        assert_eq!(first.len(), 56);
        assert_eq!(
            first,
            "49666000000000000000000000000000000000000000000000000001"
        );
        assert_eq!(record_index(&first), Some(0));
    }
}
