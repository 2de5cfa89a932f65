//! The lease writes of the Java KCL 3.1.3 (`DynamoDBLeaseRefresher` with the updates of
//! `DynamoDBLeaseSerializer`), each built from the writer's in-memory view of the lease (what it
//! last read or wrote), with Java's condition and Java's changes.
//!
//! Every write either keeps `leaseCounter` or raises it (`PUT known + 1` under the condition
//! `leaseCounter = known`, or `ADD 1`): the counter never decreases.

use kcl_protocol::ExtendedSequenceNumber;

use super::{Action, Condition, Delete, Update, Write};
use crate::attr;
use crate::item::{Lease, decimal, encode, string_set};
use crate::value::AttributeValue;

fn put(name: &str, value: AttributeValue) -> Action {
    Action::Put(name.to_owned(), value)
}

fn remove(name: &str) -> Action {
    Action::Remove(name.to_owned())
}

fn add(name: &str, delta: i64) -> Action {
    Action::Add(name.to_owned(), delta)
}

fn write(lease: &Lease, condition: Condition, actions: Vec<Action>) -> Write {
    Write {
        key: lease.lease_key.clone(),
        condition,
        update: Update::Actions(actions),
    }
}

/// `leaseCounter = known`: the fence of renew, take and checkpoint.
fn counter_is(lease: &Lease) -> Condition {
    Condition::default().equals(attr::LEASE_COUNTER, AttributeValue::n(lease.lease_counter))
}

/// `leaseCounter = known + 1` (`PUT`).
fn counter_plus_one(lease: &Lease) -> Action {
    put(
        attr::LEASE_COUNTER,
        AttributeValue::n(lease.lease_counter.saturating_add(1)),
    )
}

/// `leaseOwner` and `checkpointOwner` as known (each equal, or absent when unknown), and the
/// lease still there (`leaseKey` equal): the fence of assign and evict.
fn owners_are(lease: &Lease) -> Condition {
    Condition::default()
        .equals_or_absent(attr::LEASE_OWNER, lease.lease_owner.as_deref())
        .equals_or_absent(attr::CHECKPOINT_OWNER, lease.checkpoint_owner.as_deref())
        .equals(attr::LEASE_KEY, AttributeValue::s(&lease.lease_key))
}

/// `ownerSwitchesSinceCheckpoint ADD 1` when the owner changes: the known owner is someone else,
/// or a handoff to `new_owner` completes (Java's rule for take and assign).
fn owner_switch(lease: &Lease, new_owner: &str) -> Option<Action> {
    let other_owner = lease.lease_owner.as_deref().is_some_and(|o| o != new_owner);
    let handoff_done = lease.checkpoint_owner.as_deref() == Some(new_owner);
    (other_owner || handoff_done).then(|| add(attr::OWNER_SWITCHES_SINCE_CHECKPOINT, 1))
}

/// `createLeaseIfNotExists`: `PutItem` of the whole lease, if no item has its key.
///
/// ```
/// use kcl_lease::{Lease, MemoryStore, LeaseStore, block_on, ops};
/// use kcl_protocol::ExtendedSequenceNumber as E;
/// let store = MemoryStore::new();
/// let lease = Lease::new("shardId-0", E::trim_horizon());
/// assert!(block_on(store.create_if_not_exists(&lease)).unwrap());
/// assert!(!block_on(store.create_if_not_exists(&lease)).unwrap()); // already there
/// ```
pub fn create_if_not_exists(lease: &Lease) -> Write {
    Write {
        key: lease.lease_key.clone(),
        condition: Condition::default().absent(attr::LEASE_KEY),
        update: Update::PutItem(encode(lease)),
    }
}

