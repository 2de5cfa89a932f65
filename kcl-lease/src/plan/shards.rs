//! Shard sync as the Java KCL 3.1.3 does it, without I/O: the leases of an empty table
//! (`leases/HierarchicalShardSyncer.java`), the child leases at shard end
//! (`lifecycle/ShutdownTask.java`), parent blocking (`lifecycle/BlockOnParentShardTask.java`)
//! and the cleanup of finished leases (`leases/LeaseCleanupManager.java`). Single-stream lease
//! keys (the lease key is the shard id).
//!
//! **Initial leases** ([`initial_leases`]): on an empty table Java lists the shards with the
//! `ShardFilter` of its initial position (`getShardListAtInitialPosition`:
//! `AT_TRIM_HORIZON`, `AT_LATEST`, or `AT_TIMESTAMP` with the timestamp), retries until the
//! listed hash ranges cover the whole key space without a hole (`isHashRangeOfShardsComplete`,
//! [`is_hash_range_complete`]), then `EmptyLeaseTableSynchronizer` creates one lease for
//! **every listed shard**, open or closed, with the position's sentinel as checkpoint
//! (`convertToCheckpoint`: `TRIM_HORIZON`, `LATEST` or `AT_TIMESTAMP`), the shard's parents
//! (`parentShardId`, `adjacentParentShardId`, whether listed or not), its hash range, no owner,
//! counter 0. Descendants get their leases later, at their parents' shard end. Kinesis's
//! filters: `AT_TRIM_HORIZON` lists the shards open at the trim horizon, `AT_LATEST` the shards
//! open now, `AT_TIMESTAMP` the shards open at the timestamp (API reference, `ShardFilter`).
//! [`shards_at_position`] applies the first two to a complete (unfiltered) list, for a Kinesis
//! stand-in without `ShardFilter`.
//!
//! **Shard end** ([`shard_end`], `ShutdownTask.takeShardEndAction`): with the `ChildShards` of
//! the last `GetRecords`, create each child's lease if it has none
//! (`HierarchicalShardSyncer.createLeaseForChildShard`: checkpoint `TRIM_HORIZON`, the child's
//! parents, its hash range, no owner; a child without parents is an error); a single child is a
//! merge and must name two parents whose leases are both present or both absent, else the
//! creation is deferred (`createLeasesForChildShardsIfNotExist`); then write `childShardIds` on
//! the parent (`updateLeaseWithMetaInfo(CHILD_SHARDS)`). The processor's `SHARD_END`
//! checkpoint comes after, from the processor.
//!
//! **Parent blocking** ([`is_blocked_on_parents`], `BlockOnParentShardTask.call`): a lease waits
//! while any of its parents has a lease whose checkpoint is not `SHARD_END`; a parent without a
//! lease does not block.
//!
//! **Cleanup** ([`cleanup`], `LeaseCleanupManager.cleanupLeaseForCompletedShard`): a finished
//! lease may be deleted once every child named in its `childShardIds` has a lease that has moved
//! off `TRIM_HORIZON` and `AT_TIMESTAMP`, and none of its own parents has a lease left.
//!
//! ```
//! use kcl_lease::plan::{ChildShard, InitialPosition, Shard, initial_leases, is_blocked_on_parents, shard_end};
//! use kcl_protocol::ExtendedSequenceNumber as E;
//!
//! let shard = Shard::open("shardId-000000000000", None, None, (0, u128::MAX));
//! let mut leases = initial_leases(&[shard], InitialPosition::TrimHorizon);
//! assert_eq!(leases[0].checkpoint, E::trim_horizon());
//!
//! // The shard is split: at its end, two child leases and childShardIds on the parent.
//! let children = [
//!     ChildShard::new("shardId-000000000001", ["shardId-000000000000"], (0, u128::MAX / 2)),
//!     ChildShard::new("shardId-000000000002", ["shardId-000000000000"], (u128::MAX / 2 + 1, u128::MAX)),
//! ];
//! let end = shard_end(&leases[0], &children, &leases).unwrap();
//! assert_eq!(end.children.len(), 2);
//! assert!(end.update_parent.is_some());
//! leases.extend(end.children.clone());
//! // The children wait until the parent checkpoints SHARD_END.
//! assert!(is_blocked_on_parents(&leases[1], &leases));
//! leases[0].checkpoint = E::shard_end();
//! assert!(!is_blocked_on_parents(&leases[1], &leases));
//! ```

use std::collections::{BTreeMap, BTreeSet};

