//! [`MemoryStore`]: the three tables in memory, every write judged by [`ops::apply`], with fault
//! injection and a log of writes for assertions. Deterministic: no clock, no randomness, no
//! threads.

use std::collections::{BTreeMap, VecDeque};
use std::future::{Future, ready};
use std::sync::{Mutex, MutexGuard};

use crate::attr;
use crate::ops::{self, ApplyError, Condition, Delete, Update, Write};
use crate::store::{LeaseStore, StoreError, Table, UpdateError, index_key_refused};
use crate::value::{AttributeValue, Item};

/// What a logged request was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// An update or put.
    Update {
        /// Its condition.
        condition: Condition,
        /// Its changes.
        update: Update,
    },
    /// A delete.
    Delete {
        /// Its condition.
        condition: Condition,
    },
}

/// How a logged write ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It landed and said so.
    Landed,
    /// It landed, but the caller was told [`StoreError::Unavailable`] (a timeout after the
    /// write, or a retried request that had succeeded): the "spurious" failure.
    LandedButReportedFailure,
    /// The condition did not hold; nothing changed.
    ConditionFailed,
    /// It was refused as invalid; nothing changed.
    Invalid,
    /// An injected failure; nothing changed.
    Failed(StoreError),
}

/// One write as the store saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedWrite {
    /// The table.
    pub table: Table,
    /// The item's key.
    pub key: String,
    /// The request.
    pub request: Request,
    /// The item before the write.
    pub before: Option<Item>,
    /// The item after it (the same as `before` when nothing changed).
    pub after: Option<Item>,
    /// How it ended.
    pub outcome: Outcome,
}

impl LoggedWrite {
    /// Whether the write changed the table (whatever the caller was told).
    pub fn landed(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Landed | Outcome::LandedButReportedFailure
        )
    }
}

#[derive(Debug, Default)]
struct State {
    tables: BTreeMap<Table, BTreeMap<String, Item>>,
    /// Failures for the next calls, reads and writes alike.
    failures: VecDeque<StoreError>,
    /// The next writes land but report failure.
    spurious: usize,
    log: Vec<LoggedWrite>,
}

