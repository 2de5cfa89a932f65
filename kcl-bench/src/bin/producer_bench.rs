//! `producer-bench`: the producer's throughput against the stub server (FakeKinesis over HTTP on
//! 127.0.0.1), beside its two yardsticks, measured in the same run and interleaved:
//!
//! - `PutRecord` one at a time through the AWS SDK: what `kcl put` did until it used the
//!   producer (producer.md 8.0, the "kcl put today" baseline of T1);
//! - `PutRecords` of 500 pre-built entries, one call after the other on one client: the ceiling
//!   of a plain loop;
//! - `kcl_producer::Producer` with its defaults, records taken one by one with `send`;
//! - the same with same-key KPL aggregation, the records spread over 10 partition keys.
//!
//! ```text
//! producer-bench [--records N] [--put-record-records N] [--payload BYTES] [--keys K]
//!                [--shards S] [--runs R]
//! ```
//!
//! Prints one JSON object per row and run. Every row checks the stub stored each record once
//! (no faults are injected here: these are throughput figures; the fault tests are in
//! kcl-producer/tests).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::config::{Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use kcl_producer::api::StreamRef;
use kcl_producer::aws::SdkKinesis;
use kcl_producer::testing::{FakeKinesis, StubServer};
use kcl_producer::{Aggregation, Producer, Record};

/// The distinct partition keys of the aggregated row (producer.md T1: 10 keys).
const SAME_KEY_KEYS: usize = 10;

struct Args {
    records: usize,
    put_record_records: usize,
    payload: usize,
    keys: usize,
    shards: u32,
    runs: usize,
    /// Only these rows (`--only producer_same_key`, repeatable; default every row).
    only: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut parsed = Args {
        records: 200_000,
        put_record_records: 3_000,
        payload: 100,
        keys: 1_000,
        shards: 4,
        runs: 3,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--only" {
            let row = args.next().ok_or("--only needs a row name")?;
            parsed.only.push(row);
            continue;
        }
        let value: usize = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{arg} needs a number"))?;
        match arg.as_str() {
            "--records" => parsed.records = value,
            "--put-record-records" => parsed.put_record_records = value,
            "--payload" => parsed.payload = value,
            "--keys" => parsed.keys = value.max(1),
            "--shards" => parsed.shards = value.max(1) as u32,
            "--runs" => parsed.runs = value.max(1),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(parsed)
}

/// Record `n` of the workload: key `k{n % keys}`, a payload of `payload` bytes starting with `n`.
fn record(n: usize, args: &Args) -> Record {
    let mut data = format!("{n:012}").into_bytes();
    data.resize(args.payload.max(12), b'x');
    Record::new(format!("k{}", n % args.keys), data)
}

fn sdk_client(server: &StubServer) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .endpoint_url(server.endpoint())
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

/// One measured row: records stored, seconds, calls and entries the stub saw.
struct Measured {
    records: usize,
    seconds: f64,
    calls: u64,
    entries: u64,
}

async fn put_record_loop(args: &Args, client: &aws_sdk_kinesis::Client) -> Result<(), String> {
    for n in 0..args.put_record_records {
        let record = record(n, args);
        client
            .put_record()
            .stream_name("bench")
            .partition_key(record.partition_key)
            .data(Blob::new(record.data.to_vec()))
            .send()
            .await
            .map_err(|e| format!("PutRecord: {e:?}"))?;
    }
    Ok(())
}

async fn put_records_loop(args: &Args, client: &aws_sdk_kinesis::Client) -> Result<(), String> {
    // Entries are built per call, as a hand-written loop builds them.
    for start in (0..args.records).step_by(500) {
        let entries: Vec<PutRecordsRequestEntry> = (start..(start + 500).min(args.records))
            .map(|n| {
                let record = record(n, args);
                PutRecordsRequestEntry::builder()
                    .partition_key(record.partition_key)
                    .data(Blob::new(record.data.to_vec()))
                    .build()
                    .expect("key and data are set")
            })
            .collect();
        let answer = client
            .put_records()
            .stream_name("bench")
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| format!("PutRecords: {e:?}"))?;
        if answer.failed_record_count() != Some(0) {
            return Err(format!("{:?} entries failed", answer.failed_record_count()));
        }
    }
    Ok(())
}

