//! The `Leader` lock as the AWS DynamoDB lock client (1.3.0, used by the Java KCL 3.1.3's
//! `DynamoDBLockBasedLeaderDecider`) keeps it, one step at a time:
//!
//! - **holder**: every heartbeat period, `heartbeat` (rewrite the record version number,
//!   conditioned on the one held and on the owner). A refused heartbeat means the lock was
//!   taken over: no longer leader. A holder whose heartbeats have not landed for the lease
//!   duration stops counting itself leader (a contender may steal from then on).
//! - **contender**: every heartbeat period (Java's decider asks the lock client at most that
//!   often while it is not leader), read the item: none → `acquire_unheld` (`PutItem` if
//!   absent); released → `acquire_released`; held → remember its record version number and
//!   when it was first seen ([`LockObserver`]), and once the same number has been seen for
//!   longer than its `leaseDuration` → `steal_expired` (`PutItem` conditioned on that number).
//! - **release** (shutdown, three failed assignment runs): `DeleteItem` conditioned on the
//!   owner and the held record version number — `LockItem.close()` on a lock acquired with the
//!   lock client's default `deleteLockOnRelease = true`.
//!
//! Record version numbers are random UUIDs (version 4), as the lock client's.

use std::time::Duration;

use kcl_lease::coordinator::{
    LEADER_KEY, acquire_released, acquire_unheld, heartbeat, release, steal_expired,
};
use kcl_lease::{LeaseStore, LockItem, LockObserver, LockState, StoreError, Table, UpdateError};
use tokio::time::Instant;

/// The lock held: the item as last written and when that write was sent.
#[derive(Clone, Debug)]
struct Held {
    lock: LockItem,
    confirmed_at: Instant,
}

/// One worker's side of the `Leader` lock.
#[derive(Debug)]
pub(crate) struct LeaderLock {
    owner: String,
    lease_duration: Duration,
    observer: LockObserver<std::time::Instant>,
    held: Option<Held>,
}

/// A random version-4 UUID, as `UUID.randomUUID()`.
pub(crate) fn random_uuid() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    let version = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let variant = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        version >> 32,
        (version >> 16) & 0xffff,
        version & 0xffff,
        variant >> 48,
        variant & 0xffff_ffff_ffff
    )
}

impl LeaderLock {
    pub(crate) fn new(owner: &str, lease_duration: Duration) -> Self {
        LeaderLock {
            owner: owner.to_owned(),
            lease_duration,
            observer: LockObserver::default(),
            held: None,
        }
    }

    /// Whether this worker holds the lock at `now`: it acquired it or its last heartbeat
    /// landed, sent less than a lease duration ago.
    pub(crate) fn is_held(&self, now: Instant) -> bool {
        self.held
            .as_ref()
            .is_some_and(|held| now < held.confirmed_at + self.lease_duration)
    }

    fn new_lock(&self) -> LockItem {
        LockItem::new(
            LEADER_KEY,
            &self.owner,
            random_uuid(),
            u64::try_from(self.lease_duration.as_millis()).unwrap_or(u64::MAX),
        )
    }

