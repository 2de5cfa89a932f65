//! The in-process parse + extract path: `processRecords` lines through the runtime loop (the
//! fast scanner and the general parser), each record extracted as `Json<T>`, `String` or bytes.
//! `cargo bench -p kcl-core`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kcl_core::message::{DaemonMessage, ProcessRecordsMessage, WireRecord, parse_line};
use kcl_core::{CheckpointStrategy, Json, Position, Runtime, SequenceNumber, from_fn};

#[derive(serde::Deserialize)]
struct Event {
    #[allow(dead_code)]
    id: u64,
    #[allow(dead_code)]
    user: String,
}

/// `batches` lines of `records` JSON events (about 200 bytes each), in the daemon's form.
fn input(batches: usize, records: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = 0u64;
    for _ in 0..batches {
        let records = (0..records)
            .map(|_| {
                n += 1;
                let payload = format!(r#"{{"id":{n},"user":"user-{n:08}","url":"/products/{n}/reviews?page=2&sort=newest","agent":"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0"}}"#);
                let position = Position::new(SequenceNumber::synthetic(n), 0);
                WireRecord::new(payload.as_bytes(), format!("pk-{}", n % 100), &position, Some(1_795_303_005_103))
            })
            .collect();
        let line = DaemonMessage::ProcessRecords(ProcessRecordsMessage {
            records,
            millis_behind_latest: Some(0),
        })
        .to_json();
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

fn run<F>(input: &[u8], handler: F)
where
    F: FnMut(&kcl_core::Batch, &mut kcl_core::Checkpointer<'_>) -> kcl_core::Result<()>,
{
    let mut output = Vec::with_capacity(1 << 16);
    Runtime::new(from_fn(handler))
        .checkpoint_strategy(CheckpointStrategy::Manual)
        .run_on(input, &mut output)
        .expect("in-memory run");
}

fn bench(c: &mut Criterion) {
    let (batches, records) = (20, 1000);
    let input = input(batches, records);
    let mut group = c.benchmark_group("runtime_loop");
    group.throughput(Throughput::Elements((batches * records) as u64));
    group.bench_function(BenchmarkId::new("extract", "bytes"), |b| {
        b.iter(|| {
            run(&input, |batch, _| {
                std::hint::black_box(batch.extract::<Vec<u8>>()?);
                Ok(())
            })
        })
    });
    group.bench_function(BenchmarkId::new("extract", "String"), |b| {
        b.iter(|| {
            run(&input, |batch, _| {
                std::hint::black_box(batch.extract::<String>()?);
                Ok(())
            })
        })
    });
    group.bench_function(BenchmarkId::new("extract", "Json<Event>"), |b| {
        b.iter(|| {
            run(&input, |batch, _| {
                std::hint::black_box(batch.extract::<Json<Event>>()?);
                Ok(())
            })
        })
    });
    group.bench_function(
        BenchmarkId::new("extract", "none (payload untouched)"),
        |b| b.iter(|| run(&input, |_, _| Ok(()))),
    );
    group.finish();

    // The general parser alone (what lines outside the fast path's exact form cost).
    let line = input
        .split(|&b| b == b'\n')
        .next()
        .expect("a line")
        .to_vec();
    let mut group = c.benchmark_group("general_parser");
    group.throughput(Throughput::Elements(records as u64));
    group.bench_function("parse_line processRecords", |b| {
        b.iter(|| parse_line(&line))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