use kcl_protocol::ExtendedSequenceNumber;

use crate::item::Lease;
use crate::ops::{self, Delete, Meta, Write};

/// One shard as `ListShards` describes it: what shard sync needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The shard's id.
    pub shard_id: String,
    /// The shard it was split from, or the first of the two it was merged from.
    pub parent_shard_id: Option<String>,
    /// The second parent of a merged shard.
    pub adjacent_parent_shard_id: Option<String>,
    /// Its hash keys, inclusive.
    pub hash_key_range: (u128, u128),
    /// Whether it is open (no ending sequence number).
    pub open: bool,
}

impl Shard {
    /// An open shard.
    pub fn open(
        shard_id: impl Into<String>,
        parent: Option<&str>,
        adjacent_parent: Option<&str>,
        hash_key_range: (u128, u128),
    ) -> Self {
        Shard {
            shard_id: shard_id.into(),
            parent_shard_id: parent.map(str::to_owned),
            adjacent_parent_shard_id: adjacent_parent.map(str::to_owned),
            hash_key_range,
            open: true,
        }
    }

    /// The same shard, closed.
    pub fn closed(self) -> Self {
        Shard {
            open: false,
            ..self
        }
    }

    /// Its parents (none, one, or two for a merge).
    pub fn parents(&self) -> impl Iterator<Item = &str> {
        self.parent_shard_id
            .iter()
            .chain(&self.adjacent_parent_shard_id)
            .map(String::as_str)
    }
}

/// `initialPositionInStream`: where leases of a new application start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InitialPosition {
    /// `TRIM_HORIZON`: the oldest records.
    TrimHorizon,
    /// `LATEST`: records written from now on.
    Latest,
    /// `AT_TIMESTAMP`: records from a time on (the time is configuration, never stored).
    AtTimestamp,
}

impl InitialPosition {
    /// The sentinel checkpoint of a lease created at this position
    /// (`HierarchicalShardSyncer.convertToCheckpoint`).
    ///
    /// ```
    /// use kcl_lease::plan::InitialPosition;
    /// assert_eq!(InitialPosition::AtTimestamp.checkpoint().sequence_number(), "AT_TIMESTAMP");
    /// ```
    pub fn checkpoint(self) -> ExtendedSequenceNumber {
        let sentinel = match self {
            InitialPosition::TrimHorizon => "TRIM_HORIZON",
            InitialPosition::Latest => "LATEST",
            InitialPosition::AtTimestamp => "AT_TIMESTAMP",
        };
        ExtendedSequenceNumber::new(sentinel, 0)
    }
}

/// The shards `ListShards` would list with the position's `ShardFilter`, from a complete list
/// (every shard still in the retention period):
///
/// - `TrimHorizon` (`AT_TRIM_HORIZON`, the shards open at the trim horizon): the shards none of
///   whose parents is listed (a listed parent still holds records, so its children opened after
///   the trim horizon).
/// - `Latest` (`AT_LATEST`): the open shards.
/// - `AtTimestamp`: the list holds no timestamps, so the `TrimHorizon` answer — the oldest
///   shards, which a reader at the timestamp drains to their end quickly, as Java's own
///   non-empty-table sync does for `AT_TIMESTAMP` (`checkIfDescendantAndAddNewLeasesForAncestors`).
///   Prefer the server's `AT_TIMESTAMP` filter.
///
/// ```
/// use kcl_lease::plan::{InitialPosition, Shard, shards_at_position};
/// let all = [
///     Shard::open("shardId-0", None, None, (0, u128::MAX)).closed(),
///     Shard::open("shardId-1", Some("shardId-0"), None, (0, 9)),
///     Shard::open("shardId-2", Some("shardId-0"), None, (10, u128::MAX)),
/// ];
/// let ids = |position| shards_at_position(&all, position).into_iter().map(|s| s.shard_id).collect::<Vec<_>>();
/// assert_eq!(ids(InitialPosition::TrimHorizon), ["shardId-0"]);
/// assert_eq!(ids(InitialPosition::Latest), ["shardId-1", "shardId-2"]);
/// ```
pub fn shards_at_position(all: &[Shard], position: InitialPosition) -> Vec<Shard> {
    let listed: BTreeSet<&str> = all.iter().map(|shard| shard.shard_id.as_str()).collect();
    all.iter()
        .filter(|shard| match position {
            InitialPosition::Latest => shard.open,
            InitialPosition::TrimHorizon | InitialPosition::AtTimestamp => {
                shard.parents().all(|parent| !listed.contains(parent))
            }
        })
        .cloned()
        .collect()
}

