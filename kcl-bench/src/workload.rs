//! The daemon lines of a benchmark workload, built before the clock starts: Jackson-shaped
//! `processRecords` lines with 56-digit sequence numbers and `"action":"record"` last.

use kcl_protocol::message::{DaemonMessage, Initialize, ProcessRecordsMessage, WireRecord};
use kcl_protocol::{Position, SequenceNumber, StartingPosition};

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

/// The `n`-th sequence number of the workload (56 digits, like real ones).
pub fn sequence(n: u64) -> String {
    SequenceNumber::synthetic(n).as_str().to_owned()
}

/// Deterministic pseudo-random numbers (xorshift64), one stream per seed.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Self {
        Random(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (n > 0), near enough.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Deterministic pseudo-random payload bytes.
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut random = Random::new(seed);
    (0..len).map(|_| random.next() as u8).collect()
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
    let records: Vec<WireRecord> = (first..first + count as u64)
        .map(|n| {
            WireRecord::new(
                &payload(n, payload_bytes),
                format!("pk-{}", n % 1000),
                &Position::new(SequenceNumber::synthetic(n), 0),
                Some(1_795_303_005_103 + n as i64),
            )
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
