//! The `Leader` item: a lock of the AWS DynamoDB lock client (`AmazonDynamoDBLockClient`, as
//! KCL 3.x's `DynamoDBLockBasedLeaderDecider` uses it) and the lock client's writes.
//!
//! The record version number (a UUID in Java) is passed in by the caller: nothing here draws
//! random numbers or reads a clock.

use std::time::Duration;

use super::{COORDINATOR_KEY, Fields, ItemError};
use crate::expiry::Monotonic;
use crate::item::Problem;
use crate::ops::{Action, Condition, Delete, Update, Write};
use crate::value::{AttributeValue, Item};

/// The key of the leader lock item.
pub const LEADER_KEY: &str = "Leader";

const OWNER_NAME: &str = "ownerName";
const RECORD_VERSION_NUMBER: &str = "recordVersionNumber";
const LEASE_DURATION: &str = "leaseDuration";
const IS_RELEASED: &str = "isReleased";
const DATA: &str = "data";
/// The lock client's value of `isReleased`.
const RELEASED: &str = "1";

/// A lock item: `key`, `ownerName`, `recordVersionNumber`, `leaseDuration` (milliseconds, as a
/// string), optional `isReleased` (`"1"`) and `data` (binary).
///
/// ```
/// use kcl_lease::LockItem;
/// let lock = LockItem::new("Leader", "worker-a", "3f1c…", 120_000);
/// let item = lock.encode();
/// assert_eq!(item["leaseDuration"].as_s(), Some("120000")); // a string, as the lock client writes it
/// assert_eq!(LockItem::decode(&item).unwrap(), lock);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockItem {
    /// `key`: the lock's name (`Leader`).
    pub key: String,
    /// `ownerName`: the worker holding (or last holding) the lock.
    pub owner_name: String,
    /// `recordVersionNumber`: rewritten on every acquire and heartbeat.
    pub record_version_number: String,
    /// `leaseDuration` in milliseconds.
    pub lease_duration_ms: u64,
    /// `isReleased = "1"`: released without deleting the item.
    pub is_released: bool,
    /// `data`: opaque payload.
    pub data: Option<Vec<u8>>,
    /// Any other attribute, preserved.
    pub other: Item,
}

impl LockItem {
    /// A held lock without data.
    pub fn new(
        key: impl Into<String>,
        owner_name: impl Into<String>,
        record_version_number: impl Into<String>,
        lease_duration_ms: u64,
    ) -> Self {
        LockItem {
            key: key.into(),
            owner_name: owner_name.into(),
            record_version_number: record_version_number.into(),
            lease_duration_ms,
            is_released: false,
            data: None,
            other: Item::new(),
        }
    }

    /// Reads a lock item.
    pub fn decode(item: &Item) -> Result<LockItem, ItemError> {
        let fields = Fields::new(item, COORDINATOR_KEY);
        let key = fields.required_s(COORDINATOR_KEY)?;
        let owner_name = fields.required_s(OWNER_NAME)?.to_owned();
        let record_version_number = fields.required_s(RECORD_VERSION_NUMBER)?.to_owned();
        let duration = fields.required_s(LEASE_DURATION)?;
        let lease_duration_ms = duration.parse().map_err(|_| {
            fields.error(
                LEASE_DURATION,
                Problem::Invalid {
                    value: duration.to_owned(),
                    expected: "milliseconds",
                },
            )
        })?;
        let data = match fields.get(DATA) {
            None => None,
            Some(AttributeValue::B(bytes)) => Some(bytes.clone()),
            Some(other) => {
                return Err(fields.error(
                    DATA,
                    Problem::WrongType {
                        expected: "B",
                        found: other.type_name(),
                    },
                ));
            }
        };
        Ok(LockItem {
            key: key.to_owned(),
            owner_name,
            record_version_number,
            lease_duration_ms,
            is_released: fields.s(IS_RELEASED)? == Some(RELEASED),
            data,
            other: fields.other(&[
                COORDINATOR_KEY,
                OWNER_NAME,
                RECORD_VERSION_NUMBER,
                LEASE_DURATION,
                IS_RELEASED,
                DATA,
            ]),
        })
    }

    /// Writes the item as the lock client does (`isReleased` only when released, `data` only
    /// when present).
    pub fn encode(&self) -> Item {
        let mut item = self.other.clone();
        item.insert(COORDINATOR_KEY.into(), AttributeValue::s(&self.key));
        item.insert(OWNER_NAME.into(), AttributeValue::s(&self.owner_name));
        item.insert(
            RECORD_VERSION_NUMBER.into(),
            AttributeValue::s(&self.record_version_number),
        );
        item.insert(
            LEASE_DURATION.into(),
            AttributeValue::s(self.lease_duration_ms.to_string()),
        );
        if self.is_released {
            item.insert(IS_RELEASED.into(), AttributeValue::s(RELEASED));
        }
        if let Some(data) = &self.data {
            item.insert(DATA.into(), AttributeValue::B(data.clone()));
        }
        item
    }
}

