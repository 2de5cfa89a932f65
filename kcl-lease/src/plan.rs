//! Pure planners: what the Java KCL 3.1.3 would write next, computed from what was read, with
//! no I/O and no clock (times are parameters). Each planner returns the [`Write`](crate::Write)s
//! and [`Delete`](crate::Delete)s to issue; the native engine's tasks only carry them out.
//!
//! - [`assign`]: a count-based `LeaseAssignmentManager` for a native 3.x leader: expired and
//!   unassigned leases to the active worker with the fewest, then a bounded rebalance by
//!   graceful handoff.
//! - [`taker`]: the 2.x lease taker (`DynamoDBLeaseTaker`): what one worker takes this round.
//! - [`shards`]: shard sync — the initial leases of an empty table, the child leases at shard
//!   end, parent blocking, and the cleanup of finished leases.
//!
//! Expiry comes in as an [`ExpiryView`]: usually [`Observed`], an
//! [`ExpiryTracker`] read at one instant.
//!
//! ```
//! use kcl_lease::plan::{self, AssignSettings, Observed};
//! use kcl_lease::{ExpiryTracker, Lease, WorkerMetricStats};
//! use kcl_protocol::ExtendedSequenceNumber as E;
//! use std::time::Duration;
//!
//! let leases = vec![Lease::new("shardId-0", E::trim_horizon())];
//! let workers = vec![WorkerMetricStats::default_metric("w1", 1_000)];
//! let mut tracker = ExpiryTracker::new(Duration::from_secs(10));
//! for lease in &leases {
//!     tracker.observe(&lease.lease_key, lease.lease_counter, lease.lease_owner.is_some(), Duration::ZERO);
//! }
//! let view = Observed::new(&tracker, Duration::ZERO);
//! let plan = plan::assign::plan(&leases, &workers, &view, 1_000_000, &AssignSettings::default());
//! assert_eq!(plan.assignments[0].to, "w1");
//! ```

pub mod assign;
pub mod shards;
pub mod taker;

#[cfg(test)]
mod props;

pub use assign::{AssignSettings, Assignment, AssignmentPlan, Reason};
pub use shards::{
    ChildShard, InitialPosition, Shard, ShardEndError, ShardEndPlan, cleanup, initial_leases,
    initial_writes, is_blocked_on_parents, is_eligible_for_cleanup, is_hash_range_complete,
    shard_end, shards_at_position,
};
pub use taker::{Take, TakePlan, TakeReason, TakerSettings};

use std::time::{Duration, Instant};

use crate::expiry::{ExpiryTracker, Monotonic};

/// Which leases are expired as this process observed them (a lease's counter unchanged for
/// longer than the failover time, or never seen to change).
pub trait ExpiryView {
    /// Whether the lease's counter has not changed for more than `failovers` × the failover
    /// time, or was never seen to change (first seen unowned). `failovers` is at least 1;
    /// `is_expired_for(key, 3)` is the 2.x taker's "very old" lease.
    fn is_expired_for(&self, key: &str, failovers: u32) -> bool;

    /// Whether the lease is expired: [`is_expired_for`](ExpiryView::is_expired_for) one
    /// failover time (Java's `Lease.isExpired`).
    fn is_expired(&self, key: &str) -> bool {
        self.is_expired_for(key, 1)
    }
}

/// Any `Fn(key, failovers) -> bool` is a view (handy in tests).
impl<F: Fn(&str, u32) -> bool> ExpiryView for F {
    fn is_expired_for(&self, key: &str, failovers: u32) -> bool {
        self(key, failovers)
    }
}

/// A monotonic time that can be taken back by a duration (to ask an [`ExpiryTracker`] about
/// several failover times).
pub trait Rewind: Monotonic {
    /// `self − by`, or the earliest representable time when that is before it (a [`Duration`]
    /// saturates at zero; an [`Instant`] stays put, so within `by` of the clock's origin a
    /// lease expired for one failover time also counts as expired for several).
    fn rewind(self, by: Duration) -> Self;
}

