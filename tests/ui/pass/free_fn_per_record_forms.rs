use std::cell::RefCell;

use kcl::testing::{StoredCheckpoint, TestDaemon};
use kcl::{Checkpoint, Checkpointer, Json, PayloadError, Record, ShardId};

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
fn one_event(event: Json<Event>) -> kcl::Result<()> {
    seen(format!("event {}", event.n));
    Ok(())
}

#[kcl::processor]
fn one_line(line: String, shard: ShardId) {
    seen(format!("line {line} on {shard}"));
}

#[kcl::on_records]
fn one_payload(payload: Vec<u8>) -> Checkpoint {
    seen(format!("payload {}", payload.len()));
    Checkpoint::Now
}

#[kcl::on_records]
fn one_record(record: Record, checkpointer: &mut Checkpointer<'_>) -> kcl::Result<()> {
    seen(format!("record {}", record.sub_sequence_number()));
    checkpointer.checkpoint_at(&record)?;
    Ok(())
}

#[kcl::on_records]
fn lenient(event: Result<Json<Event>, PayloadError>) {
    seen(format!("lenient {}", event.is_ok()));
}

#[kcl::on_records]
fn pair(pair: (Record, Json<Event>)) {
    let (record, event) = pair;
    seen(format!("pair {} {}", record.partition_key(), event.n));
}

fn main() {
    let mut daemon = TestDaemon::new(OneEvent);
    daemon.initialize("shardId-000000000002");
    daemon.process_payloads([r#"{"n":1}"#, r#"{"n":2}"#]);

    let mut daemon = TestDaemon::new(OneLine);
    daemon.initialize("shardId-000000000002");
    daemon.process_payloads(["hi"]);

    let mut daemon = TestDaemon::with_strategy(OnePayload, kcl::CheckpointStrategy::Manual);
    daemon.initialize("shardId-000000000002");
    let step = daemon.process_payloads(["ab", "c"]);
    assert_eq!(step.checkpoints.len(), 2, "Checkpoint::Now checkpoints each record");

    let mut daemon = TestDaemon::new(OneRecord);
    daemon.initialize("shardId-000000000002");
    let step = daemon.process_payloads(["x", "y"]);
    assert_eq!(step.checkpoints.len(), 2);

    let mut daemon = TestDaemon::new(Lenient);
    daemon.initialize("shardId-000000000002");
    daemon.process_payloads([r#"{"n":1}"#, "bad"]);

    let mut daemon = TestDaemon::new(Pair);
    daemon.initialize("shardId-000000000002");
    daemon.process_payloads([r#"{"n":9}"#]);

    // A bad record stops a strict per-record handler; the records before it were handled.
    let mut daemon = TestDaemon::new(OneEvent);
    daemon.initialize("shardId-000000000003");
    let good = daemon.next_record(r#"{"n":5}"#);
    let bad = daemon.next_record("not json");
    daemon.process_records(vec![good.clone(), bad], None);
    assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(good.position().clone())));

    let seen = SEEN.with(|s| s.borrow().clone());
    assert_eq!(
        seen,
        [
            "event 1",
            "event 2",
            "line hi on shardId-000000000002",
            "payload 2",
            "payload 1",
            "record 0",
            "record 0",
            "lenient true",
            "lenient false",
            "pair pk-1 9",
            "event 5",
        ]
    );
}