fn put_item(lock: &LockItem) -> Update {
    Update::PutItem(lock.encode())
}

fn rvn_is(condition: Condition, rvn: &str) -> Condition {
    condition.equals(RECORD_VERSION_NUMBER, AttributeValue::s(rvn))
}

/// Acquire a lock nobody has: `PutItem` of `lock`, conditioned on no item with its key
/// (`attribute_not_exists(key)`).
pub fn acquire_unheld(lock: &LockItem) -> Write {
    Write {
        key: lock.key.clone(),
        condition: Condition::default().absent(COORDINATOR_KEY),
        update: put_item(lock),
    }
}

/// Acquire a released lock (`isReleased = "1"`): `PutItem` of `lock`, conditioned on the item
/// existing, released, with the record version number observed.
pub fn acquire_released(observed: &LockItem, lock: &LockItem) -> Write {
    let condition = Condition::default()
        .exists(COORDINATOR_KEY)
        .equals(IS_RELEASED, AttributeValue::s(RELEASED));
    Write {
        key: lock.key.clone(),
        condition: rvn_is(condition, &observed.record_version_number),
        update: put_item(lock),
    }
}

/// Take over an expired lock — one whose record version number this process saw unchanged for
/// a whole lease duration ([`LockObserver`]): `PutItem` of `lock`, conditioned on the item
/// existing with that record version number (the owner is not checked: the lock expired).
pub fn steal_expired(observed: &LockItem, lock: &LockItem) -> Write {
    let condition = Condition::default().exists(COORDINATOR_KEY);
    Write {
        key: lock.key.clone(),
        condition: rvn_is(condition, &observed.record_version_number),
        update: put_item(lock),
    }
}

/// The holder's condition: the item exists, with the held record version number and owner.
fn held_by(held: &LockItem) -> Condition {
    let condition = rvn_is(
        Condition::default().exists(COORDINATOR_KEY),
        &held.record_version_number,
    );
    condition.equals(OWNER_NAME, AttributeValue::s(&held.owner_name))
}

/// Heartbeat: `SET leaseDuration, recordVersionNumber = new_rvn`, conditioned on the item
/// existing with the held record version number and owner.
pub fn heartbeat(held: &LockItem, new_rvn: &str) -> Write {
    Write {
        key: held.key.clone(),
        condition: held_by(held),
        update: Update::Actions(vec![
            Action::Put(
                LEASE_DURATION.into(),
                AttributeValue::s(held.lease_duration_ms.to_string()),
            ),
            Action::Put(RECORD_VERSION_NUMBER.into(), AttributeValue::s(new_rvn)),
        ]),
    }
}

/// Release by deleting the item, conditioned on it existing with the held record version number
/// and owner.
pub fn release(held: &LockItem) -> Delete {
    Delete {
        key: held.key.clone(),
        condition: held_by(held),
    }
}

/// Release without deleting (`SET isReleased = "1"`), under the same condition as [`release`].
pub fn mark_released(held: &LockItem) -> Write {
    Write {
        key: held.key.clone(),
        condition: held_by(held),
        update: Update::Actions(vec![Action::Put(
            IS_RELEASED.into(),
            AttributeValue::s(RELEASED),
        )]),
    }
}

/// What a contender makes of the lock item it just read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockState {
    /// No item: [`acquire_unheld`].
    Absent,
    /// Released: [`acquire_released`].
    Released(LockItem),
    /// Held, and not (yet) seen unchanged for a lease duration: wait.
    Held(LockItem),
    /// Its record version number was seen unchanged for longer than its lease duration:
    /// [`steal_expired`].
    Expired(LockItem),
}

/// The lock client's observation of someone else's lock: a lock is expired when this process
/// has seen the same record version number for longer than the lock's lease duration, counted
/// from the first time it saw that number. No wall clock: times are the caller's monotonic
/// readings.
///
/// ```
/// use kcl_lease::{LockItem, LockObserver, LockState};
/// use std::time::Duration;
/// let s = Duration::from_secs;
/// let mut observer = LockObserver::default();
/// let lock = LockItem::new("Leader", "java-1", "rvn-1", 120_000);
/// assert!(matches!(observer.observe(Some(lock.clone()), s(0)), LockState::Held(_)));
/// assert!(matches!(observer.observe(Some(lock.clone()), s(120)), LockState::Held(_)));
/// assert!(matches!(observer.observe(Some(lock), s(121)), LockState::Expired(_)));
/// ```
#[derive(Clone, Debug)]
pub struct LockObserver<T> {
    seen: Option<(String, T)>,
}

impl<T> Default for LockObserver<T> {
    fn default() -> Self {
        LockObserver { seen: None }
    }
}