/// The lease, coordinator-state and worker-metrics tables in memory.
///
/// Reads are always consistent and the owner index is never behind. Faults: [`fail_next`]
/// fails the next calls without touching anything, [`land_but_fail_next`] lets the next writes
/// land and reports them failed. Every write is logged ([`writes`]).
///
/// [`fail_next`]: MemoryStore::fail_next
/// [`land_but_fail_next`]: MemoryStore::land_but_fail_next
/// [`writes`]: MemoryStore::writes
///
/// ```
/// use kcl_lease::{Lease, LeaseStore, MemoryStore, StoreError, Table, UpdateError, block_on, ops};
/// use kcl_protocol::ExtendedSequenceNumber as E;
/// let store = MemoryStore::new();
/// let lease = Lease::new("shardId-0", E::trim_horizon());
/// block_on(store.create_if_not_exists(&lease)).unwrap();
///
/// store.land_but_fail_next(1);
/// let outcome = block_on(store.update(Table::Lease, &ops::take(&lease, "me")));
/// assert!(matches!(outcome, Err(UpdateError::Store(StoreError::Unavailable(_)))));
/// assert_eq!(store.item(Table::Lease, "shardId-0").unwrap()["leaseOwner"].as_s(), Some("me"));
///
/// store.fail_next(1, StoreError::Throttled("slow down".into()));
/// assert!(block_on(store.scan(Table::Lease)).is_err());
/// assert_eq!(store.writes().len(), 2);
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// Empty tables.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic in a test while holding the lock leaves plain data behind: keep using it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fails the next `n` calls (reads or writes) with `error`; nothing changes.
    pub fn fail_next(&self, n: usize, error: StoreError) {
        let mut state = self.state();
        state.failures.extend(std::iter::repeat_n(error, n));
    }

    /// Lets the next `n` writes land (if their conditions hold) but report
    /// [`StoreError::Unavailable`].
    pub fn land_but_fail_next(&self, n: usize) {
        self.state().spurious += n;
    }

    /// Every write so far, in order.
    pub fn writes(&self) -> Vec<LoggedWrite> {
        self.state().log.clone()
    }

    /// How many writes were logged (to slice [`writes`](MemoryStore::writes) later).
    pub fn write_count(&self) -> usize {
        self.state().log.len()
    }

    /// One item, read directly (no fault, no log).
    pub fn item(&self, table: Table, key: &str) -> Option<Item> {
        self.state().tables.get(&table)?.get(key).cloned()
    }

    /// Every item of a table, read directly (no fault, no log, nothing skipped).
    pub fn items(&self, table: Table) -> BTreeMap<String, Item> {
        self.state().tables.get(&table).cloned().unwrap_or_default()
    }

    /// Puts an item as it is, unconditionally and unlogged (to seed a table with golden or
    /// foreign rows). Returns `false`, changing nothing, when the item has no string key.
    pub fn insert(&self, table: Table, item: Item) -> bool {
        let Some(key) = item
            .get(table.key_attribute())
            .and_then(AttributeValue::as_s)
            .map(str::to_owned)
        else {
            return false;
        };
        self.state()
            .tables
            .entry(table)
            .or_default()
            .insert(key, item);
        true
    }

    fn take_failure(state: &mut State) -> Option<StoreError> {
        state.failures.pop_front()
    }

    fn get_now(&self, table: Table, key: &str) -> Result<Option<Item>, StoreError> {
        let mut state = self.state();
        if let Some(error) = Self::take_failure(&mut state) {
            return Err(error);
        }
        Ok(state.tables.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn scan_now(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        let mut state = self.state();
        if let Some(error) = Self::take_failure(&mut state) {
            return Err(error);
        }
        let rows = state
            .tables
            .get(&table)
            .into_iter()
            .flat_map(|t| t.values());
        Ok(rows
            .filter(|item| table != Table::Lease || is_lease_row(item))
            .cloned()
            .collect())
    }

    fn query_owner_now(&self, owner: &str) -> Result<Vec<String>, StoreError> {
        let mut state = self.state();
        if let Some(error) = Self::take_failure(&mut state) {
            return Err(error);
        }
        let leases = state.tables.get(&Table::Lease).into_iter().flatten();
        Ok(leases
            .filter(|(_, item)| {
                item.get(attr::LEASE_OWNER).and_then(AttributeValue::as_s) == Some(owner)
            })
            .map(|(key, _)| key.clone())
            .collect())
    }

    /// Runs one write under the lock: fault, refusal (`refused`: why the table refuses it
    /// whatever the item holds), condition, change, log.
    fn write_now(
        &self,
        table: Table,
        key: &str,
        request: Request,
        refused: Option<String>,
    ) -> Result<Option<Item>, UpdateError> {
        let mut state = self.state();
        let before = state.tables.get(&table).and_then(|t| t.get(key)).cloned();
        let mut log = LoggedWrite {
            table,
            key: key.to_owned(),
            request: request.clone(),
            before: before.clone(),
            after: before.clone(),
            outcome: Outcome::Landed,
        };
        if let Some(error) = Self::take_failure(&mut state) {
            log.outcome = Outcome::Failed(error.clone());
            state.log.push(log);
            return Err(error.into());
        }
        let result = match (&request, refused) {
            (_, Some(why)) => Err(ApplyError::Invalid(why)),
            (Request::Update { condition, update }, None) => ops::apply(
                (table.key_attribute(), key),
                condition,
                update,
                before.as_ref(),
            )
            .map(Some),
            (Request::Delete { condition }, None) => ops::apply_delete(condition, before.as_ref())
                .map(|_| None)
                .map_err(ApplyError::from),
        };
        let after = match result {
            Ok(after) => after,
            Err(ApplyError::ConditionFailed(failed)) => {
                log.outcome = Outcome::ConditionFailed;
                state.log.push(log);
                return Err(failed.into());
            }
            Err(ApplyError::Invalid(why)) => {
                log.outcome = Outcome::Invalid;
                state.log.push(log);
                return Err(StoreError::Invalid(why).into());
            }
        };
        let rows = state.tables.entry(table).or_default();
        match &after {
            Some(item) => rows.insert(key.to_owned(), item.clone()),
            None => rows.remove(key),
        };
        log.after = after.clone();
        let spurious = state.spurious > 0;
        if spurious {
            state.spurious -= 1;
            log.outcome = Outcome::LandedButReportedFailure;
        }
        state.log.push(log);
        if spurious {
            return Err(StoreError::Unavailable("injected: the write landed".into()).into());
        }
        Ok(match request {
            Request::Update { .. } => after,
            Request::Delete { .. } => before,
        })
    }
}

/// A lease-table row that is a lease: no `entityType`, or `LEASE`.
pub(crate) fn is_lease_row(item: &Item) -> bool {
    match item.get(attr::ENTITY_TYPE) {
        None => true,
        Some(value) => value.as_s() == Some(attr::ENTITY_TYPE_LEASE),
    }
}

impl LeaseStore for MemoryStore {
    fn get(
        &self,
        table: Table,
        key: &str,
        _consistent: bool,
    ) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send {
        ready(self.get_now(table, key))
    }

    fn scan(&self, table: Table) -> impl Future<Output = Result<Vec<Item>, StoreError>> + Send {
        ready(self.scan_now(table))
    }

    fn query_owner(
        &self,
        owner: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        ready(self.query_owner_now(owner))
    }

    fn update(
        &self,
        table: Table,
        write: &Write,
    ) -> impl Future<Output = Result<Item, UpdateError>> + Send {
        let request = Request::Update {
            condition: write.condition.clone(),
            update: write.update.clone(),
        };
        let result = self
            .write_now(table, &write.key, request, index_key_refused(table, write))
            .map(|after| after.expect("an update leaves an item"));
        ready(result)
    }

    fn delete(
        &self,
        table: Table,
        delete: &Delete,
    ) -> impl Future<Output = Result<Option<Item>, UpdateError>> + Send {
        let request = Request::Delete {
            condition: delete.condition.clone(),
        };
        ready(self.write_now(table, &delete.key, request, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::block_on;
    use crate::item::{Lease, encode};
    use kcl_protocol::ExtendedSequenceNumber as E;

    fn seeded() -> (MemoryStore, Lease) {
        let store = MemoryStore::new();
        let lease = Lease::new("shardId-0", E::trim_horizon());
        assert!(block_on(store.create_if_not_exists(&lease)).unwrap());
        (store, lease)
    }

    #[test]
    fn scans_skip_foreign_rows_and_the_index_follows_owners() {
        let (store, lease) = seeded();
        let mut other = encode(&Lease::new("x", E::trim_horizon()));
        other.insert("entityType".into(), AttributeValue::s("LEADER"));
        assert!(store.insert(Table::Lease, other));
        let mut labelled = encode(&Lease::new("y", E::trim_horizon()));
        labelled.insert("entityType".into(), AttributeValue::s("LEASE"));
        assert!(store.insert(Table::Lease, labelled));
        assert!(!store.insert(Table::Lease, Item::new()));
        let keys: Vec<String> = block_on(store.scan(Table::Lease))
            .unwrap()
            .iter()
            .map(|item| item["leaseKey"].as_s().unwrap().to_owned())
            .collect();
        assert_eq!(keys, ["shardId-0", "y"]);
        assert_eq!(store.items(Table::Lease).len(), 3);
        block_on(store.update(Table::Lease, &ops::take(&lease, "a"))).unwrap();
        assert_eq!(block_on(store.query_owner("a")).unwrap(), ["shardId-0"]);
        assert!(block_on(store.query_owner("b")).unwrap().is_empty());
        assert!(
            block_on(store.scan(Table::WorkerMetrics))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn faults_and_the_log() {
        let (store, lease) = seeded();
        store.fail_next(2, StoreError::Throttled("t".into()));
        assert_eq!(
            block_on(store.get(Table::Lease, "shardId-0", true)),
            Err(StoreError::Throttled("t".into()))
        );
        assert!(matches!(
            block_on(store.update(Table::Lease, &ops::take(&lease, "a"))),
            Err(UpdateError::Store(StoreError::Throttled(_)))
        ));
        assert_eq!(
            block_on(store.query_owner("a")).unwrap(),
            Vec::<String>::new()
        );
        // The stale take fails its condition after a landed one.
        block_on(store.update(Table::Lease, &ops::take(&lease, "a"))).unwrap();
        let Err(UpdateError::ConditionFailed(failed)) =
            block_on(store.update(Table::Lease, &ops::take(&lease, "b")))
        else {
            panic!("a stale take landed")
        };
        assert_eq!(failed.current.unwrap()["leaseOwner"].as_s(), Some("a"));
        let outcomes: Vec<Outcome> = store.writes().into_iter().map(|w| w.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Landed,
                Outcome::Failed(StoreError::Throttled("t".into())),
                Outcome::Landed,
                Outcome::ConditionFailed
            ]
        );
        assert_eq!(store.write_count(), 4);
        assert!(store.writes()[2].landed());
        assert!(!store.writes()[3].landed());
    }

    #[test]
    fn deletes_and_invalid_writes() {
        let (store, lease) = seeded();
        store.land_but_fail_next(1);
        assert!(block_on(store.delete(Table::Lease, &ops::delete(&lease))).is_err());
        assert_eq!(store.item(Table::Lease, "shardId-0"), None);
        let log = store.writes();
        assert_eq!(log[1].outcome, Outcome::LandedButReportedFailure);
        assert_eq!(log[1].after, None);
        assert_eq!(
            block_on(store.delete(Table::Lease, &ops::delete(&lease))),
            Ok(None)
        );
        let bad = Write {
            key: "k".into(),
            condition: Condition::default(),
            update: Update::Actions(vec![ops::Action::Remove("leaseKey".into())]),
        };
        assert!(matches!(
            block_on(store.update(Table::Lease, &bad)),
            Err(UpdateError::Store(StoreError::Invalid(_)))
        ));
        assert_eq!(store.writes().last().unwrap().outcome, Outcome::Invalid);
        // The owner index keys on leaseOwner: it must be a non-empty string.
        for owner in [AttributeValue::s(""), AttributeValue::n(1)] {
            let unindexable = Write {
                key: "shardId-0".into(),
                condition: Condition::default().exists("nothing"),
                update: Update::Actions(vec![ops::Action::Put("leaseOwner".into(), owner)]),
            };
            assert!(matches!(
                block_on(store.update(Table::Lease, &unindexable)),
                Err(UpdateError::Store(StoreError::Invalid(_)))
            ));
            // Other tables have no such index.
            assert!(matches!(
                block_on(store.update(Table::WorkerMetrics, &unindexable)),
                Err(UpdateError::ConditionFailed(_))
            ));
        }
        let (store, lease) = seeded();
        let fenced = Delete {
            key: lease.lease_key.clone(),
            condition: Condition::default().absent("leaseCounter"),
        };
        assert!(matches!(
            block_on(store.delete(Table::Lease, &fenced)),
            Err(UpdateError::ConditionFailed(_))
        ));
        let old = block_on(store.delete(Table::Lease, &ops::delete(&lease))).unwrap();
        assert_eq!(old.unwrap()["leaseKey"].as_s(), Some("shardId-0"));
    }
}