/// `renewLease`: `leaseCounter = known + 1` and the owner's `throughputKBps`, conditioned on
/// `leaseCounter = known` and — unless the in-memory lease already knows of a pending handoff
/// (`checkpoint_owner` set) — on `checkpointOwner` absent. A failure returns the old item
/// (`ALL_OLD`) for [`interpret_renew_failure`](crate::interpret_renew_failure).
///
/// ```
/// use kcl_lease::{Expect, Lease, ops};
/// use kcl_protocol::ExtendedSequenceNumber as E;
/// let mut lease = Lease::new("shardId-0", E::trim_horizon());
/// lease.lease_counter = 3;
/// let plain = ops::renew(&lease);
/// assert_eq!(plain.condition.expectations[1].expect, Expect::Absent); // checkpointOwner
/// lease.checkpoint_owner = Some("me".into()); // handoff adopted
/// assert_eq!(ops::renew(&lease).condition.expectations.len(), 1); // the counter only
/// ```
pub fn renew(lease: &Lease) -> Write {
    let mut condition = counter_is(lease);
    if lease.checkpoint_owner.is_none() {
        condition = condition.absent(attr::CHECKPOINT_OWNER);
    }
    let mut actions = vec![counter_plus_one(lease)];
    if let Some(throughput) = lease.throughput_kbps.and_then(decimal) {
        actions.push(put(attr::THROUGHPUT_KBPS, AttributeValue::N(throughput)));
    }
    write(lease, condition, actions)
}

/// `takeLease` (the 2.x lease taker): conditioned on `leaseCounter = known`; `leaseCounter =
/// known + 1`, `leaseOwner = owner`, `checkpointOwner` removed, and owner switches + 1 if the
/// owner changes.
pub fn take(lease: &Lease, owner: &str) -> Write {
    let mut actions = vec![
        counter_plus_one(lease),
        put(attr::LEASE_OWNER, AttributeValue::s(owner)),
        remove(attr::CHECKPOINT_OWNER),
    ];
    actions.extend(owner_switch(lease, owner));
    write(lease, counter_is(lease), actions)
}

/// `assignLease` (the 3.x leader's assignment, and the old owner's handoff transfer):
/// conditioned on `leaseOwner` and `checkpointOwner` as known (or absent) and the lease
/// existing; `leaseOwner = new_owner`, `checkpointOwner` removed, owner switches + 1 if the
/// owner changes, `leaseCounter ADD 1` (the previous owner's next renewal fails).
///
/// The handoff transfer is `assign(&lease, new)` with the lease as the old owner knows it
/// (`leaseOwner = new`, `checkpointOwner = old`).
pub fn assign(lease: &Lease, new_owner: &str) -> Write {
    let mut actions = vec![
        put(attr::LEASE_OWNER, AttributeValue::s(new_owner)),
        remove(attr::CHECKPOINT_OWNER),
    ];
    actions.extend(owner_switch(lease, new_owner));
    actions.push(add(attr::LEASE_COUNTER, 1));
    write(lease, owners_are(lease), actions)
}

/// `initiateGracefulLeaseHandoff` (3.x leader rebalancing a live lease): conditioned on
/// `leaseOwner = old` (the lease's known owner), `checkpointOwner` absent and the lease
/// existing; `leaseOwner = new_owner`, `checkpointOwner = old`. The counter is not touched.
/// `None` when the lease has no known owner (there is nobody to hand off from).
pub fn initiate_graceful_handoff(lease: &Lease, new_owner: &str) -> Option<Write> {
    let old = lease.lease_owner.as_deref()?;
    let condition = Condition::default()
        .equals(attr::LEASE_OWNER, AttributeValue::s(old))
        .absent(attr::CHECKPOINT_OWNER)
        .equals(attr::LEASE_KEY, AttributeValue::s(&lease.lease_key));
    let actions = vec![
        put(attr::LEASE_OWNER, AttributeValue::s(new_owner)),
        put(attr::CHECKPOINT_OWNER, AttributeValue::s(old)),
    ];
    Some(write(lease, condition, actions))
}

/// `evictLease`: conditioned on `leaseOwner` and `checkpointOwner` as known and the lease
/// existing; removes `leaseOwner` unless a handoff is pending (then the new owner keeps it and
/// may start at once), always removes `checkpointOwner`, `leaseCounter ADD 1`.
pub fn evict(lease: &Lease) -> Write {
    let mut actions = Vec::new();
    if lease.checkpoint_owner.is_none() {
        actions.push(remove(attr::LEASE_OWNER));
    }
    actions.push(remove(attr::CHECKPOINT_OWNER));
    actions.push(add(attr::LEASE_COUNTER, 1));
    write(lease, owners_are(lease), actions)
}

