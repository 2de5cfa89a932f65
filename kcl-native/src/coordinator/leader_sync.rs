//! The leader's shard sync (Java's `PeriodicShardSyncManager` and the shard sync task it
//! starts): leases for shards that have none, created only where the lease table lacks them.
//!
//! - **Empty lease table**: list the shards with the `ShardFilter` of the initial position and,
//!   once their hash ranges cover the key space, create one lease per listed shard with the
//!   position's sentinel as checkpoint ([`kcl_lease::plan::initial_leases`], Java's
//!   `EmptyLeaseTableSynchronizer`).
//! - **Otherwise** the audit only looks for **holes**: parts of the hash key space that no
//!   unfinished lease (checkpoint other than `SHARD_END`) covers. Java syncs when it has found
//!   the same hole `hole_confidence` (3) times in a row. The leases it then creates are, here,
//!   for the shards lacking a lease that overlap a hole and have no leased descendant: a shard
//!   whose parents all have finished leases gets `TRIM_HORIZON` (its parents' owners did not
//!   create it), a shard with an unfinished ancestor lease is left to that lease's owner, and a
//!   shard with no leased parent starts at the initial position — the oldest such shards for
//!   `TRIM_HORIZON` and `AT_TIMESTAMP`, the open ones for `LATEST`; a shard whose parent gets a
//!   lease in the same sync is left to that parent's owner. (A simplification of Java's
//!   `NonEmptyLeaseTableSynchronizer`, which walks each shard's ancestry; leases without a hash
//!   range take it from the listing, in memory only, where Java also writes it back.) Shards
//!   below an unfinished lease, however deep, are left to its owner.
//!
//! Child leases after a split or merge are **not** the leader's job: the owner of the parent
//! creates them at the end of the shard (`ShutdownTask`, [`kcl_lease::plan::shard_end`]), and
//! while the parent lease is unfinished its range has no hole.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kcl_lease::plan::{self, Shard};
use kcl_lease::{Lease, LeaseStore, StoreError, Table, decode_leases};
use kcl_producer::api::StreamRef;
use kcl_protocol::ExtendedSequenceNumber;

use super::held::BoxFuture;
use crate::config::InitialPosition;
use crate::kinesis::{KinesisReader, ReadError, ShardDescription, ShardFilter};

/// `ListShards` to the last page, behind an object-safe trait.
trait ShardLister: Send + Sync {
    fn list<'a>(
        &'a self,
        stream: &'a StreamRef,
        filter: Option<ShardFilter>,
    ) -> BoxFuture<'a, Result<Vec<ShardDescription>, ReadError>>;
}

impl<K: KinesisReader> ShardLister for K {
    fn list<'a>(
        &'a self,
        stream: &'a StreamRef,
        filter: Option<ShardFilter>,
    ) -> BoxFuture<'a, Result<Vec<ShardDescription>, ReadError>> {
        Box::pin(self.list_shards(stream, filter))
    }
}

/// What the leader's shard sync (and a 2.x taker's sync of an empty table) reads, and where the
/// leases it creates start: a [`KinesisReader`], the stream, and the initial position
/// (`initialPositionInStream`). Cheap to clone.
///
/// ```
/// use kcl_native::config::InitialPosition;
/// use kcl_native::coordinator::ShardSync;
/// use kcl_native::testing::MemoryKinesis;
/// use kcl_producer::api::StreamRef;
///
/// let sync = ShardSync::new(MemoryKinesis::new("orders", 2), StreamRef::name("orders"), InitialPosition::TrimHorizon);
/// assert_eq!(sync.position(), InitialPosition::TrimHorizon);
/// ```
#[derive(Clone)]
pub struct ShardSync {
    lister: Arc<dyn ShardLister>,
    stream: StreamRef,
    position: InitialPosition,
}

impl std::fmt::Debug for ShardSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSync")
            .field("stream", &self.stream)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// Why a shard sync did not finish.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("listing the shards failed: {0}")]
    Kinesis(#[from] ReadError),
}

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncReport {
    /// Leases created.
    pub(crate) created: Vec<String>,
    /// A hole was seen (confirmed or not).
    pub(crate) hole: bool,
}

impl ShardSync {
    /// Lists `stream` through `kinesis`; new leases start at `position`.
    pub fn new<K: KinesisReader>(kinesis: K, stream: StreamRef, position: InitialPosition) -> Self {
        ShardSync {
            lister: Arc::new(kinesis),
            stream,
            position,
        }
    }

    /// Where new leases start.
    pub fn position(&self) -> InitialPosition {
        self.position
    }

    /// The stream.
    pub fn stream(&self) -> &StreamRef {
        &self.stream
    }

