//! The attribute names of the lease table's items, spelled once (Java KCL 3.1.3,
//! `DynamoDBLeaseSerializer`; `entityType` from 3.5).

/// `S`, the table's hash key: the shard id, or `account:stream:epoch:shardId` in multi-stream mode.
pub const LEASE_KEY: &str = "leaseKey";
/// `S`, optional: the worker that owns the lease; absent when unassigned.
pub const LEASE_OWNER: &str = "leaseOwner";
/// `N`, integer: the fencing counter; it never decreases.
pub const LEASE_COUNTER: &str = "leaseCounter";
/// `S`: the checkpoint's sequence number, or a sentinel.
pub const CHECKPOINT: &str = "checkpoint";
/// `N`: the checkpoint's sub-sequence number (KPL sub-record index).
pub const CHECKPOINT_SUB_SEQUENCE_NUMBER: &str = "checkpointSubSequenceNumber";
/// `S`, optional: the target of a prepared (two-phase) checkpoint.
pub const PENDING_CHECKPOINT: &str = "pendingCheckpoint";
/// `N`, optional: the sub-sequence number of the prepared checkpoint.
pub const PENDING_CHECKPOINT_SUB_SEQUENCE_NUMBER: &str = "pendingCheckpointSubSequenceNumber";
/// `B`, optional: the application state of a prepared checkpoint.
pub const PENDING_CHECKPOINT_STATE: &str = "pendingCheckpointState";
/// `N`: owner changes since the last checkpoint.
pub const OWNER_SWITCHES_SINCE_CHECKPOINT: &str = "ownerSwitchesSinceCheckpoint";
/// `SS`, optional: the parent shards (singular name, as Java spells it).
pub const PARENT_SHARD_ID: &str = "parentShardId";
/// `SS`, optional: the child shards, written on the parent at shard end.
pub const CHILD_SHARD_IDS: &str = "childShardIds";
/// `S`, optional: the first hash key of the shard, decimal.
pub const STARTING_HASH_KEY: &str = "startingHashKey";
/// `S`, optional: the last hash key of the shard, decimal.
pub const ENDING_HASH_KEY: &str = "endingHashKey";
/// `N` (double), optional: the lease's throughput, written by its owner on every renewal.
pub const THROUGHPUT_KBPS: &str = "throughputKBps";
/// `S`, optional: during a graceful handoff, the previous owner that may still checkpoint.
pub const CHECKPOINT_OWNER: &str = "checkpointOwner";
/// `S`, multi-stream mode only: the serialized stream identifier.
pub const STREAM_NAME: &str = "streamName";
/// `S`, multi-stream mode only: the shard id.
pub const SHARD_ID: &str = "shardId";
/// `S`, KCL 3.5 and later: `LEASE` on leases, something else on the other rows of a single table.
pub const ENTITY_TYPE: &str = "entityType";
/// The `entityType` of a lease.
pub const ENTITY_TYPE_LEASE: &str = "LEASE";
/// The lease table's global secondary index: hash `leaseOwner`, range `leaseKey`, keys only.
pub const LEASE_OWNER_INDEX: &str = "LeaseOwnerToLeaseKeyIndex";
