use std::cell::RefCell;

use kcl::testing::TestDaemon;
use kcl::{Batch, Checkpoint, Checkpointer, Json, MillisBehindLatest, PayloadError, Record, ShardId};

thread_local! {
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn seen(what: impl Into<String>) {
    SEEN.with(|s| s.borrow_mut().push(what.into()));
}

#[derive(serde::Deserialize)]
struct Event {
    n: u32,
}

#[kcl::on_records]
fn json_events(events: Vec<Json<Event>>) -> kcl::Result<()> {
    seen(format!("json {}", events.iter().map(|e| e.n).sum::<u32>()));
    Ok(())
}

#[kcl::on_records]
fn strings(lines: Vec<String>) {
    seen(format!("strings {}", lines.join("+")));
}

#[kcl::on_records]
fn bytes(payloads: Vec<Vec<u8>>) -> Result<(), std::io::Error> {
    seen(format!("bytes {}", payloads.iter().map(Vec::len).sum::<usize>()));
    Ok(())
}

#[kcl::on_records]
fn records(records: Vec<Record>) -> Checkpoint {
    seen(format!("records {}", records.len()));
    Checkpoint::Now
}

#[kcl::on_records]
fn lenient(events: Vec<Result<Json<Event>, PayloadError>>) -> kcl::Result<Checkpoint> {
    seen(format!("lenient {} bad", events.iter().filter(|e| e.is_err()).count()));
    Ok(Checkpoint::Later)
}

#[kcl::on_records]
fn pairs(pairs: Vec<(Record, String)>) {
    for (record, text) in pairs {
        seen(format!("pair {} {}", record.partition_key(), text));
    }
}

#[kcl::on_records]
fn everything(
    batch: &Batch,
    records: &[Record],
    shard: ShardId,
    lag: MillisBehindLatest,
    checkpointer: &mut Checkpointer<'_>,
) -> kcl::Result<()> {
    seen(format!("everything {} {} {} {:?}", batch.len(), records.len(), shard, lag.0));
    checkpointer.checkpoint()?;
    Ok(())
}

fn run<P: kcl::RecordProcessor>(processor: P, payloads: &[&str]) -> usize {
    let mut daemon = TestDaemon::new(processor);
    daemon.initialize("shardId-000000000001");
    daemon.process_payloads(payloads).checkpoints.len()
}

fn main() {
    assert_eq!(run(JsonEvents, &[r#"{"n":1}"#, r#"{"n":2}"#]), 1);
    run(Strings, &["a", "b"]);
    run(Bytes, &["abc", "de"]);
    run(Records, &["x"]);
    run(Lenient, &[r#"{"n":1}"#, "nope"]);
    run(Pairs, &["t"]);
    assert_eq!(run(Everything, &["x", "y"]), 1, "already checkpointed: the strategy adds nothing");
    let seen = SEEN.with(|s| s.borrow().clone());
    assert_eq!(
        seen,
        [
            "json 3",
            "strings a+b",
            "bytes 5",
            "records 1",
            "lenient 1 bad",
            "pair pk-1 t",
            "everything 2 2 shardId-000000000001 Some(0)",
        ]
    );
    // A handler function stays callable.
    strings(vec!["direct".to_owned()]);
    assert_eq!(SEEN.with(|s| s.borrow().last().cloned()).unwrap(), "strings direct");
}
