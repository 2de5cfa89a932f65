use kcl::testing::{StoredCheckpoint, TestDaemon};
use kcl::{Checkpointer, Initialize, Json, ShardId};

#[derive(serde::Deserialize)]
struct Order {
    cents: u64,
}

#[derive(Default)]
struct Shop {
    shard: String,
    batch_shards: Vec<String>,
    cents: u64,
    lost: bool,
    ended: bool,
    stopping: bool,
}

#[kcl::processor]
impl Shop {
    #[kcl::on_initialize]
    fn ready(&mut self, shard: &Initialize) -> kcl::Result<()> {
        self.shard = shard.shard_id.clone();
        Ok(())
    }

    #[kcl::on_records]
    fn orders(&mut self, orders: Vec<Json<Order>>, shard: ShardId) {
        self.batch_shards.push(shard.to_string());
        self.cents += orders.iter().map(|o| o.cents).sum::<u64>();
    }

    #[kcl::on_lease_lost]
    fn lost(&mut self) {
        self.lost = true;
    }

    #[kcl::on_shard_ended]
    fn ended(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<(), kcl::CheckpointError> {
        self.ended = true;
        checkpointer.checkpoint()
    }

    #[kcl::on_shutdown_requested]
    fn stopping(&self) {}

    /// An ordinary method next to the hooks.
    fn total(&self) -> u64 {
        self.cents
    }
}

fn main() {
    let mut daemon = TestDaemon::new(Shop::default());
    daemon.initialize("shardId-000000000004");
    let step = daemon.process_payloads([r#"{"cents":5}"#, r#"{"cents":7}"#]);
    assert_eq!(step.checkpoints.len(), 1, "the default strategy checkpoints the batch");
    assert_eq!(daemon.processor().total(), 12);
    assert_eq!(daemon.processor().shard, "shardId-000000000004");
    assert_eq!(daemon.processor().batch_shards, ["shardId-000000000004"]);
    daemon.shutdown_requested();
    assert!(!daemon.processor().stopping);
    daemon.shard_ended();
    assert!(daemon.processor().ended);
    assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
    daemon.lease_lost();
    assert!(daemon.processor().lost);
    // The hook methods stay callable.
    let mut shop = Shop::default();
    shop.orders(vec![Json(Order { cents: 1 })], ShardId::from("s"));
    assert_eq!(shop.total(), 1);
}