impl Rewind for Duration {
    fn rewind(self, by: Duration) -> Self {
        self.saturating_sub(by)
    }
}

impl Rewind for Instant {
    fn rewind(self, by: Duration) -> Self {
        self.checked_sub(by).unwrap_or(self)
    }
}

/// An [`ExpiryTracker`] read at one instant: the view a planner gets after a scan was fed to
/// the tracker.
///
/// ```
/// use kcl_lease::ExpiryTracker;
/// use kcl_lease::plan::{ExpiryView, Observed};
/// use std::time::Duration;
/// let s = Duration::from_secs;
/// let mut tracker = ExpiryTracker::new(s(10));
/// tracker.observe("owned", 4, true, s(0));
/// tracker.observe("free", 0, false, s(0));
/// let at_25 = Observed::new(&tracker, s(25));
/// assert!(at_25.is_expired("owned"));
/// assert!(!at_25.is_expired_for("owned", 3)); // not "very old" before 30 s
/// assert!(at_25.is_expired_for("free", 3)); // never renewed
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a, T> {
    tracker: &'a ExpiryTracker<T>,
    now: T,
}

impl<'a, T: Rewind> Observed<'a, T> {
    /// The tracker as of `now` (the local monotonic time of the scan the plan is made from).
    pub fn new(tracker: &'a ExpiryTracker<T>, now: T) -> Self {
        Observed { tracker, now }
    }
}

impl<T: Rewind> ExpiryView for Observed<'_, T> {
    fn is_expired_for(&self, key: &str, failovers: u32) -> bool {
        // Unchanged for more than n × failover at `now` ⇔ for more than one failover at
        // `now − (n − 1) × failover`.
        let back = self.tracker.failover() * failovers.saturating_sub(1);
        self.tracker.is_expired(key, self.now.rewind(back))
    }
}

/// Fisher–Yates with a seeded SplitMix64: Java shuffles with `Collections.shuffle`; a planner
/// takes the randomness as a seed to stay pure and repeatable.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let bound = u64::try_from(i + 1).unwrap_or(u64::MAX);
        let j = usize::try_from(next() % bound).unwrap_or(0);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_permutations_and_repeatable() {
        let mut a: Vec<u32> = (0..20).collect();
        let mut b = a.clone();
        shuffle(&mut a, 7);
        shuffle(&mut b, 7);
        assert_eq!(a, b);
        assert_ne!(a, (0..20).collect::<Vec<_>>());
        a.sort_unstable();
        assert_eq!(a, (0..20).collect::<Vec<_>>());
        let mut one = [1];
        shuffle(&mut one, 3);
        shuffle::<u8>(&mut [], 3);
    }

    #[test]
    fn observed_views_count_failovers() {
        let s = Duration::from_secs;
        let mut tracker = ExpiryTracker::new(s(10));
        tracker.observe("k", 1, true, s(100));
        for (at, one, three) in [(110, false, false), (111, true, false), (131, true, true)] {
            let view = Observed::new(&tracker, s(at));
            assert_eq!(view.is_expired("k"), one, "at {at}");
            assert_eq!(view.is_expired_for("k", 3), three, "at {at}");
        }
        // Early in a virtual clock: saturates at zero.
        let view = Observed::new(&tracker, s(5));
        assert!(!view.is_expired_for("k", 3));
        let start = Instant::now();
        let mut tracker = ExpiryTracker::new(s(10));
        tracker.observe("k", 1, true, start);
        assert!(Observed::new(&tracker, start + s(31)).is_expired_for("k", 3));
        assert!(!Observed::new(&tracker, start + s(29)).is_expired_for("k", 3));
        let closure = |key: &str, n: u32| key == "x" && n == 1;
        assert!(closure.is_expired("x"));
    }
}