    fn plan_position(&self) -> plan::InitialPosition {
        match self.position {
            InitialPosition::TrimHorizon => plan::InitialPosition::TrimHorizon,
            InitialPosition::Latest => plan::InitialPosition::Latest,
            InitialPosition::AtTimestamp { .. } => plan::InitialPosition::AtTimestamp,
        }
    }

    fn filter(&self) -> ShardFilter {
        match self.position {
            InitialPosition::TrimHorizon => ShardFilter::AtTrimHorizon,
            InitialPosition::Latest => ShardFilter::AtLatest,
            InitialPosition::AtTimestamp { epoch_millis } => ShardFilter::AtTimestamp(epoch_millis),
        }
    }

    async fn list(&self, filter: Option<ShardFilter>) -> Result<Vec<Shard>, ReadError> {
        let listed = self.lister.list(&self.stream, filter).await?;
        Ok(listed.into_iter().map(shard).collect())
    }

    /// The leases of an empty table, created (each `createLeaseIfNotExists`). Nothing when the
    /// listing does not cover the hash key space (Java retries then; so does the next sync).
    pub(crate) async fn create_initial<S: LeaseStore>(
        &self,
        store: &S,
    ) -> Result<Vec<String>, SyncError> {
        let listed = self.list(Some(self.filter())).await?;
        if !plan::is_hash_range_complete(&listed) {
            tracing::warn!(
                shards = listed.len(),
                "the listed shards do not cover the hash key space: no leases created yet"
            );
            return Ok(Vec::new());
        }
        let leases = plan::initial_leases(&listed, self.plan_position());
        create_all(store, &leases).await
    }
}

fn shard(description: ShardDescription) -> Shard {
    let open = description.is_open();
    Shard {
        shard_id: description.shard_id,
        parent_shard_id: description.parent_shard_id,
        adjacent_parent_shard_id: description.adjacent_parent_shard_id,
        hash_key_range: (description.hash_range.start, description.hash_range.end),
        open,
    }
}

async fn create_all<S: LeaseStore>(store: &S, leases: &[Lease]) -> Result<Vec<String>, SyncError> {
    let mut created = Vec::new();
    for lease in leases {
        if store.create_if_not_exists(lease).await? {
            tracing::info!(lease = %lease.lease_key, checkpoint = %lease.checkpoint.sequence_number(), "lease created");
            created.push(lease.lease_key.clone());
        }
    }
    Ok(created)
}

/// The leader's audit state: the hole seen last and how many audits in a row saw it.
#[derive(Debug, Default)]
pub(crate) struct HoleTracker {
    last: Option<Vec<(u128, u128)>>,
    seen: u32,
}

impl HoleTracker {
    /// Forgets what was seen (a new leader starts over).
    pub(crate) fn reset(&mut self) {
        *self = HoleTracker::default();
    }

    /// Records this audit's holes; whether the same holes were now seen `threshold` times.
    fn confident(&mut self, holes: &[(u128, u128)], threshold: u32) -> bool {
        if self.last.as_deref() == Some(holes) {
            self.seen += 1;
        } else {
            self.last = Some(holes.to_vec());
            self.seen = 1;
        }
        self.seen >= threshold
    }
}

/// One audit of the leader (see the module's documentation).
pub(crate) async fn audit<S: LeaseStore>(
    sync: &ShardSync,
    store: &S,
    tracker: &mut HoleTracker,
    threshold: u32,
) -> Result<SyncReport, SyncError> {
    let (mut leases, _) = decode_leases(&store.scan(Table::Lease).await?);
    if leases.is_empty() {
        tracker.reset();
        let created = sync.create_initial(store).await?;
        return Ok(SyncReport {
            created,
            hole: false,
        });
    }
    let mut all_shards = None;
    if leases
        .iter()
        .any(|lease| lease.hash_key_range.is_none() && !lease.checkpoint.is_shard_end())
    {
        let shards = sync.list(None).await?;
        let ranges: BTreeMap<&str, (u128, u128)> = shards
            .iter()
            .map(|s| (s.shard_id.as_str(), s.hash_key_range))
            .collect();
        for lease in &mut leases {
            if lease.hash_key_range.is_none() {
                lease.hash_key_range = ranges.get(lease.lease_key.as_str()).copied();
            }
        }
        all_shards = Some(shards);
    }
    let holes = holes(&leases);
    if holes.is_empty() {
        tracker.reset();
        return Ok(SyncReport::default());
    }
    tracing::warn!(
        ?holes,
        "the leases leave part of the hash key space uncovered"
    );
    if !tracker.confident(&holes, threshold) {
        return Ok(SyncReport {
            created: Vec::new(),
            hole: true,
        });
    }
    let shards = match all_shards {
        Some(shards) => shards,
        None => sync.list(None).await?,
    };
    let missing = leases_for_holes(&leases, &shards, &holes, sync.plan_position());
    let created = create_all(store, &missing).await?;
    tracker.reset();
    Ok(SyncReport {
        created,
        hole: true,
    })
}