    /// One step of the lock client (see the module's documentation); whether this worker holds
    /// the lock afterwards. Store failures leave the state as it was.
    pub(crate) async fn step<S: LeaseStore>(&mut self, store: &S) -> Result<bool, StoreError> {
        let now = Instant::now();
        if let Some(held) = self.held.clone() {
            if !self.is_held(now) {
                tracing::warn!(
                    "the Leader lock was not heartbeaten for its lease duration: not leader any more"
                );
                self.held = None;
            } else {
                let rvn = random_uuid();
                return match store
                    .update(Table::CoordinatorState, &heartbeat(&held.lock, &rvn))
                    .await
                {
                    Ok(_) => {
                        let mut lock = held.lock;
                        lock.record_version_number = rvn;
                        self.held = Some(Held {
                            lock,
                            confirmed_at: now,
                        });
                        Ok(true)
                    }
                    Err(UpdateError::ConditionFailed(_)) => {
                        tracing::warn!("the Leader lock was taken over: not leader any more");
                        self.held = None;
                        Ok(false)
                    }
                    Err(UpdateError::Store(error)) => Err(error),
                };
            }
        }
        let item = store.get(Table::CoordinatorState, LEADER_KEY, true).await?;
        let current = match item.as_ref().map(LockItem::decode).transpose() {
            Ok(current) => current,
            Err(error) => {
                tracing::error!(%error, "the Leader lock item cannot be read: not contending");
                return Ok(false);
            }
        };
        let mine = self.new_lock();
        let write = match self.observer.observe(current, now.into_std()) {
            LockState::Held(lock) => {
                tracing::debug!(leader = %lock.owner_name, "the Leader lock is held");
                return Ok(false);
            }
            LockState::Absent => acquire_unheld(&mine),
            LockState::Released(seen) => acquire_released(&seen, &mine),
            LockState::Expired(seen) => {
                tracing::info!(previous = %seen.owner_name, "the Leader lock expired: taking it over");
                steal_expired(&seen, &mine)
            }
        };
        match store.update(Table::CoordinatorState, &write).await {
            Ok(_) => {
                tracing::info!(worker = %self.owner, "this worker is the new leader");
                self.held = Some(Held {
                    lock: mine,
                    confirmed_at: now,
                });
                Ok(true)
            }
            Err(UpdateError::ConditionFailed(_)) => Ok(false),
            Err(UpdateError::Store(error)) => Err(error),
        }
    }

    /// Releases the lock if held: deletes the item, conditioned on this worker's record
    /// version number. Whether a release was written (refused: someone had taken it over).
    pub(crate) async fn release<S: LeaseStore>(&mut self, store: &S) -> Result<bool, StoreError> {
        let Some(held) = self.held.take() else {
            return Ok(false);
        };
        match store
            .delete(Table::CoordinatorState, &release(&held.lock))
            .await
        {
            Ok(_) => {
                tracing::info!(worker = %self.owner, "the Leader lock released");
                Ok(true)
            }
            Err(UpdateError::ConditionFailed(_)) => Ok(false),
            Err(UpdateError::Store(error)) => {
                // Not released: whoever comes next waits for the lease duration.
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_lease::MemoryStore;

    fn holder(store: &MemoryStore) -> Option<LockItem> {
        store
            .item(Table::CoordinatorState, LEADER_KEY)
            .map(|item| LockItem::decode(&item).unwrap())
    }

    #[test]
    fn uuids_look_like_uuids() {
        let uuid = random_uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(uuid, random_uuid());
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_heartbeat_steal_release() {
        let store = MemoryStore::new();
        let minute = Duration::from_secs(60);
        let mut a = LeaderLock::new("a", minute);
        let mut b = LeaderLock::new("b", minute);
        assert!(a.step(&store).await.unwrap());
        assert_eq!(holder(&store).unwrap().lease_duration_ms, 60_000);
        let first = holder(&store).unwrap().record_version_number;
        assert!(!b.step(&store).await.unwrap()); // first sight
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(a.step(&store).await.unwrap()); // heartbeat: a new number
        assert_ne!(holder(&store).unwrap().record_version_number, first);
        // a stops: b sees the same number for more than the lease duration, then steals.
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(30)).await;
            assert!(!b.step(&store).await.unwrap());
        }
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert!(!a.is_held(Instant::now()));
        assert!(b.step(&store).await.unwrap());
        assert_eq!(holder(&store).unwrap().owner_name, "b");
        // a's heartbeat is refused after it comes back; its release writes nothing.
        a.held = Some(Held {
            lock: LockItem::new(LEADER_KEY, "a", first, 60_000),
            confirmed_at: Instant::now(),
        });
        assert!(!a.step(&store).await.unwrap());
        assert!(!a.release(&store).await.unwrap());
        assert!(b.release(&store).await.unwrap());
        assert!(holder(&store).is_none());
        assert!(a.step(&store).await.unwrap());
    }
}
