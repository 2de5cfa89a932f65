//! The rows beside the leases (KCL 3.x): the `<app>-CoordinatorState` table's `Leader` lock item
//! (the AWS DynamoDB lock client's item and its writes) and `Migration3.0` item (the client
//! version, and what a worker must run for each), and the `<app>-WorkerMetricStats` rows with
//! the leader's "active worker" rule. In KCL 3.5 single-table mode the same items live in the
//! lease table with an `entityType`; the codecs keep any attribute they do not know.

mod lock;
mod metrics;
mod migration;

pub use lock::{
    LEADER_KEY, LockItem, LockObserver, LockState, acquire_released, acquire_unheld, heartbeat,
    mark_released, release, steal_expired,
};
pub use metrics::{WorkerMetricStats, delete_stale, report};
pub use migration::{
    CLIENT_VERSION_INIT, ClientVersion, HistoryEntry, MIGRATION_KEY, MigrationState, WorkerMode,
    create_migration_state, mode_for,
};

use std::fmt;

use crate::item::Problem;
use crate::value::{AttributeValue, Item};

/// The hash key attribute of the CoordinatorState table.
pub const COORDINATOR_KEY: &str = "key";
/// The hash key attribute of the WorkerMetricStats table (the worker id).
pub const WORKER_ID: &str = "wid";

/// A CoordinatorState or WorkerMetricStats item that cannot be read, naming the item and the
/// attribute.
///
/// ```
/// use kcl_lease::{AttributeValue as V, Item, LockItem};
/// let item = Item::from([("key".to_string(), V::s("Leader"))]);
/// assert_eq!(LockItem::decode(&item).unwrap_err().to_string(), "item Leader: attribute ownerName: missing");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemError {
    /// The item's key (`key` or `wid`), when readable.
    pub key: Option<String>,
    /// The attribute at fault.
    pub attribute: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.as_deref().unwrap_or("(no key)");
        write!(
            f,
            "item {key}: attribute {}: {}",
            self.attribute, self.problem
        )
    }
}

impl std::error::Error for ItemError {}

/// Typed reads of one coordinator item.
struct Fields<'a> {
    item: &'a Item,
    key: Option<String>,
}

impl<'a> Fields<'a> {
    fn new(item: &'a Item, key_attribute: &str) -> Self {
        let key = item
            .get(key_attribute)
            .and_then(AttributeValue::as_s)
            .map(str::to_owned);
        Fields { item, key }
    }

    fn error(&self, attribute: &str, problem: Problem) -> ItemError {
        ItemError {
            key: self.key.clone(),
            attribute: attribute.to_owned(),
            problem,
        }
    }

    fn get(&self, name: &str) -> Option<&'a AttributeValue> {
        self.item.get(name)
    }

    fn s(&self, name: &str) -> Result<Option<&'a str>, ItemError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(text)) => Ok(Some(text)),
            Some(other) => Err(self.error(
                name,
                Problem::WrongType {
                    expected: "S",
                    found: other.type_name(),
                },
            )),
        }
    }

    fn required_s(&self, name: &str) -> Result<&'a str, ItemError> {
        self.s(name)?
            .ok_or_else(|| self.error(name, Problem::Missing))
    }

    fn n<T: std::str::FromStr>(
        &self,
        name: &str,
        expected: &'static str,
    ) -> Result<Option<T>, ItemError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(text)) => text.parse().map(Some).map_err(|_| {
                self.error(
                    name,
                    Problem::Invalid {
                        value: text.clone(),
                        expected,
                    },
                )
            }),
            Some(other) => Err(self.error(
                name,
                Problem::WrongType {
                    expected: "N",
                    found: other.type_name(),
                },
            )),
        }
    }

    /// Every attribute not in `known`.
    fn other(&self, known: &[&str]) -> Item {
        self.item
            .iter()
            .filter(|(name, _)| !known.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}
