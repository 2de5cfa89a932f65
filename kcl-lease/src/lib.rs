//! The Java KCL 3.x lease table without I/O: what a native consumer needs to share a DynamoDB
//! lease table with the Java KCL (3.1.3) and the MultiLangDaemon, and to hand it back and forth
//! with nothing reprocessed.
//!
//! - [`AttributeValue`], [`Item`]: DynamoDB values and items, with serde to and from DynamoDB
//!   JSON.
//! - [`Lease`], [`decode`], [`encode`]: the lease item codec, attribute by attribute as Java
//!   writes it ([`attr`] spells the names).
//! - [`ops`]: every lease write of §2.1 as a [`Condition`] plus an [`Update`], [`apply`] (the
//!   one rule book of what a write does), and [`interpret_renew_failure`].
//! - [`ExpiryTracker`]: expiry as observed (a counter unchanged for the failover time), never
//!   timed by a wall clock.
//! - [`coordinator`]: the leader lock ([`LockItem`]) with the lock client's writes, the client
//!   version ([`MigrationState`]) and the [`WorkerMode`] it implies, the [`WorkerMetricStats`]
//!   rows and the active-worker rule.
//! - [`plan`]: pure planners returning the writes to issue — a count-based lease assignment for
//!   a native 3.x leader, the 2.x lease taker, and shard sync (initial leases, child leases at
//!   shard end, parent blocking, cleanup).
//! - [`LeaseStore`]: the storage interface (async, no runtime dependency); [`MemoryStore`]
//!   implements it deterministically with fault injection and a write log; [`block_on`] drives
//!   it without a runtime.
//! - `dynamo` (feature `dynamodb`): `DynamoStore`, the same interface on DynamoDB through the
//!   AWS SDK, and the creation of the three tables as the Java KCL 3.1.3 creates them.
//!
//! Checkpoint values are [`kcl_protocol::ExtendedSequenceNumber`] (Java's order and
//! sentinels).
//!
//! ```
//! use kcl_lease::{ExpiryTracker, Lease, LeaseStore, MemoryStore, Table, block_on, decode_leases, ops};
//! use kcl_protocol::ExtendedSequenceNumber as E;
//! use std::time::Duration;
//!
//! let store = MemoryStore::new();
//! block_on(store.create_if_not_exists(&Lease::new("shardId-0", E::trim_horizon()))).unwrap();
//!
//! // A 2.x taker scans, sees an unowned lease (expired at first sight) and takes it.
//! let mut expiry = ExpiryTracker::new(Duration::from_secs(10));
//! let (leases, _) = decode_leases(&block_on(store.scan(Table::Lease)).unwrap());
//! let lease = &leases[0];
//! expiry.observe(&lease.lease_key, lease.lease_counter, lease.lease_owner.is_some(), Duration::ZERO);
//! assert!(expiry.is_expired("shardId-0", Duration::ZERO));
//! let taken = block_on(store.update(Table::Lease, &ops::take(lease, "worker-a"))).unwrap();
//! assert_eq!(taken["leaseOwner"].as_s(), Some("worker-a"));
//!
//! // A checkpoint fenced by the counter the taker knows (1).
//! let mut held = lease.clone();
//! held.lease_counter = 1;
//! block_on(store.update(Table::Lease, &ops::checkpoint(&held, &E::new("49590", 0)))).unwrap();
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod attr;
pub mod coordinator;
#[cfg(feature = "dynamodb")]
pub mod dynamo;
mod executor;
mod expiry;
mod item;
mod memory;
pub mod ops;
pub mod plan;
mod store;
mod value;

pub use coordinator::{
    ClientVersion, ItemError, LockItem, LockObserver, LockState, MigrationState, WorkerMetricStats,
    WorkerMode,
};
pub use executor::block_on;
pub use expiry::{ExpiryTracker, Monotonic};
pub use item::{CodecError, Decoded, Lease, Problem, decode, encode};
pub use memory::{LoggedWrite, MemoryStore, Outcome, Request};
pub use ops::{
    Action, ApplyError, Condition, ConditionFailed, Delete, Expect, Expectation, RenewVerdict,
    Update, Write, apply, apply_delete, interpret_renew_failure,
};
pub use store::{LeaseStore, StoreError, Table, UpdateError, decode_leases};
pub use value::{AttributeValue, Item, item_from_json, item_to_json};
