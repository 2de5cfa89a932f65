use kcl::testing::{StoredCheckpoint, TestDaemon};
use kcl::{Checkpoint, Checkpointer, Json};

#[derive(serde::Deserialize)]
struct Event {
    n: u64,
}

#[derive(Default)]
struct Summer {
    total: u64,
    flushed: bool,
}

#[kcl::processor]
impl Summer {
    #[kcl::on_records]
    async fn add(&mut self, events: Vec<Json<Event>>) -> kcl::Result<()> {
        tokio::task::yield_now().await;
        self.total += events.iter().map(|e| e.n).sum::<u64>();
        Ok(())
    }

    #[kcl::on_shutdown_requested]
    async fn flush(&mut self, checkpointer: &mut Checkpointer<'_>) -> kcl::Result<()> {
        tokio::task::yield_now().await;
        self.flushed = true;
        checkpointer.checkpoint_handled()?;
        Ok(())
    }
}

#[kcl::on_records]
async fn per_record(event: Json<Event>) -> Checkpoint {
    tokio::task::yield_now().await;
    if event.n > 10 { Checkpoint::Now } else { Checkpoint::Later }
}

fn main() {
    let mut daemon = TestDaemon::new(Summer::default());
    daemon.initialize("shardId-000000000000");
    daemon.process_payloads([r#"{"n":2}"#, r#"{"n":3}"#]);
    assert_eq!(daemon.processor().total, 5);
    daemon.shutdown_requested();
    assert!(daemon.processor().flushed);

    let mut daemon = TestDaemon::with_strategy(PerRecord, kcl::CheckpointStrategy::Manual);
    daemon.initialize("shardId-000000000000");
    let first = daemon.next_record(r#"{"n":1}"#);
    let big = daemon.next_record(r#"{"n":50}"#);
    let last = daemon.next_record(r#"{"n":2}"#);
    daemon.process_records(vec![first, big.clone(), last], None);
    assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(big.position().clone())));
}