impl<T: Monotonic> LockObserver<T> {
    /// Judges the lock item read at `now` (`None`: no item).
    pub fn observe(&mut self, current: Option<LockItem>, now: T) -> LockState {
        let Some(lock) = current else {
            self.seen = None;
            return LockState::Absent;
        };
        if lock.is_released {
            self.seen = None;
            return LockState::Released(lock);
        }
        match &self.seen {
            Some((rvn, since)) if *rvn == lock.record_version_number => {
                let duration = Duration::from_millis(lock.lease_duration_ms);
                if now.since(*since) > duration {
                    LockState::Expired(lock)
                } else {
                    LockState::Held(lock)
                }
            }
            _ => {
                self.seen = Some((lock.record_version_number.clone(), now));
                LockState::Held(lock)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{apply, apply_delete};

    fn run(write: &Write, current: Option<&Item>) -> Result<Item, crate::ops::ApplyError> {
        apply(
            (COORDINATOR_KEY, &write.key),
            &write.condition,
            &write.update,
            current,
        )
    }

    #[test]
    fn the_lock_life_cycle() {
        let a = LockItem::new(LEADER_KEY, "a", "rvn-1", 120_000);
        let held = run(&acquire_unheld(&a), None).unwrap();
        assert_eq!(LockItem::decode(&held).unwrap(), a);
        // A second acquire of an unheld lock fails.
        let b = LockItem::new(LEADER_KEY, "b", "rvn-2", 120_000);
        assert!(run(&acquire_unheld(&b), Some(&held)).is_err());
        // Heartbeat rewrites the version number; a heartbeat with the old one then fails.
        let beaten = run(&heartbeat(&a, "rvn-3"), Some(&held)).unwrap();
        assert_eq!(beaten["recordVersionNumber"].as_s(), Some("rvn-3"));
        assert!(run(&heartbeat(&a, "rvn-4"), Some(&beaten)).is_err());
        // b saw rvn-1 expire, but the holder moved on: the steal fails.
        assert!(run(&steal_expired(&a, &b), Some(&beaten)).is_err());
        let a3 = LockItem::decode(&beaten).unwrap();
        let stolen = run(&steal_expired(&a3, &b), Some(&beaten)).unwrap();
        assert_eq!(LockItem::decode(&stolen).unwrap(), b);
        // a's release is refused now; b's works.
        assert!(apply_delete(&release(&a3).condition, Some(&stolen)).is_err());
        assert!(apply_delete(&release(&b).condition, Some(&stolen)).is_ok());
        // Release without delete, then acquire the released lock.
        let released = run(&mark_released(&b), Some(&stolen)).unwrap();
        let seen = LockItem::decode(&released).unwrap();
        assert!(seen.is_released);
        let c = LockItem::new(LEADER_KEY, "c", "rvn-5", 120_000);
        let acquired = run(&acquire_released(&seen, &c), Some(&released)).unwrap();
        assert_eq!(LockItem::decode(&acquired).unwrap(), c); // isReleased gone
        assert!(run(&acquire_released(&seen, &c), Some(&acquired)).is_err());
    }

    #[test]
    fn the_observer_restarts_on_a_new_version() {
        let s = Duration::from_secs;
        let mut observer = LockObserver::default();
        let v1 = LockItem::new(LEADER_KEY, "a", "1", 10_000);
        let v2 = LockItem::new(LEADER_KEY, "a", "2", 10_000);
        assert!(matches!(
            observer.observe(Some(v1.clone()), s(0)),
            LockState::Held(_)
        ));
        assert!(matches!(
            observer.observe(Some(v2.clone()), s(9)),
            LockState::Held(_)
        ));
        assert!(matches!(
            observer.observe(Some(v2.clone()), s(15)),
            LockState::Held(_)
        ));
        assert!(matches!(
            observer.observe(Some(v2.clone()), s(20)),
            LockState::Expired(_)
        ));
        assert_eq!(observer.observe(None, s(21)), LockState::Absent);
        let mut released = v2;
        released.is_released = true;
        assert!(matches!(
            observer.observe(Some(released), s(22)),
            LockState::Released(_)
        ));
    }

    #[test]
    fn decoding_keeps_data_and_unknowns() {
        let mut lock = LockItem::new(LEADER_KEY, "a", "1", 120_000);
        lock.data = Some(vec![1, 2]);
        lock.other
            .insert("entityType".into(), AttributeValue::s("LEADER"));
        assert_eq!(LockItem::decode(&lock.encode()).unwrap(), lock);
        let mut bad = lock.encode();
        bad.insert("leaseDuration".into(), AttributeValue::s("2m"));
        assert_eq!(
            LockItem::decode(&bad).unwrap_err().to_string(),
            "item Leader: attribute leaseDuration: \"2m\" is not milliseconds"
        );
        bad.insert("data".into(), AttributeValue::s("x"));
        bad.insert("leaseDuration".into(), AttributeValue::s("1"));
        assert!(LockItem::decode(&bad).is_err());
    }
}