/// Java's `isHashRangeOfShardsComplete`: sorted by starting hash key, the ranges start at 0,
/// end at 2¹²⁸ − 1 and each starts right after the one before ends. An empty list is not
/// complete (Java throws).
///
/// ```
/// use kcl_lease::plan::{Shard, shards::is_hash_range_complete};
/// let half = |id: &str, range| Shard::open(id, None, None, range);
/// assert!(is_hash_range_complete(&[half("b", (10, u128::MAX)), half("a", (0, 9))]));
/// assert!(!is_hash_range_complete(&[half("a", (0, 9)), half("b", (11, u128::MAX))]));
/// ```
pub fn is_hash_range_complete(shards: &[Shard]) -> bool {
    let mut ranges: Vec<(u128, u128)> = shards.iter().map(|shard| shard.hash_key_range).collect();
    ranges.sort_unstable();
    let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
        return false;
    };
    first.0 == 0
        && last.1 == u128::MAX
        && ranges
            .windows(2)
            .all(|pair| pair[0].1.checked_add(1) == Some(pair[1].0))
}

/// The leases Java creates on an empty table (`EmptyLeaseTableSynchronizer`): one per listed
/// shard, with the position's sentinel. `listed` is what `ListShards` answered with the
/// position's filter (or [`shards_at_position`] of a complete list). One lease per shard id,
/// sorted by shard id: Java sorts by the shards' starting sequence numbers, then ids, so that an
/// interrupted creation leaves the oldest shards covered; Kinesis numbers shards in creation
/// order, so shard ids give nearly the same order without the sequence numbers.
pub fn initial_leases(listed: &[Shard], position: InitialPosition) -> Vec<Lease> {
    let mut leases: BTreeMap<&str, Lease> = BTreeMap::new();
    for shard in listed {
        let mut lease = Lease::new(&shard.shard_id, position.checkpoint());
        lease.parent_shard_ids = shard.parents().map(str::to_owned).collect();
        lease.hash_key_range = Some(shard.hash_key_range);
        leases.insert(&shard.shard_id, lease);
    }
    leases.into_values().collect()
}

/// The writes of [`initial_leases`]: `createLeaseIfNotExists` for each, in order.
pub fn initial_writes(listed: &[Shard], position: InitialPosition) -> Vec<Write> {
    initial_leases(listed, position)
        .iter()
        .map(ops::create_if_not_exists)
        .collect()
}

/// A child of a closed shard, as `GetRecords` names it at the end of the shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildShard {
    /// The child's id.
    pub shard_id: String,
    /// Its parents (the closed shard, and for a merge the other one).
    pub parent_shards: Vec<String>,
    /// Its hash keys, inclusive.
    pub hash_key_range: (u128, u128),
}

impl ChildShard {
    /// A child shard.
    pub fn new<P: Into<String>>(
        shard_id: impl Into<String>,
        parent_shards: impl IntoIterator<Item = P>,
        hash_key_range: (u128, u128),
    ) -> Self {
        ChildShard {
            shard_id: shard_id.into(),
            parent_shards: parent_shards.into_iter().map(Into::into).collect(),
            hash_key_range,
        }
    }
}

/// Why the shard-end writes cannot be planned yet (Java's `InvalidStateException` or
/// `BlockedOnParentShardException` in `ShutdownTask`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardEndError {
    /// The only child (a merge) does not name two parents (`MissingMergeParent`).
    #[error("the only child shard {child} does not name two parents")]
    MergeWithoutTwoParents {
        /// The child.
        child: String,
    },
    /// One parent of a merge has a lease and the other none: Java defers the child's lease
    /// (`MissingMergeParentLease`) — it keeps the lease and retries, or now and then drops the
    /// lease so that another worker retries.
    #[error("merge child {child}: parent {missing} has no lease while its other parent has one")]
    MergeParentLeaseMissing {
        /// The child.
        child: String,
        /// The parent without a lease.
        missing: String,
    },
    /// A child without parents (`createLeaseForChildShard` refuses it).
    #[error("child shard {child} names no parents")]
    ChildWithoutParents {
        /// The child.
        child: String,
    },
}

/// The writes at the end of a shard, in order: the child leases, then `childShardIds` on the
/// parent.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardEndPlan {
    /// The child leases to create (the children that have none).
    pub children: Vec<Lease>,
    /// `createLeaseIfNotExists` for each of them.
    pub creates: Vec<Write>,
    /// `updateLeaseWithMetaInfo(CHILD_SHARDS)` on the parent; `None` without children (a
    /// shard end from `ResourceNotFound`: Java writes nothing then).
    pub update_parent: Option<Write>,
}