/// `updateLease` as the checkpointer calls it: conditioned on `leaseCounter = known` only (not
/// on `checkpointOwner`: the old owner may checkpoint during a handoff); `leaseCounter = known +
/// 1`, `checkpoint` and `checkpointSubSequenceNumber = value`, `ownerSwitchesSinceCheckpoint =
/// 0`, the pending checkpoint removed, and `childShardIds` / the hash range when the lease
/// knows them.
///
/// ```
/// use kcl_lease::{Lease, MemoryStore, LeaseStore, Table, block_on, ops};
/// use kcl_protocol::ExtendedSequenceNumber as E;
/// let store = MemoryStore::new();
/// let mut lease = Lease::new("shardId-0", E::trim_horizon());
/// block_on(store.create_if_not_exists(&lease)).unwrap();
/// let write = ops::checkpoint(&lease, &E::new("42", 0));
/// let after = block_on(store.update(Table::Lease, &write)).unwrap();
/// assert_eq!(after["checkpoint"].as_s(), Some("42"));
/// assert_eq!(after["leaseCounter"].as_n(), Some("1"));
/// // The same write again is fenced off: the counter moved.
/// assert!(block_on(store.update(Table::Lease, &write)).is_err());
/// ```
pub fn checkpoint(lease: &Lease, value: &ExtendedSequenceNumber) -> Write {
    let mut actions = vec![
        counter_plus_one(lease),
        put(attr::CHECKPOINT, AttributeValue::s(value.sequence_number())),
        put(
            attr::CHECKPOINT_SUB_SEQUENCE_NUMBER,
            AttributeValue::n(value.sub_sequence_number()),
        ),
        put(attr::OWNER_SWITCHES_SINCE_CHECKPOINT, AttributeValue::n(0)),
        remove(attr::PENDING_CHECKPOINT),
        remove(attr::PENDING_CHECKPOINT_SUB_SEQUENCE_NUMBER),
        remove(attr::PENDING_CHECKPOINT_STATE),
    ];
    if let Some(children) = string_set(&lease.child_shard_ids) {
        actions.push(put(attr::CHILD_SHARD_IDS, children));
    }
    actions.extend(hash_key_range(lease.hash_key_range));
    write(lease, counter_is(lease), actions)
}

fn hash_key_range(range: Option<(u128, u128)>) -> Vec<Action> {
    match range {
        Some((start, end)) => vec![
            put(
                attr::STARTING_HASH_KEY,
                AttributeValue::s(start.to_string()),
            ),
            put(attr::ENDING_HASH_KEY, AttributeValue::s(end.to_string())),
        ],
        None => Vec::new(),
    }
}

/// What `updateLeaseWithMetaInfo` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meta {
    /// `childShardIds` (at shard end), from the lease's `child_shard_ids`.
    ChildShards,
    /// `startingHashKey` / `endingHashKey` (hash-range backfill), from the lease's range.
    HashKeyRange,
}

/// `updateLeaseWithMetaInfo`: conditioned on the lease existing (`leaseKey` equal); puts the
/// child shards or the hash range. `None` when the lease has none to write: Java then sends an
/// `UpdateItem` without an update (DynamoDB only checks its condition, moto answers 500), which
/// changes nothing, so no write is the same outcome.
///
/// ```
/// use kcl_lease::Lease;
/// use kcl_lease::ops::{Meta, update_meta};
/// use kcl_protocol::ExtendedSequenceNumber;
/// let mut lease = Lease::new("shardId-0", ExtendedSequenceNumber::shard_end());
/// assert_eq!(update_meta(&lease, Meta::ChildShards), None);
/// assert_eq!(update_meta(&lease, Meta::HashKeyRange), None);
/// lease.child_shard_ids.insert("shardId-1".into());
/// assert!(update_meta(&lease, Meta::ChildShards).is_some());
/// ```
pub fn update_meta(lease: &Lease, field: Meta) -> Option<Write> {
    let actions: Vec<Action> = match field {
        Meta::ChildShards => string_set(&lease.child_shard_ids)
            .map(|children| put(attr::CHILD_SHARD_IDS, children))
            .into_iter()
            .collect(),
        Meta::HashKeyRange => hash_key_range(lease.hash_key_range),
    };
    if actions.is_empty() {
        return None;
    }
    let condition =
        Condition::default().equals(attr::LEASE_KEY, AttributeValue::s(&lease.lease_key));
    Some(write(lease, condition, actions))
}

