//! The storage interface the native engine uses: the lease, coordinator-state and worker-metrics
//! tables, every write a [`Write`] or [`Delete`] from [`ops`](crate::ops). Async without an
//! async-trait crate or a runtime dependency: each method returns `impl Future + Send`.

use std::future::Future;

use crate::attr;
use crate::coordinator::{COORDINATOR_KEY, WORKER_ID};
use crate::item::{CodecError, Decoded, Lease, decode};
use crate::ops::{self, ConditionFailed, Delete, Write};
use crate::value::Item;

/// The three tables of a KCL 3.x application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// The lease table (`leaseKey`).
    Lease,
    /// `<app>-CoordinatorState` (`key`): the `Leader` lock and `Migration3.0`.
    CoordinatorState,
    /// `<app>-WorkerMetricStats` (`wid`).
    WorkerMetrics,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 3] = [Table::Lease, Table::CoordinatorState, Table::WorkerMetrics];

    /// The table's hash key attribute.
    ///
    /// ```
    /// assert_eq!(kcl_lease::Table::WorkerMetrics.key_attribute(), "wid");
    /// ```
    pub fn key_attribute(self) -> &'static str {
        match self {
            Table::Lease => attr::LEASE_KEY,
            Table::CoordinatorState => COORDINATOR_KEY,
            Table::WorkerMetrics => WORKER_ID,
        }
    }
}

/// A request the store did not carry out (or, for a write, may have carried out without
/// saying so: see [`StoreError::Unavailable`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Throttled (`ProvisionedThroughputExceeded`, `ThrottlingException`, request limit): retry
    /// with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The service or the network failed (timeout, 5xx, connection reset). A write may have
    /// landed all the same.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request was refused as invalid (`ValidationException`); retrying will not help.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Why a conditional write did not (knowingly) land.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The condition did not hold; the item as it was.
    #[error(transparent)]
    ConditionFailed(#[from] ConditionFailed),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The tables, as the native engine uses them. Implemented by [`MemoryStore`](crate::MemoryStore)
/// and, later, by a DynamoDB store that turns each [`Write`] into a conditional `UpdateItem` or
/// `PutItem` with the same condition.
///
/// ```
/// use kcl_lease::{Lease, LeaseStore, MemoryStore, Table, block_on, ops};
/// use kcl_protocol::ExtendedSequenceNumber as E;
/// let store = MemoryStore::new();
/// let lease = Lease::new("shardId-0", E::trim_horizon());
/// block_on(store.create_if_not_exists(&lease)).unwrap();
/// block_on(store.update(Table::Lease, &ops::take(&lease, "me"))).unwrap();
/// assert_eq!(block_on(store.query_owner("me")).unwrap(), ["shardId-0"]);
/// let items = block_on(store.scan(Table::Lease)).unwrap();
/// assert_eq!(items[0]["leaseCounter"].as_n(), Some("1"));
/// ```
pub trait LeaseStore: Sync {
    /// Reads one item (`GetItem`); `consistent` asks for a strongly consistent read.
    fn get(
        &self,
        table: Table,
        key: &str,
        consistent: bool,
    ) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send;

    /// Reads every item (`Scan`, all pages). In the lease table, rows with an `entityType`
    /// other than `LEASE` (KCL 3.5 single-table mode) are left out.
    fn scan(&self, table: Table) -> impl Future<Output = Result<Vec<Item>, StoreError>> + Send;

    /// The keys of the leases `owner` holds, from the `LeaseOwnerToLeaseKeyIndex` index (all
    /// pages, sorted; the index is eventually consistent, so re-read each lease).
    fn query_owner(
        &self,
        owner: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// A conditional write: the item after it (`ALL_NEW`), or the condition's failure with the
    /// item as it was (`ALL_OLD`).
    fn update(
        &self,
        table: Table,
        write: &Write,
    ) -> impl Future<Output = Result<Item, UpdateError>> + Send;

    /// A conditional delete: the item as it was (`None` if there was none).
    fn delete(
        &self,
        table: Table,
        delete: &Delete,
    ) -> impl Future<Output = Result<Option<Item>, UpdateError>> + Send;

    /// `createLeaseIfNotExists`: `true` if the lease was created, `false` if its key was taken.
    fn create_if_not_exists(
        &self,
        lease: &Lease,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let write = ops::create_if_not_exists(lease);
        async move {
            match self.update(Table::Lease, &write).await {
                Ok(_) => Ok(true),
                Err(UpdateError::ConditionFailed(_)) => Ok(false),
                Err(UpdateError::Store(error)) => Err(error),
            }
        }
    }
}

/// What DynamoDB refuses in a write to `table` because of the lease table's owner index: a
/// `leaseOwner` that is not a non-empty string (`LeaseOwnerToLeaseKeyIndex` keys on it). Both
/// stores refuse it before looking at the item, so they agree whatever the condition.
pub(crate) fn index_key_refused(table: Table, write: &Write) -> Option<String> {
    if table != Table::Lease {
        return None;
    }
    let owner = match &write.update {
        ops::Update::Actions(actions) => actions.iter().find_map(|action| match action {
            ops::Action::Put(name, value) if name == attr::LEASE_OWNER => Some(value),
            _ => None,
        }),
        ops::Update::PutItem(item) => item.get(attr::LEASE_OWNER),
    }?;
    match owner.as_s() {
        Some(owner) if !owner.is_empty() => None,
        _ => Some(format!(
            "{} is a key of {}: it must be a non-empty string, not {owner:?}",
            attr::LEASE_OWNER,
            attr::LEASE_OWNER_INDEX
        )),
    }
}

/// The leases among scanned lease-table items, and the rows that could not be read (Java logs
/// and counts those, then goes on). Non-lease rows are skipped.
///
/// ```
/// use kcl_lease::{AttributeValue as V, Item, Lease, decode_leases, encode};
/// use kcl_protocol::ExtendedSequenceNumber as E;
/// let good = encode(&Lease::new("shardId-0", E::trim_horizon()));
/// let bad = Item::from([("leaseKey".to_string(), V::s("shardId-1"))]);
/// let other = Item::from([("leaseKey".to_string(), V::s("x")), ("entityType".to_string(), V::s("LEADER"))]);
/// let (leases, errors) = decode_leases(&[good, bad, other]);
/// assert_eq!((leases.len(), errors.len()), (1, 1));
/// ```
pub fn decode_leases(items: &[Item]) -> (Vec<Lease>, Vec<CodecError>) {
    let mut leases = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        match decode(item) {
            Ok(Decoded::Lease(lease)) => leases.push(lease),
            Ok(Decoded::NotALease { .. }) => {}
            Err(error) => errors.push(error),
        }
    }
    (leases, errors)
}
