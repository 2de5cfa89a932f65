//! The `Migration3.0` item (`coordinator/migration/MigrationState.java`): the table's client
//! version, and what a worker must run for each (§2.7).

use std::fmt;
use std::str::FromStr;

use super::{COORDINATOR_KEY, Fields, ItemError};
use crate::item::Problem;
use crate::ops::{Condition, Update, Write};
use crate::value::{AttributeValue, Item};

/// The key of the migration state item.
pub const MIGRATION_KEY: &str = "Migration3.0";

const CLIENT_VERSION: &str = "cv";
const MODIFIED_BY: &str = "mb";
const MODIFIED_TIMESTAMP: &str = "mts";
const HISTORY: &str = "h";
/// Java's `CLIENT_VERSION_INIT`: the state a worker starts in. It is never `cv`, but a new
/// application's item holds it as its first history entry.
pub const CLIENT_VERSION_INIT: &str = "CLIENT_VERSION_INIT";
/// Java keeps the last ten states.
const MAX_HISTORY: usize = 10;

/// A client version stored in `cv` (Java's `ClientVersion`, without the transient
/// `CLIENT_VERSION_INIT`, which is never stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientVersion {
    /// `CLIENT_VERSION_2X`: rolled back to 2.x; 2.x algorithms, no worker metrics.
    V2x,
    /// `CLIENT_VERSION_UPGRADE_FROM_2X`: 2.x algorithms while the fleet is upgraded; Java emits
    /// worker metrics and its leader flips the table to 3.x once every lease owner does.
    UpgradeFrom2x,
    /// `CLIENT_VERSION_3X_WITH_ROLLBACK`: 3.x algorithms, rollback still possible.
    V3xWithRollback,
    /// `CLIENT_VERSION_3X`: 3.x algorithms for good (what a new 3.x application writes).
    V3x,
}

/// How a worker must take part, by client version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkerMode {
    /// The 2.x lease taker: scan, take expired leases, steal to balance; no WorkerMetricStats
    /// row (a native worker without one keeps an upgrading fleet from flipping to 3.x).
    Taker2x,
    /// A 3.x peer: publish WorkerMetricStats, discover assigned leases by the owner index, honour
    /// graceful handoff, contend for the `Leader` lock (or stay a follower). Never take leases.
    Peer3x,
}

impl ClientVersion {
    /// Every stored version.
    pub const ALL: [ClientVersion; 4] = [
        ClientVersion::V2x,
        ClientVersion::UpgradeFrom2x,
        ClientVersion::V3xWithRollback,
        ClientVersion::V3x,
    ];

    /// The name stored in `cv`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientVersion::V2x => "CLIENT_VERSION_2X",
            ClientVersion::UpgradeFrom2x => "CLIENT_VERSION_UPGRADE_FROM_2X",
            ClientVersion::V3xWithRollback => "CLIENT_VERSION_3X_WITH_ROLLBACK",
            ClientVersion::V3x => "CLIENT_VERSION_3X",
        }
    }

    /// The mode a worker must run in on a table in this version (§2.7): the two 2.x states
    /// run the 2.x taker, the two 3.x states the 3.x protocol.
    ///
    /// ```
    /// use kcl_lease::{ClientVersion, WorkerMode};
    /// assert_eq!(ClientVersion::UpgradeFrom2x.mode(), WorkerMode::Taker2x);
    /// assert_eq!(ClientVersion::V3xWithRollback.mode(), WorkerMode::Peer3x);
    /// ```
    pub fn mode(self) -> WorkerMode {
        match self {
            ClientVersion::V2x | ClientVersion::UpgradeFrom2x => WorkerMode::Taker2x,
            ClientVersion::V3xWithRollback | ClientVersion::V3x => WorkerMode::Peer3x,
        }
    }
}

impl fmt::Display for ClientVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        ClientVersion::ALL
            .into_iter()
            .find(|version| version.as_str() == text)
            .ok_or_else(|| format!("{text:?} is not a stored client version"))
    }
}

