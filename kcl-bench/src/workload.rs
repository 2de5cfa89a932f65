//! The daemon lines of a benchmark workload, built before the clock starts: Jackson-shaped
//! `processRecords` lines with 56-digit sequence numbers and `"action":"record"` last.

use kcl_protocol::StartingPosition;
use kcl_protocol::message::{DaemonMessage, Initialize, ProcessRecordsMessage, WireRecord};

use base64::Engine as _;

/// A workload: `batches` batches of `records` records of `payload_bytes` bytes each.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub batches: usize,
    pub records: usize,
    pub payload_bytes: usize,
}

/// A batch line and the position its last record has (what the child should checkpoint).
pub struct BatchLine {
    pub line: Vec<u8>,
    pub last_sequence: String,
    pub records: usize,
}

/// 40 fixed digits; a 16-digit counter follows (56 digits in all, like real sequence numbers).
const SEQUENCE_PREFIX: &str = "4968044282525021313325896074382203563614";

pub fn sequence(n: u64) -> String {
    format!("{SEQUENCE_PREFIX}{n:016}")
}

/// Deterministic pseudo-random payload bytes (xorshift).
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub fn initialize_line() -> Vec<u8> {
    initialize_line_at(StartingPosition::TrimHorizon)
}

/// `initialize` for a lease resuming at `starting_position` (a restarted child).
pub fn initialize_line_at(starting_position: StartingPosition) -> Vec<u8> {
    let mut line = DaemonMessage::Initialize(Initialize {
        shard_id: "shardId-000000000000".into(),
        starting_position,
    })
    .to_json()
    .into_bytes();
    line.push(b'\n');
    line
}

pub fn batch_lines(workload: Workload) -> Vec<BatchLine> {
    let mut n = 0u64;
    (0..workload.batches)
        .map(|batch| {
            let line = batch_line(workload, &mut n, batch);
            BatchLine {
                line,
                last_sequence: sequence(n),
                records: workload.records,
            }
        })
        .collect()
}

/// Batch number `batch` of the workload; `n` counts records across batches.
pub fn batch_line(workload: Workload, n: &mut u64, batch: usize) -> Vec<u8> {
    let line = records_line(*n + 1, workload.records, workload.payload_bytes, batch);
    *n += workload.records as u64;
    line
}

/// A `processRecords` line with records number `first ..= first + count - 1` (the same record
/// number always has the same sequence number, key and payload: redelivery after a restart).
pub fn records_line(first: u64, count: usize, payload_bytes: usize, batch: usize) -> Vec<u8> {
    let engine = base64::engine::general_purpose::STANDARD;
    let records: Vec<WireRecord> = (first..first + count as u64)
        .map(|n| WireRecord {
            data: Some(engine.encode(payload(n, payload_bytes))),
            partition_key: format!("pk-{}", n % 1000),
            sequence_number: sequence(n),
            approximate_arrival_timestamp: Some(1_795_303_005_103 + n as i64),
            sub_sequence_number: Some(0),
        })
        .collect();
    let mut line = DaemonMessage::ProcessRecords(ProcessRecordsMessage {
        records,
        millis_behind_latest: Some(batch as u64),
    })
    .to_json()
    .into_bytes();
    line.push(b'\n');
    line
}