/// `aggregated_keys`: same-key aggregation over that many keys; `shard_map`: shard-map
/// aggregation over the bench's keys.
async fn producer_row(
    args: &Args,
    client: aws_sdk_kinesis::Client,
    aggregated_keys: Option<usize>,
    shard_map: bool,
) -> Result<(), String> {
    let mut builder = Producer::builder(SdkKinesis::new(client), StreamRef::name("bench"));
    if aggregated_keys.is_some() {
        builder = builder.aggregation(Aggregation::same_key());
    }
    if shard_map {
        builder = builder.aggregation(Aggregation::shard_map());
    }
    let producer = builder.build().await.map_err(|e| e.to_string())?;
    let mut tickets = Vec::with_capacity(args.records);
    for n in 0..args.records {
        let mut record = record(n, args);
        if let Some(keys) = aggregated_keys {
            record.partition_key = format!("k{}", n % keys);
        }
        let ticket = producer.send(record).await.map_err(|e| e.to_string())?;
        tickets.push(ticket);
    }
    for ticket in tickets {
        ticket.await.map_err(|failed| failed.to_string())?;
    }
    let report = producer.shutdown(Duration::from_secs(30)).await;
    if !report.is_complete() {
        return Err(format!("shutdown report: {report:?}"));
    }
    Ok(())
}

/// Runs `row` against a fresh stub and checks the stub stored `expected` distinct records.
async fn measure(args: &Args, row: &str, expected: usize) -> Result<Measured, String> {
    let fake = FakeKinesis::new("bench", args.shards);
    let server = StubServer::start(fake.clone())
        .await
        .map_err(|e| e.to_string())?;
    let client = sdk_client(&server);
    let started = Instant::now();
    match row {
        "put_record" => put_record_loop(args, &client).await?,
        "put_records" => put_records_loop(args, &client).await?,
        "producer" => producer_row(args, client, None, false).await?,
        "producer_same_key" => producer_row(args, client, Some(SAME_KEY_KEYS), false).await?,
        "producer_shard_map" => producer_row(args, client, None, true).await?,
        other => return Err(format!("no row {other}")),
    }
    let seconds = started.elapsed().as_secs_f64();
    // Aggregates are opened as the KCL would open them.
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    for stored in fake.all_records() {
        match kcl_kpl::decode(&stored.data) {
            Ok(records) => payloads.extend(records.into_iter().map(|r| r.data)),
            Err(_) => payloads.push(stored.data.to_vec()),
        }
    }
    let total = payloads.len();
    let mut numbers: Vec<&[u8]> = payloads.iter().map(|data| &data[..12]).collect();
    numbers.sort_unstable();
    numbers.dedup();
    if numbers.len() != expected || total != expected {
        return Err(format!(
            "{row}: the stub holds {total} records ({} distinct), expected {expected}",
            numbers.len()
        ));
    }
    let stats = fake.stats();
    Ok(Measured {
        records: expected,
        seconds,
        calls: stats.put_records_calls,
        entries: stats.entries_received,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("producer-bench: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let rows = [
        ("put_record", args.put_record_records),
        ("put_records", args.records),
        ("producer", args.records),
        ("producer_same_key", args.records),
        ("producer_shard_map", args.records),
    ];
    for run in 1..=args.runs {
        for (row, expected) in rows {
            if !args.only.is_empty() && !args.only.iter().any(|only| only == row) {
                continue;
            }
            match runtime.block_on(measure(&args, row, expected)) {
                Ok(m) => println!(
                    "{{\"row\":\"{row}\",\"run\":{run},\"records\":{},\"seconds\":{:.4},\"records_per_second\":{:.0},\"calls\":{},\"entries\":{},\"payload\":{},\"keys\":{},\"shards\":{}}}",
                    m.records,
                    m.seconds,
                    m.records as f64 / m.seconds,
                    m.calls,
                    m.entries,
                    args.payload,
                    args.keys,
                    args.shards
                ),
                Err(message) => {
                    eprintln!("producer-bench: {message}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