/// The mode for a table whose `Migration3.0` item holds `version` (`None`: no item). Without an
/// item the table is (or becomes, when this worker creates the application) a 3.x table: Java
/// 3.x in its default configuration writes `CLIENT_VERSION_3X` there.
pub fn mode_for(version: Option<ClientVersion>) -> WorkerMode {
    version.map_or(WorkerMode::Peer3x, ClientVersion::mode)
}

/// One earlier state in `h`: `cv`, `mb`, `mts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// `cv`: the version then; `None` for [`CLIENT_VERSION_INIT`], which Java 3.1.3 writes as
    /// the first entry when it creates the item of a new application.
    pub client_version: Option<ClientVersion>,
    /// `mb`: who wrote it.
    pub modified_by: String,
    /// `mts`: when, epoch milliseconds.
    pub modified_timestamp_ms: u64,
}

/// The `Migration3.0` item: `cv`, `mb` (modified by), `mts` (epoch milliseconds), `h` (a list of
/// maps: the last ten earlier states, omitted when empty).
///
/// ```
/// use kcl_lease::{ClientVersion, MigrationState};
/// let state = MigrationState::new(ClientVersion::V3x, "worker-a", 1_700_000_000_000);
/// let item = state.encode();
/// assert_eq!(item["key"].as_s(), Some("Migration3.0"));
/// assert_eq!(item["cv"].as_s(), Some("CLIENT_VERSION_3X"));
/// assert!(!item.contains_key("h"));
/// assert_eq!(MigrationState::decode(&item).unwrap(), state);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationState {
    /// `cv`.
    pub client_version: ClientVersion,
    /// `mb`.
    pub modified_by: String,
    /// `mts`, epoch milliseconds.
    pub modified_timestamp_ms: u64,
    /// `h`, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Any other attribute, preserved.
    pub other: Item,
}

impl MigrationState {
    /// A state without history.
    pub fn new(
        client_version: ClientVersion,
        modified_by: impl Into<String>,
        modified_timestamp_ms: u64,
    ) -> Self {
        MigrationState {
            client_version,
            modified_by: modified_by.into(),
            modified_timestamp_ms,
            history: Vec::new(),
            other: Item::new(),
        }
    }

    /// The item of a new application, exactly as Java 3.1.3 creates it: a worker starts in
    /// `CLIENT_VERSION_INIT` and moves to `version`, so `h` holds one entry, the `INIT` state by
    /// the same worker (Java's `new MigrationState(key, workerId).update(version, workerId)`).
    ///
    /// ```
    /// use kcl_lease::{ClientVersion, MigrationState};
    /// let state = MigrationState::created(ClientVersion::V3x, "worker-a", 1_700_000_000_000);
    /// assert_eq!(state.history.len(), 1);
    /// assert_eq!(state.history[0].client_version, None);
    /// let item = state.encode();
    /// let kcl_lease::AttributeValue::L(entries) = &item["h"] else { panic!("h is a list") };
    /// let kcl_lease::AttributeValue::M(first) = &entries[0] else { panic!("of maps") };
    /// assert_eq!(first["cv"].as_s(), Some("CLIENT_VERSION_INIT"));
    /// assert_eq!(MigrationState::decode(&item).unwrap(), state);
    /// ```
    pub fn created(
        client_version: ClientVersion,
        modified_by: impl Into<String>,
        modified_timestamp_ms: u64,
    ) -> Self {
        let modified_by = modified_by.into();
        MigrationState {
            history: vec![HistoryEntry {
                client_version: None,
                modified_by: modified_by.clone(),
                modified_timestamp_ms,
            }],
            ..MigrationState::new(client_version, modified_by, modified_timestamp_ms)
        }
    }

    /// Moves to `version`: the current state goes into the history (which keeps the last ten).
    pub fn update(&mut self, version: ClientVersion, modified_by: &str, now_ms: u64) {
        self.history.push(HistoryEntry {
            client_version: Some(self.client_version),
            modified_by: std::mem::replace(&mut self.modified_by, modified_by.to_owned()),
            modified_timestamp_ms: self.modified_timestamp_ms,
        });
        let excess = self.history.len().saturating_sub(MAX_HISTORY);
        self.history.drain(..excess);
        self.client_version = version;
        self.modified_timestamp_ms = now_ms;
    }