/// The shard-end writes of `parent` (rules in the [module](self) doc). `leases` is what the
/// worker knows of the table (Java reads each lease it needs with `GetItem`); a stale view is
/// safe, as a lease created meanwhile makes the conditional create fail.
pub fn shard_end(
    parent: &Lease,
    children: &[ChildShard],
    leases: &[Lease],
) -> Result<ShardEndPlan, ShardEndError> {
    let exists = |key: &str| leases.iter().any(|lease| lease.lease_key == key);
    if let [child] = children {
        let [first, second] = child.parent_shards.as_slice() else {
            return Err(ShardEndError::MergeWithoutTwoParents {
                child: child.shard_id.clone(),
            });
        };
        if exists(first) != exists(second) {
            let missing = if exists(first) { second } else { first };
            return Err(ShardEndError::MergeParentLeaseMissing {
                child: child.shard_id.clone(),
                missing: missing.clone(),
            });
        }
    }
    let mut plan = ShardEndPlan {
        children: Vec::new(),
        creates: Vec::new(),
        update_parent: None,
    };
    for child in children {
        if child.parent_shards.is_empty() {
            return Err(ShardEndError::ChildWithoutParents {
                child: child.shard_id.clone(),
            });
        }
        if exists(&child.shard_id) || plan.children.iter().any(|c| c.lease_key == child.shard_id) {
            continue;
        }
        let mut lease = Lease::new(&child.shard_id, ExtendedSequenceNumber::trim_horizon());
        lease.parent_shard_ids = child.parent_shards.iter().cloned().collect();
        lease.hash_key_range = Some(child.hash_key_range);
        plan.creates.push(ops::create_if_not_exists(&lease));
        plan.children.push(lease);
    }
    let mut updated = parent.clone();
    updated.child_shard_ids = children.iter().map(|c| c.shard_id.clone()).collect();
    plan.update_parent = ops::update_meta(&updated, Meta::ChildShards);
    Ok(plan)
}

/// Whether `lease` must wait for its parents (`BlockOnParentShardTask`): some parent has a
/// lease in `leases` whose checkpoint is not `SHARD_END`.
pub fn is_blocked_on_parents(lease: &Lease, leases: &[Lease]) -> bool {
    lease.parent_shard_ids.iter().any(|parent| {
        leases
            .iter()
            .any(|other| &other.lease_key == parent && !other.checkpoint.is_shard_end())
    })
}

/// Whether a lease may be deleted (`LeaseCleanupManager.cleanupLeaseForCompletedShard`): it is
/// finished (`SHARD_END`, as every lease Java enqueues for cleanup at shard end), it names its
/// children (`childShardIds`; Java asks Kinesis when it does not — the caller's job, followed
/// by an [`update_meta`](ops::update_meta)), every child has a lease whose checkpoint is
/// neither `TRIM_HORIZON` nor `AT_TIMESTAMP`, and none of its parents has a lease.
pub fn is_eligible_for_cleanup(lease: &Lease, leases: &[Lease]) -> bool {
    let find = |key: &str| leases.iter().find(|other| other.lease_key == key);
    let started = |child: &Lease| {
        let sentinel = child.checkpoint.sequence_number();
        sentinel != "TRIM_HORIZON" && sentinel != "AT_TIMESTAMP"
    };
    lease.checkpoint.is_shard_end()
        && !lease.child_shard_ids.is_empty()
        && lease
            .child_shard_ids
            .iter()
            .all(|child| find(child).is_some_and(started))
        && lease.parent_shard_ids.iter().all(|p| find(p).is_none())
}

