//! Following a SplitShard or MergeShards through what the record processors wrote
//! (as the Python suite's scenario 4 did): the first `shardEnded` of a parent, the first `initialize` of a
//! child, and waiting for the parents' leases to reach `SHARD_END`.

use std::time::Duration;

use crate::leases::LeaseTable;
use crate::poll::poll;
use crate::sink::{Event, Sink};

/// The first event of `kind` (`shardEnded`, `initialize`, ...) the sink recorded for `shard`.
pub fn first_event(sink: &Sink, shard: &str, kind: &str) -> Option<Event> {
    sink.events()
        .into_iter()
        .find(|e| e.shard == shard && e.kind() == kind)
}

/// Polls up to `deadline` until every shard of `shards` has an `initialize` event in `sink`;
/// whether they all have.
pub fn wait_initialized_all(sink: &Sink, shards: &[String], deadline: Duration) -> bool {
    poll(
        deadline,
        Duration::from_millis(250),
        || {
            !shards.is_empty()
                && shards
                    .iter()
                    .all(|s| first_event(sink, s, "initialize").is_some())
        },
        |&done| done,
    )
}

/// Polls up to `deadline` until the lease of every shard of `shards` has the checkpoint
/// `SHARD_END`; whether they all have.
pub fn wait_shard_end(table: &LeaseTable, shards: &[String], deadline: Duration) -> bool {
    poll(
        deadline,
        Duration::from_millis(500),
        || {
            let checkpoints = table.checkpoints().unwrap_or_default();
            shards
                .iter()
                .all(|s| checkpoints.get(s).is_some_and(|c| c.is_shard_end()))
        },
        |&done| done,
    )
}

/// The stored checkpoint of `shard` as text (`SHARD_END`, a sequence number, or `missing`).
pub fn checkpoint_text(table: &LeaseTable, shard: &str) -> String {
    table
        .checkpoints()
        .ok()
        .and_then(|c| c.get(shard).map(|c| c.sequence_number().to_owned()))
        .unwrap_or_else(|| "missing".to_owned())
}