/// `deleteLease` (lease cleanup): an unconditional `DeleteItem`.
pub fn delete(lease: &Lease) -> Delete {
    Delete {
        key: lease.lease_key.clone(),
        condition: Condition::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Expect, apply};
    use crate::value::Item;
    use crate::{Decoded, decode};

    fn owned(owner: &str, counter: u64) -> Lease {
        let mut lease = Lease::new("shardId-0", ExtendedSequenceNumber::new("100", 0));
        lease.lease_owner = Some(owner.into());
        lease.lease_counter = counter;
        lease
    }

    fn run(write: &Write, item: &Item) -> Result<Lease, crate::ops::ApplyError> {
        let after = apply(
            (attr::LEASE_KEY, &write.key),
            &write.condition,
            &write.update,
            Some(item),
        )?;
        match decode(&after).unwrap() {
            Decoded::Lease(lease) => Ok(lease),
            Decoded::NotALease { .. } => unreachable!(),
        }
    }

    #[test]
    fn take_counts_an_owner_switch_only_when_the_owner_changes() {
        let lease = owned("a", 5);
        let item = encode(&lease);
        let taken = run(&take(&lease, "b"), &item).unwrap();
        assert_eq!(taken.lease_owner.as_deref(), Some("b"));
        assert_eq!(taken.lease_counter, 6);
        assert_eq!(taken.owner_switches_since_checkpoint, 1);
        let retaken = run(&take(&lease, "a"), &item).unwrap();
        assert_eq!(retaken.owner_switches_since_checkpoint, 0);
        // An unowned lease taken: no switch.
        let mut free = Lease::new("shardId-0", ExtendedSequenceNumber::trim_horizon());
        free.lease_counter = 2;
        let taken = run(&take(&free, "b"), &encode(&free)).unwrap();
        assert_eq!(taken.owner_switches_since_checkpoint, 0);
        // A stale counter is fenced off.
        assert!(run(&take(&owned("a", 4), "b"), &item).is_err());
    }

    #[test]
    fn a_graceful_handoff_end_to_end() {
        let lease = owned("a", 5);
        let item = encode(&lease);
        let started = run(&initiate_graceful_handoff(&lease, "b").unwrap(), &item).unwrap();
        assert_eq!(started.lease_owner.as_deref(), Some("b"));
        assert_eq!(started.checkpoint_owner.as_deref(), Some("a"));
        assert_eq!(
            started.lease_counter, 5,
            "initiating a handoff keeps the counter"
        );
        // A second initiation fails: a handoff is pending.
        assert!(
            run(
                &initiate_graceful_handoff(&started, "c").unwrap(),
                &encode(&started)
            )
            .is_err()
        );
        // a's plain renewal fails, a renewal that knows of the handoff lands.
        assert!(run(&renew(&lease), &encode(&started)).is_err());
        let renewed = run(&renew(&started), &encode(&started)).unwrap();
        assert_eq!(renewed.lease_counter, 6);
        // a checkpoints (counter only), then transfers.
        let checkpointed = run(
            &checkpoint(&renewed, &ExtendedSequenceNumber::new("200", 0)),
            &encode(&renewed),
        )
        .unwrap();
        let transferred = run(&assign(&checkpointed, "b"), &encode(&checkpointed)).unwrap();
        assert_eq!(transferred.lease_owner.as_deref(), Some("b"));
        assert_eq!(transferred.checkpoint_owner, None);
        assert_eq!(transferred.lease_counter, 8);
        // Java counts a switch when the known owner differs from the new one, or when the
        // checkpoint owner *is* the new one; the transfer to b (known owner b, checkpoint owner
        // a) is neither.
        assert_eq!(transferred.owner_switches_since_checkpoint, 0);
        let mut back = checkpointed.clone();
        back.lease_owner = Some("b".into());
        let returned = run(&assign(&back, "a"), &encode(&checkpointed)).unwrap();
        assert_eq!(returned.owner_switches_since_checkpoint, 1);
        assert_eq!(
            transferred.checkpoint,
            ExtendedSequenceNumber::new("200", 0)
        );
    }

    #[test]
    fn assign_and_evict_are_fenced_by_the_owners() {
        let lease = owned("a", 5);
        let item = encode(&lease);
        assert!(run(&assign(&owned("x", 5), "b"), &item).is_err());
        assert!(run(&evict(&owned("x", 5),), &item).is_err());
        let evicted = run(&evict(&lease), &item).unwrap();
        assert_eq!(evicted.lease_owner, None);
        assert_eq!(evicted.lease_counter, 6);
        // Evicting during a handoff leaves the new owner in place.
        let mut handing = owned("b", 5);
        handing.checkpoint_owner = Some("a".into());
        let evicted = run(&evict(&handing), &encode(&handing)).unwrap();
        assert_eq!(evicted.lease_owner.as_deref(), Some("b"));
        assert_eq!(evicted.checkpoint_owner, None);
        // Assigning an unowned lease: owner must be absent.
        let free = Lease::new("shardId-0", ExtendedSequenceNumber::trim_horizon());
        let assigned = run(&assign(&free, "c"), &encode(&free)).unwrap();
        assert_eq!(assigned.lease_owner.as_deref(), Some("c"));
        assert_eq!(assigned.lease_counter, 1);
        assert!(initiate_graceful_handoff(&free, "c").is_none());
    }

    #[test]
    fn checkpoint_resets_switches_and_pending() {
        let mut lease = owned("a", 5);
        lease.owner_switches_since_checkpoint = 3;
        lease.pending_checkpoint = Some(ExtendedSequenceNumber::new("150", 0));
        lease.pending_checkpoint_state = Some(vec![1]);
        lease.child_shard_ids = ["shardId-1".to_string()].into();
        lease.hash_key_range = Some((0, 10));
        let item = encode(&lease);
        let done = run(
            &checkpoint(&lease, &ExtendedSequenceNumber::shard_end()),
            &item,
        )
        .unwrap();
        assert_eq!(done.owner_switches_since_checkpoint, 0);
        assert_eq!(done.pending_checkpoint, None);
        assert_eq!(done.pending_checkpoint_state, None);
        assert_eq!(done.checkpoint, ExtendedSequenceNumber::shard_end());
        assert_eq!(done.lease_counter, 6);
        assert!(
            run(
                &checkpoint(&owned("a", 4), &ExtendedSequenceNumber::new("1", 0)),
                &item
            )
            .is_err()
        );
    }

    #[test]
    fn meta_updates_need_the_lease() {
        let mut lease = owned("a", 5);
        lease.child_shard_ids = ["shardId-1".to_string(), "shardId-2".to_string()].into();
        let write = update_meta(&lease, Meta::ChildShards).unwrap();
        assert_eq!(
            write.condition.expectations[0].expect,
            Expect::Equals(AttributeValue::s("shardId-0"))
        );
        let after = run(
            &write,
            &encode(&Lease::new(
                "shardId-0",
                ExtendedSequenceNumber::trim_horizon(),
            )),
        )
        .unwrap();
        assert_eq!(after.child_shard_ids.len(), 2);
        assert!(
            apply(
                (attr::LEASE_KEY, "shardId-0"),
                &write.condition,
                &write.update,
                None
            )
            .is_err()
        );
        lease.hash_key_range = Some((5, 6));
        let after = run(
            &update_meta(&lease, Meta::HashKeyRange).unwrap(),
            &encode(&owned("a", 5)),
        )
        .unwrap();
        assert_eq!(after.hash_key_range, Some((5, 6)));
        assert_eq!(delete(&lease).condition, Condition::default());
    }

    #[test]
    fn meta_updates_with_nothing_to_write_are_no_write() {
        let mut lease = owned("a", 5);
        lease.hash_key_range = None;
        assert_eq!(update_meta(&lease, Meta::ChildShards), None);
        assert_eq!(update_meta(&lease, Meta::HashKeyRange), None);
        lease.hash_key_range = Some((0, 9));
        assert_eq!(update_meta(&lease, Meta::ChildShards), None);
        let write = update_meta(&lease, Meta::HashKeyRange).unwrap();
        assert_ne!(write.update, Update::Actions(Vec::new()));
    }

    #[test]
    fn renew_writes_throughput() {
        let mut lease = owned("a", 5);
        lease.throughput_kbps = Some(12.5);
        let renewed = run(&renew(&lease), &encode(&owned("a", 5))).unwrap();
        assert_eq!(renewed.throughput_kbps, Some(12.5));
        assert_eq!(renewed.lease_counter, 6);
    }
}