/// The deletes of finished leases that are eligible ([`is_eligible_for_cleanup`]): of the
/// leases `owner` holds when given (Java's cleanup only sees the leases its worker finished),
/// else of all. `deleteLease` is unconditional, as in Java.
pub fn cleanup(leases: &[Lease], owner: Option<&str>) -> Vec<Delete> {
    leases
        .iter()
        .filter(|lease| owner.is_none_or(|me| lease.lease_owner.as_deref() == Some(me)))
        .filter(|lease| is_eligible_for_cleanup(lease, leases))
        .map(ops::delete)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr;
    use crate::ops::Update;
    use kcl_protocol::ExtendedSequenceNumber as E;

    fn with(key: &str, checkpoint: E, parents: &[&str]) -> Lease {
        let mut lease = Lease::new(key, checkpoint);
        lease.parent_shard_ids = parents.iter().map(|p| p.to_string()).collect();
        lease
    }

    #[test]
    fn initial_leases_carry_the_sentinel_parents_and_range() {
        let listed = [
            Shard::open("shardId-2", Some("shardId-0"), Some("shardId-1"), (0, 5)),
            Shard::open("shardId-3", None, None, (6, u128::MAX)).closed(),
        ];
        for position in [
            InitialPosition::TrimHorizon,
            InitialPosition::Latest,
            InitialPosition::AtTimestamp,
        ] {
            let leases = initial_leases(&listed, position);
            assert_eq!(leases.len(), 2, "every listed shard, open or closed");
            assert!(leases.iter().all(|l| l.checkpoint == position.checkpoint()));
            assert!(
                leases
                    .iter()
                    .all(|l| l.lease_owner.is_none() && l.lease_counter == 0)
            );
            assert_eq!(leases[0].parent_shard_ids.len(), 2);
            assert_eq!(leases[0].hash_key_range, Some((0, 5)));
        }
        let writes = initial_writes(&listed, InitialPosition::Latest);
        assert_eq!(writes.len(), 2);
        assert!(
            matches!(&writes[0].update, Update::PutItem(item) if item[attr::CHECKPOINT].as_s() == Some("LATEST"))
        );
        // Duplicates (a list read across pages twice) give one lease.
        assert_eq!(
            initial_leases(
                &[listed[0].clone(), listed[0].clone()],
                InitialPosition::Latest
            )
            .len(),
            1
        );
    }

    #[test]
    fn positions_filter_a_complete_list() {
        // 0 splits into 1 and 2; 2 and 3 merge into 4; 3 is an original shard.
        let all = [
            Shard::open("s0", None, None, (0, 99)).closed(),
            Shard::open("s1", Some("s0"), None, (0, 49)),
            Shard::open("s2", Some("s0"), None, (50, 99)).closed(),
            Shard::open("s3", None, None, (100, u128::MAX)).closed(),
            Shard::open("s4", Some("s2"), Some("s3"), (50, u128::MAX)),
        ];
        let ids = |position| {
            shards_at_position(&all, position)
                .into_iter()
                .map(|s| s.shard_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(InitialPosition::TrimHorizon), ["s0", "s3"]);
        assert_eq!(ids(InitialPosition::AtTimestamp), ["s0", "s3"]);
        assert_eq!(ids(InitialPosition::Latest), ["s1", "s4"]);
        // A parent aged out of the stream: its children are the oldest now.
        assert_eq!(
            shards_at_position(&all[1..], InitialPosition::TrimHorizon)
                .iter()
                .map(|s| s.shard_id.as_str())
                .collect::<Vec<_>>(),
            ["s1", "s2", "s3"]
        );
        assert!(is_hash_range_complete(&shards_at_position(
            &all,
            InitialPosition::Latest
        )));
        assert!(is_hash_range_complete(&shards_at_position(
            &all,
            InitialPosition::TrimHorizon
        )));
        assert!(!is_hash_range_complete(&[]));
        assert!(!is_hash_range_complete(&all[..2]));
        assert!(!is_hash_range_complete(&[Shard::open(
            "x",
            None,
            None,
            (1, u128::MAX)
        )]));
    }

    #[test]
    fn a_split_creates_two_children_and_names_them_on_the_parent() {
        let parent = with("s0", E::new("900", 0), &[]);
        let children = [
            ChildShard::new("s1", ["s0"], (0, 49)),
            ChildShard::new("s2", ["s0"], (50, 99)),
        ];
        let existing = [parent.clone(), with("s2", E::trim_horizon(), &["s0"])];
        let plan = shard_end(&parent, &children, &existing).unwrap();
        // s2 exists already: only s1.
        assert_eq!(plan.children.len(), 1);
        let child = &plan.children[0];
        assert_eq!(child.lease_key, "s1");
        assert_eq!(child.checkpoint, E::trim_horizon());
        assert_eq!(child.lease_owner, None);
        assert_eq!(child.parent_shard_ids, ["s0".to_string()].into());
        assert_eq!(child.hash_key_range, Some((0, 49)));
        assert_eq!(plan.creates, [ops::create_if_not_exists(child)]);
        let mut named = parent.clone();
        named.child_shard_ids = ["s1".to_string(), "s2".to_string()].into();
        assert_eq!(
            plan.update_parent,
            ops::update_meta(&named, Meta::ChildShards)
        );
    }

    #[test]
    fn merges_need_both_parent_leases_or_neither() {
        let child = [ChildShard::new("s4", ["s2", "s3"], (50, 200))];
        let s2 = with("s2", E::shard_end(), &[]);
        let s3 = with("s3", E::new("5", 0), &[]);
        let both = shard_end(&s2, &child, &[s2.clone(), s3.clone()]).unwrap();
        assert_eq!(both.children[0].parent_shard_ids.len(), 2);
        // Neither (e.g. both already cleaned up while a stale worker ends s2): still created.
        assert_eq!(shard_end(&s2, &child, &[]).unwrap().children.len(), 1);
        assert_eq!(
            shard_end(&s2, &child, std::slice::from_ref(&s2)),
            Err(ShardEndError::MergeParentLeaseMissing {
                child: "s4".into(),
                missing: "s3".into()
            })
        );
        let lonely = [ChildShard::new("s4", ["s2"], (50, 200))];
        assert!(matches!(
            shard_end(&s2, &lonely, &[]),
            Err(ShardEndError::MergeWithoutTwoParents { .. })
        ));
        let orphans = [
            ChildShard::new("a", Vec::<String>::new(), (0, 1)),
            ChildShard::new("b", ["s2"], (2, 3)),
        ];
        assert!(matches!(
            shard_end(&s2, &orphans, &[]),
            Err(ShardEndError::ChildWithoutParents { .. })
        ));
        // No children (ResourceNotFound): nothing to write.
        let none = shard_end(&s2, &[], &[]).unwrap();
        assert!(none.creates.is_empty() && none.update_parent.is_none());
    }

    #[test]
    fn blocking_follows_the_parents_checkpoints() {
        let child = with("c", E::trim_horizon(), &["p1", "p2"]);
        let p1_done = with("p1", E::shard_end(), &[]);
        let p2_live = with("p2", E::new("7", 0), &[]);
        assert!(is_blocked_on_parents(&child, &[p1_done.clone(), p2_live]));
        assert!(!is_blocked_on_parents(
            &child,
            std::slice::from_ref(&p1_done)
        )); // p2 gone
        assert!(!is_blocked_on_parents(&child, &[]));
        let p2_fresh = with("p2", E::trim_horizon(), &[]);
        assert!(is_blocked_on_parents(&child, &[p1_done, p2_fresh]));
        assert!(!is_blocked_on_parents(
            &with("root", E::trim_horizon(), &[]),
            &[]
        ));
    }

    #[test]
    fn cleanup_waits_for_children_to_start_and_parents_to_go() {
        let mut parent = with("p", E::shard_end(), &["gp"]);
        parent.lease_owner = Some("me".into());
        parent.child_shard_ids = ["c1".to_string(), "c2".to_string()].into();
        let grandparent = with("gp", E::shard_end(), &[]);
        let started = with("c1", E::new("12", 0), &["p"]);
        let waiting = with("c2", E::trim_horizon(), &["p"]);
        let at_ts = with("c2", E::new("AT_TIMESTAMP", 0), &["p"]);
        let latest = with("c2", E::new("LATEST", 0), &["p"]);
        let done = with("c2", E::shard_end(), &["p"]);
        let eligible = |rest: &[&Lease]| {
            let mut all = vec![parent.clone()];
            all.extend(rest.iter().map(|l| (*l).clone()));
            is_eligible_for_cleanup(&parent, &all)
        };
        assert!(!eligible(&[&started, &waiting]));
        assert!(!eligible(&[&started, &at_ts]));
        assert!(!eligible(&[&started])); // c2 has no lease
        assert!(!eligible(&[&started, &latest, &grandparent]));
        assert!(eligible(&[&started, &latest]));
        assert!(eligible(&[&started, &done]));
        // Unfinished or childless leases are never eligible.
        let mut live = parent.clone();
        live.checkpoint = E::new("99", 0);
        assert!(!is_eligible_for_cleanup(
            &live,
            &[started.clone(), done.clone()]
        ));
        let mut childless = parent.clone();
        childless.child_shard_ids.clear();
        assert!(!is_eligible_for_cleanup(&childless, &[]));
        // cleanup() filters by owner and deletes unconditionally.
        let all = [parent.clone(), started, done];
        assert_eq!(cleanup(&all, Some("me")), [ops::delete(&parent)]);
        assert!(cleanup(&all, Some("other")).is_empty());
        assert_eq!(cleanup(&all, None).len(), 1);
    }
}