    /// Reads the item.
    pub fn decode(item: &Item) -> Result<MigrationState, ItemError> {
        let fields = Fields::new(item, COORDINATOR_KEY);
        let history = match fields.get(HISTORY) {
            None => Vec::new(),
            Some(AttributeValue::L(entries)) => entries
                .iter()
                .map(|entry| match entry {
                    AttributeValue::M(map) => history_entry(&fields, map),
                    other => Err(fields.error(
                        HISTORY,
                        Problem::WrongType {
                            expected: "L of M",
                            found: other.type_name(),
                        },
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(fields.error(
                    HISTORY,
                    Problem::WrongType {
                        expected: "L",
                        found: other.type_name(),
                    },
                ));
            }
        };
        let (client_version, modified_by, modified_timestamp_ms) = state_fields(&fields)?;
        let client_version = client_version.ok_or_else(|| {
            fields.error(
                CLIENT_VERSION,
                Problem::Invalid {
                    value: CLIENT_VERSION_INIT.to_owned(),
                    expected: "a stored client version",
                },
            )
        })?;
        Ok(MigrationState {
            client_version,
            modified_by,
            modified_timestamp_ms,
            history,
            other: fields.other(&[
                COORDINATOR_KEY,
                CLIENT_VERSION,
                MODIFIED_BY,
                MODIFIED_TIMESTAMP,
                HISTORY,
            ]),
        })
    }

    /// Writes the item as Java does (`MigrationState.serialize`, with the key).
    pub fn encode(&self) -> Item {
        let mut item = self.other.clone();
        item.insert(COORDINATOR_KEY.into(), AttributeValue::s(MIGRATION_KEY));
        item.extend(state_item(
            Some(self.client_version),
            &self.modified_by,
            self.modified_timestamp_ms,
        ));
        if !self.history.is_empty() {
            let entries = self
                .history
                .iter()
                .map(|entry| {
                    AttributeValue::M(state_item(
                        entry.client_version,
                        &entry.modified_by,
                        entry.modified_timestamp_ms,
                    ))
                })
                .collect();
            item.insert(HISTORY.into(), AttributeValue::L(entries));
        }
        item
    }
}

fn state_item(version: Option<ClientVersion>, modified_by: &str, timestamp_ms: u64) -> Item {
    Item::from([
        (
            CLIENT_VERSION.to_owned(),
            AttributeValue::s(version.map_or(CLIENT_VERSION_INIT, ClientVersion::as_str)),
        ),
        (MODIFIED_BY.to_owned(), AttributeValue::s(modified_by)),
        (
            MODIFIED_TIMESTAMP.to_owned(),
            AttributeValue::n(timestamp_ms),
        ),
    ])
}

/// `cv` (`None`: [`CLIENT_VERSION_INIT`]), `mb`, `mts`.
fn state_fields(fields: &Fields<'_>) -> Result<(Option<ClientVersion>, String, u64), ItemError> {
    let version = fields.required_s(CLIENT_VERSION)?;
    let client_version = (version != CLIENT_VERSION_INIT)
        .then(|| version.parse())
        .transpose()
        .map_err(|_: String| {
            fields.error(
                CLIENT_VERSION,
                Problem::Invalid {
                    value: version.to_owned(),
                    expected: "a stored client version",
                },
            )
        })?;
    let modified_by = fields.required_s(MODIFIED_BY)?.to_owned();
    let timestamp = fields
        .n(MODIFIED_TIMESTAMP, "epoch milliseconds")?
        .ok_or_else(|| fields.error(MODIFIED_TIMESTAMP, Problem::Missing))?;
    Ok((client_version, modified_by, timestamp))
}

fn history_entry(outer: &Fields<'_>, map: &Item) -> Result<HistoryEntry, ItemError> {
    let inner = Fields {
        item: map,
        key: outer.key.clone(),
    };
    let (client_version, modified_by, modified_timestamp_ms) =
        state_fields(&inner).map_err(|mut error| {
            error.attribute = format!("{HISTORY}.{}", error.attribute);
            error
        })?;
    Ok(HistoryEntry {
        client_version,
        modified_by,
        modified_timestamp_ms,
    })
}

/// Creates the migration state of a new application, as Java does: `PutItem` conditioned on no
/// item with the key (`attribute_not_exists(key)`).
pub fn create_migration_state(state: &MigrationState) -> Write {
    Write {
        key: MIGRATION_KEY.into(),
        condition: Condition::default().absent(COORDINATOR_KEY),
        update: Update::PutItem(state.encode()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_modes() {
        for version in ClientVersion::ALL {
            assert_eq!(version.as_str().parse::<ClientVersion>(), Ok(version));
            assert_eq!(version.to_string(), version.as_str());
        }
        assert!("CLIENT_VERSION_INIT".parse::<ClientVersion>().is_err());
        assert_eq!(ClientVersion::V2x.mode(), WorkerMode::Taker2x);
        assert_eq!(ClientVersion::V3x.mode(), WorkerMode::Peer3x);
        assert_eq!(mode_for(None), WorkerMode::Peer3x);
        assert_eq!(mode_for(Some(ClientVersion::V2x)), WorkerMode::Taker2x);
    }

    #[test]
    fn history_keeps_the_last_ten() {
        let mut state = MigrationState::new(ClientVersion::UpgradeFrom2x, "w0", 0);
        for i in 1..=12 {
            let version = if i % 2 == 0 {
                ClientVersion::UpgradeFrom2x
            } else {
                ClientVersion::V3xWithRollback
            };
            state.update(version, &format!("w{i}"), i);
        }
        assert_eq!(state.history.len(), 10);
        assert_eq!(state.history[0].modified_by, "w2");
        assert_eq!(state.history[9].modified_timestamp_ms, 11);
        let item = state.encode();
        let AttributeValue::L(entries) = &item["h"] else {
            panic!("h is a list")
        };
        assert_eq!(entries.len(), 10);
        assert_eq!(MigrationState::decode(&item).unwrap(), state);
    }

    #[test]
    fn init_is_read_in_the_history_only() {
        // Java 3.1.3's item for a new application (captured from the real daemon's table).
        let state = MigrationState::created(ClientVersion::V3x, "w", 5);
        let item = state.encode();
        assert_eq!(MigrationState::decode(&item).unwrap(), state);
        assert_eq!(state.history[0].client_version, None);
        let mut item = item;
        item.insert("cv".into(), AttributeValue::s(CLIENT_VERSION_INIT));
        assert_eq!(
            MigrationState::decode(&item).unwrap_err().to_string(),
            "item Migration3.0: attribute cv: \"CLIENT_VERSION_INIT\" is not a stored client version"
        );
    }

    #[test]
    fn bad_items_name_the_attribute() {
        let mut item = MigrationState::new(ClientVersion::V3x, "w", 1).encode();
        item.insert("cv".into(), AttributeValue::s("CLIENT_VERSION_4X"));
        assert_eq!(
            MigrationState::decode(&item).unwrap_err().to_string(),
            "item Migration3.0: attribute cv: \"CLIENT_VERSION_4X\" is not a stored client version"
        );
        let mut item = MigrationState::new(ClientVersion::V3x, "w", 1).encode();
        item.insert(
            "h".into(),
            AttributeValue::L(vec![AttributeValue::M(Item::from([(
                "cv".to_string(),
                AttributeValue::s("CLIENT_VERSION_2X"),
            )]))]),
        );
        assert_eq!(
            MigrationState::decode(&item).unwrap_err().to_string(),
            "item Migration3.0: attribute h.mb: missing"
        );
        item.insert("h".into(), AttributeValue::L(vec![AttributeValue::s("x")]));
        assert!(MigrationState::decode(&item).is_err());
        item.insert("h".into(), AttributeValue::s("x"));
        assert!(MigrationState::decode(&item).is_err());
        let write = create_migration_state(&MigrationState::new(ClientVersion::V3x, "w", 1));
        assert_eq!(write.key, "Migration3.0");
    }
}