/// The parts of `0 ..= 2¹²⁸ − 1` that no unfinished lease with a hash range covers.
pub(crate) fn holes(leases: &[Lease]) -> Vec<(u128, u128)> {
    let mut ranges: Vec<(u128, u128)> = leases
        .iter()
        .filter(|lease| !lease.checkpoint.is_shard_end())
        .filter_map(|lease| lease.hash_key_range)
        .collect();
    ranges.sort_unstable();
    let mut holes = Vec::new();
    // The first key not yet covered (None: everything up to u128::MAX is).
    let mut next = Some(0u128);
    for (start, end) in ranges {
        let Some(from) = next else { break };
        if start > from {
            holes.push((from, start - 1));
        }
        if end >= from {
            next = end.checked_add(1);
        }
    }
    if let Some(from) = next {
        holes.push((from, u128::MAX));
    }
    holes
}

fn overlaps(range: (u128, u128), holes: &[(u128, u128)]) -> bool {
    holes
        .iter()
        .any(|&(start, end)| range.0 <= end && start <= range.1)
}

/// The leases to create for `holes` (rules in the module's documentation).
pub(crate) fn leases_for_holes(
    leases: &[Lease],
    shards: &[Shard],
    holes: &[(u128, u128)],
    position: plan::InitialPosition,
) -> Vec<Lease> {
    let leased: BTreeMap<&str, &Lease> = leases
        .iter()
        .map(|lease| (lease.lease_key.as_str(), lease))
        .collect();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for shard in shards {
        for parent in shard.parents() {
            children.entry(parent).or_default().push(&shard.shard_id);
        }
    }
    let has_leased_descendant = |id: &str| {
        let mut stack: Vec<&str> = children.get(id).cloned().unwrap_or_default();
        let mut seen = BTreeSet::new();
        while let Some(child) = stack.pop() {
            if !seen.insert(child) {
                continue;
            }
            if leased.contains_key(child) {
                return true;
            }
            stack.extend(children.get(child).into_iter().flatten().copied());
        }
        false
    };
    let by_id: BTreeMap<&str, &Shard> = shards.iter().map(|s| (s.shard_id.as_str(), s)).collect();
    // Whether an ancestor has an unfinished lease: its owner creates the descendants in turn.
    let has_live_ancestor = |shard: &Shard| {
        let mut stack: Vec<&str> = shard.parents().collect();
        let mut seen = BTreeSet::new();
        while let Some(parent) = stack.pop() {
            if !seen.insert(parent) {
                continue;
            }
            if leased
                .get(parent)
                .is_some_and(|lease| !lease.checkpoint.is_shard_end())
            {
                return true;
            }
            if !leased.contains_key(parent)
                && let Some(shard) = by_id.get(parent)
            {
                stack.extend(shard.parents());
            }
        }
        false
    };
    let candidates: Vec<&Shard> = shards
        .iter()
        .filter(|shard| !leased.contains_key(shard.shard_id.as_str()))
        .filter(|shard| overlaps(shard.hash_key_range, holes))
        .filter(|shard| !has_leased_descendant(&shard.shard_id))
        .collect();
    let candidate_ids: BTreeSet<&str> = candidates.iter().map(|s| s.shard_id.as_str()).collect();
    let mut created: Vec<Lease> = Vec::new();
    for shard in candidates {
        let parents: Vec<&str> = shard.parents().collect();
        let parent_leases: Vec<&Lease> = parents
            .iter()
            .filter_map(|parent| leased.get(parent).copied())
            .collect();
        if has_live_ancestor(shard) {
            continue; // the ancestor's owner creates it, in turn, at the shard's end
        }
        let checkpoint = if !parents.is_empty() && parent_leases.len() == parents.len() {
            ExtendedSequenceNumber::trim_horizon()
        } else {
            let root = match position {
                plan::InitialPosition::Latest => shard.open,
                plan::InitialPosition::TrimHorizon | plan::InitialPosition::AtTimestamp => {
                    !parents.iter().any(|parent| candidate_ids.contains(parent))
                }
            };
            if !root {
                continue;
            }
            position.checkpoint()
        };
        let mut lease = Lease::new(&shard.shard_id, checkpoint);
        lease.parent_shard_ids = parents.iter().map(|p| (*p).to_owned()).collect();
        lease.hash_key_range = Some(shard.hash_key_range);
        created.push(lease);
    }
    // A shard whose parent gets a lease now waits for that parent's owner to create it at the
    // parent's end (else it would start at the initial position before its parent is read).
    loop {
        let keys: BTreeSet<String> = created.iter().map(|l| l.lease_key.clone()).collect();
        let before = created.len();
        created.retain(|lease| !lease.parent_shard_ids.iter().any(|p| keys.contains(p)));
        if created.len() == before {
            return created;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_protocol::ExtendedSequenceNumber as E;

    const HALF: u128 = u128::MAX / 2;

    fn lease(key: &str, range: (u128, u128), checkpoint: E) -> Lease {
        let mut lease = Lease::new(key, checkpoint);
        lease.hash_key_range = Some(range);
        lease
    }

    #[test]
    fn holes_are_the_uncovered_ranges_of_unfinished_leases() {
        let live = E::new("5", 0);
        assert_eq!(holes(&[]), [(0, u128::MAX)]);
        assert!(holes(&[lease("a", (0, u128::MAX), live.clone())]).is_empty());
        assert!(
            holes(&[
                lease("b", (HALF + 1, u128::MAX), live.clone()),
                lease("a", (0, HALF), live.clone()),
            ])
            .is_empty()
        );
        // Overlaps are fine; a finished lease covers nothing.
        assert!(
            holes(&[
                lease("a", (0, HALF + 10), live.clone()),
                lease("b", (HALF, u128::MAX), live.clone()),
            ])
            .is_empty()
        );
        assert_eq!(
            holes(&[
                lease("a", (0, HALF), live.clone()),
                lease("b", (HALF + 1, u128::MAX), E::shard_end()),
            ]),
            [(HALF + 1, u128::MAX)]
        );
        assert_eq!(
            holes(&[
                lease("a", (10, 20), live.clone()),
                lease("b", (30, u128::MAX), live)
            ]),
            [(0, 9), (21, 29)]
        );
    }

    #[test]
    fn holes_get_leases_without_reprocessing_or_stepping_on_owners() {
        // shard 0 split into 1 and 2; shard 2 split into 3 and 4. 3 holds a lease.
        let shards = [
            Shard::open("s0", None, None, (0, u128::MAX)).closed(),
            Shard::open("s1", Some("s0"), None, (0, HALF)),
            Shard::open("s2", Some("s0"), None, (HALF + 1, u128::MAX)).closed(),
            Shard::open("s3", Some("s2"), None, (HALF + 1, HALF + 100)),
            Shard::open("s4", Some("s2"), None, (HALF + 101, u128::MAX)),
        ];
        let leases = [lease("s3", (HALF + 1, HALF + 100), E::new("9", 0))];
        let found = holes(&leases);
        let keys = |position| {
            leases_for_holes(&leases, &shards, &found, position)
                .into_iter()
                .map(|l| (l.lease_key, l.checkpoint.sequence_number().to_owned()))
                .collect::<Vec<_>>()
        };
        // s0 and s2 have a leased descendant: never again. s1 and s4 are the roots left.
        assert_eq!(
            keys(plan::InitialPosition::TrimHorizon),
            [
                ("s1".to_owned(), "TRIM_HORIZON".to_owned()),
                ("s4".to_owned(), "TRIM_HORIZON".to_owned())
            ]
        );
        assert_eq!(
            keys(plan::InitialPosition::Latest),
            [
                ("s1".to_owned(), "LATEST".to_owned()),
                ("s4".to_owned(), "LATEST".to_owned())
            ]
        );
        // A live parent lease: its owner creates the children.
        let live_parent = [lease("s0", (0, u128::MAX), E::new("1", 0))];
        assert!(
            leases_for_holes(
                &live_parent,
                &shards,
                &[(0, u128::MAX)],
                plan::InitialPosition::Latest
            )
            .is_empty()
        );
        // A finished parent whose children were never created: TRIM_HORIZON for both.
        let done_parent = [lease("s0", (0, u128::MAX), E::shard_end())];
        let made = leases_for_holes(
            &done_parent,
            &shards,
            &holes(&done_parent),
            plan::InitialPosition::Latest,
        );
        let made: Vec<_> = made
            .iter()
            .map(|l| (l.lease_key.as_str(), l.checkpoint.clone()))
            .collect();
        assert_eq!(made, [("s1", E::trim_horizon()), ("s2", E::trim_horizon())]);
    }

    #[test]
    fn confidence_needs_the_same_hole_in_a_row() {
        let mut tracker = HoleTracker::default();
        assert!(!tracker.confident(&[(0, 1)], 3));
        assert!(!tracker.confident(&[(0, 1)], 3));
        assert!(!tracker.confident(&[(0, 2)], 3));
        assert!(!tracker.confident(&[(0, 2)], 3));
        assert!(tracker.confident(&[(0, 2)], 3));
    }
}
