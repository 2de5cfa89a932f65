//! Observed expiry (§2.3): a lease is expired when *this* process has not seen its
//! `leaseCounter` change for the failover time. No timestamps in the table, no clock read here:
//! the caller passes the local monotonic time of each scan.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A local monotonic time: [`Instant`] in an engine, a [`Duration`] since an arbitrary origin on a
/// virtual clock in tests.
pub trait Monotonic: Copy + Ord {
    /// How long after `earlier` this is (zero if it is not later).
    fn since(self, earlier: Self) -> Duration;
}

impl Monotonic for Instant {
    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl Monotonic for Duration {
    fn since(self, earlier: Self) -> Duration {
        self.saturating_sub(earlier)
    }
}

/// When the counter of one lease last changed, as observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen<T> {
    counter: u64,
    /// `None`: never seen renewed (first seen unowned), so expired at once.
    changed_at: Option<T>,
}

/// Expiry as the Java KCL observes it (`DynamoDBLeaseTaker.updateAllLeases`,
/// `Lease.isExpired`): each scan feeds every lease's counter with the scan's time; a lease is
/// expired when its counter has not changed for longer than the failover time. A lease seen for
/// the first time counts as fresh (renewed at that scan) when it has an owner, and as never
/// renewed — expired — when it has none. Leases missing from a scan are forgotten.
///
/// ```
/// use kcl_lease::ExpiryTracker;
/// use std::time::Duration;
/// let s = Duration::from_secs;
/// let mut tracker = ExpiryTracker::new(s(10));
/// tracker.observe("shardId-0", 7, true, s(0));
/// assert!(!tracker.is_expired("shardId-0", s(10)));
/// tracker.observe("shardId-0", 7, true, s(11)); // unchanged...
/// assert!(tracker.is_expired("shardId-0", s(11))); // ...for more than 10 s
/// tracker.observe("shardId-0", 8, true, s(12)); // renewed
/// assert!(!tracker.is_expired("shardId-0", s(20)));
/// ```
#[derive(Clone, Debug)]
pub struct ExpiryTracker<T> {
    failover: Duration,
    seen: BTreeMap<String, Seen<T>>,
}

impl<T: Monotonic> ExpiryTracker<T> {
    /// A tracker with this failover time (`failoverTimeMillis`, 10 s by default).
    pub fn new(failover: Duration) -> Self {
        ExpiryTracker {
            failover,
            seen: BTreeMap::new(),
        }
    }

    /// The failover time.
    pub fn failover(&self) -> Duration {
        self.failover
    }

    /// Records one lease as read at `now`: its counter, and whether it has an owner. Returns
    /// whether the counter changed since the previous observation (`true` for a new lease).
    pub fn observe(&mut self, key: &str, counter: u64, owned: bool, now: T) -> bool {
        match self.seen.get_mut(key) {
            Some(seen) if seen.counter == counter => false,
            Some(seen) => {
                *seen = Seen {
                    counter,
                    changed_at: Some(now),
                };
                true
            }
            None => {
                let changed_at = owned.then_some(now);
                self.seen.insert(
                    key.to_owned(),
                    Seen {
                        counter,
                        changed_at,
                    },
                );
                true
            }
        }
    }

    /// Records a whole scan taken at `now` — `(key, counter, owned)` for every lease read —
    /// and forgets the leases it does not list.
    pub fn observe_scan<'a>(
        &mut self,
        leases: impl IntoIterator<Item = (&'a str, u64, bool)>,
        now: T,
    ) {
        let mut listed = BTreeMap::new();
        for (key, counter, owned) in leases {
            self.observe(key, counter, owned, now);
            listed.insert(key.to_owned(), ());
        }
        self.seen.retain(|key, _| listed.contains_key(key));
    }

    /// Records a change this process made itself (a renewal, take or checkpoint that landed
    /// with `counter`): the lease is fresh as of `now`.
    pub fn record_own_write(&mut self, key: &str, counter: u64, now: T) {
        self.seen.insert(
            key.to_owned(),
            Seen {
                counter,
                changed_at: Some(now),
            },
        );
    }

    /// Whether the lease is expired at `now`: its counter was never seen to change (first seen
    /// unowned) or has not changed for longer than the failover time. A lease never observed
    /// is not expired (nothing is known of it).
    pub fn is_expired(&self, key: &str, now: T) -> bool {
        match self.seen.get(key) {
            None => false,
            Some(Seen {
                changed_at: None, ..
            }) => true,
            Some(Seen {
                changed_at: Some(at),
                ..
            }) => now.since(*at) > self.failover,
        }
    }

    /// The counter last observed for a lease.
    pub fn counter(&self, key: &str) -> Option<u64> {
        self.seen.get(key).map(|seen| seen.counter)
    }

    /// Forgets a lease.
    pub fn forget(&mut self, key: &str) {
        self.seen.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn first_sight_owned_is_fresh_unowned_is_expired() {
        let mut tracker = ExpiryTracker::new(S(10));
        assert!(tracker.observe("owned", 3, true, S(100)));
        assert!(tracker.observe("free", 3, false, S(100)));
        assert!(!tracker.is_expired("owned", S(110)));
        assert!(tracker.is_expired("owned", S(111)));
        assert!(tracker.is_expired("free", S(100)));
        assert!(!tracker.is_expired("never-seen", S(1000)));
        // The free lease is taken by someone: its counter changes, it is fresh.
        assert!(tracker.observe("free", 4, true, S(105)));
        assert!(!tracker.is_expired("free", S(115)));
        assert_eq!(tracker.counter("free"), Some(4));
    }

    #[test]
    fn exactly_the_failover_time_is_not_yet_expired() {
        let mut tracker = ExpiryTracker::new(S(10));
        tracker.observe("k", 1, true, S(0));
        assert!(!tracker.observe("k", 1, true, S(10)));
        assert!(!tracker.is_expired("k", S(10)));
        assert!(tracker.is_expired("k", S(10) + Duration::from_nanos(1)));
    }

    #[test]
    fn scans_forget_missing_leases_and_own_writes_refresh() {
        let mut tracker = ExpiryTracker::new(S(10));
        tracker.observe_scan([("a", 1, true), ("b", 1, false)], S(0));
        tracker.observe_scan([("a", 1, true)], S(5));
        assert_eq!(tracker.counter("b"), None);
        tracker.record_own_write("a", 2, S(20));
        assert!(!tracker.is_expired("a", S(25)));
        tracker.forget("a");
        assert_eq!(tracker.counter("a"), None);
        assert_eq!(tracker.failover(), S(10));
    }

    #[test]
    fn instants_work_too() {
        let start = Instant::now();
        let mut tracker = ExpiryTracker::new(Duration::from_millis(10));
        tracker.observe("k", 1, true, start);
        assert!(!tracker.is_expired("k", start));
        assert!(tracker.is_expired("k", start + Duration::from_millis(11)));
        assert_eq!(start.since(start + S(1)), Duration::ZERO);
    }
}
