//! The daemon's side of the wire, as test data: real-length sequence numbers, base64 as Jackson
//! writes it, records and `processRecords` lines in the daemon's form.

use kcl::message::{DaemonMessage, ProcessRecordsMessage, WireRecord};

/// `seq(0)`: a real-length Kinesis sequence number.
pub const SEQ_BASE: &str = "49590338271490256608559692538361571095921575989136588898";

/// The `n`-th sequence number of these tests: `SEQ_BASE + n`, always 56 digits.
pub fn seq(n: u64) -> String {
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

/// Standard base64 with padding, as Jackson writes `byte[]`.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Deterministic pseudo-random bytes (xorshift64), one stream per seed.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
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
pub fn wire_record(
    payload: &[u8],
    key: String,
    sequence: String,
    arrival_millis: i64,
) -> WireRecord {
    WireRecord::new(
        payload,
        key,
        &kcl::Position::new(sequence, 0),
        Some(arrival_millis),
    )
}

pub fn process_records_line(records: Vec<WireRecord>, millis_behind_latest: Option<u64>) -> String {
    DaemonMessage::ProcessRecords(ProcessRecordsMessage {
        records,
        millis_behind_latest,
    })
    .to_json()
}

/// An `initialize` line in the daemon's form, at `TRIM_HORIZON`.
pub fn initialize_line(shard_id: &str) -> String {
    format!(
        r#"{{"action":"initialize","shardId":"{shard_id}","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}}"#
    )
}

/// A `processRecords` line in the daemon's form with one record at `seq(0)`: its `data`
/// (base64 text), and its `partitionKey` and `approximateArrivalTimestamp` as raw JSON text.
pub fn one_record_batch(data: &str, key_json: &str, arrival_json: &str) -> String {
    format!(
        r#"{{"action":"processRecords","records":[{{"data":"{data}","partitionKey":{key_json},"sequenceNumber":"{SEQ_BASE}","approximateArrivalTimestamp":{arrival_json},"subSequenceNumber":0,"action":"record"}}],"millisBehindLatest":0}}"#
    )
}

/// The daemon's reply to a successful checkpoint with no position (`null`).
pub const NULL_REPLY: &str =
    r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#;
