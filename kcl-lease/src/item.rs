//! The lease item codec (C1): a lease table row to a [`Lease`] and back, reading every attribute
//! the Java KCL 3.1.3 writes and writing only what it writes.

use std::collections::BTreeSet;
use std::fmt;

use kcl_protocol::ExtendedSequenceNumber;

use crate::attr;
use crate::value::{AttributeValue, Item};

/// One lease, as the Java KCL 3.1.3 stores it (`DynamoDBLeaseSerializer`), attribute by
/// attribute.
///
/// Attributes this type does not know (3.5's `entityType = LEASE`, a lone hash key, a
/// `pendingCheckpointState` that is not binary) are kept in [`Lease::other`] and written back
/// unchanged.
///
/// ```
/// use kcl_lease::{Decoded, Lease, decode, encode};
/// use kcl_protocol::ExtendedSequenceNumber as E;
/// let mut lease = Lease::new("shardId-000000000001", E::trim_horizon());
/// lease.lease_owner = Some("worker-a".into());
/// lease.lease_counter = 7;
/// let item = encode(&lease);
/// assert_eq!(item["leaseCounter"].as_n(), Some("7"));
/// assert!(!item.contains_key("checkpointOwner")); // absent optionals are not written
/// assert_eq!(decode(&item).unwrap(), Decoded::Lease(lease));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    /// `leaseKey`: the shard id (single stream) or `account:stream:epoch:shardId`.
    pub lease_key: String,
    /// `leaseOwner`: the owning worker; `None` when unassigned.
    pub lease_owner: Option<String>,
    /// `leaseCounter`: the fencing counter.
    pub lease_counter: u64,
    /// `checkpoint` + `checkpointSubSequenceNumber`.
    pub checkpoint: ExtendedSequenceNumber,
    /// `pendingCheckpoint` + `pendingCheckpointSubSequenceNumber` (two-phase checkpoints; the
    /// MultiLangDaemon never writes them).
    pub pending_checkpoint: Option<ExtendedSequenceNumber>,
    /// `pendingCheckpointState` (binary).
    pub pending_checkpoint_state: Option<Vec<u8>>,
    /// `ownerSwitchesSinceCheckpoint`.
    pub owner_switches_since_checkpoint: u64,
    /// `parentShardId` (a string set, singular name).
    pub parent_shard_ids: BTreeSet<String>,
    /// `childShardIds`.
    pub child_shard_ids: BTreeSet<String>,
    /// `startingHashKey` and `endingHashKey`, inclusive; read only when both are present, as
    /// Java does (a lone one stays in [`Lease::other`]).
    pub hash_key_range: Option<(u128, u128)>,
    /// `throughputKBps`.
    pub throughput_kbps: Option<f64>,
    /// `checkpointOwner`: the previous owner during a graceful handoff.
    pub checkpoint_owner: Option<String>,
    /// `streamName` (multi-stream mode): the serialized stream identifier.
    pub stream_name: Option<String>,
    /// `shardId` (multi-stream mode).
    pub shard_id: Option<String>,
    /// Every other attribute of the item, preserved.
    pub other: Item,
}

impl Lease {
    /// A lease with a key and a checkpoint: unowned, counter 0, nothing else (what shard sync
    /// creates, before parents and hash range are filled in).
    pub fn new(lease_key: impl Into<String>, checkpoint: ExtendedSequenceNumber) -> Self {
        Lease {
            lease_key: lease_key.into(),
            lease_owner: None,
            lease_counter: 0,
            checkpoint,
            pending_checkpoint: None,
            pending_checkpoint_state: None,
            owner_switches_since_checkpoint: 0,
            parent_shard_ids: BTreeSet::new(),
            child_shard_ids: BTreeSet::new(),
            hash_key_range: None,
            throughput_kbps: None,
            checkpoint_owner: None,
            stream_name: None,
            shard_id: None,
            other: Item::new(),
        }
    }

    /// Java's `actualOwner`: the checkpoint owner while a handoff is pending, else the lease
    /// owner.
    ///
    /// ```
    /// use kcl_lease::Lease;
    /// use kcl_protocol::ExtendedSequenceNumber as E;
    /// let mut lease = Lease::new("shardId-0", E::trim_horizon());
    /// lease.lease_owner = Some("new".into());
    /// lease.checkpoint_owner = Some("old".into());
    /// assert_eq!(lease.actual_owner(), Some("old"));
    /// ```
    pub fn actual_owner(&self) -> Option<&str> {
        self.checkpoint_owner
            .as_deref()
            .or(self.lease_owner.as_deref())
    }
}

/// What a lease table row is.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // decoded once per row and moved out at once
pub enum Decoded {
    /// A lease (`entityType` absent or `LEASE`).
    Lease(Lease),
    /// Another kind of row of a KCL 3.5 single table (leader lock, worker metrics, migration
    /// state, stream): skip it.
    NotALease {
        /// The row's `entityType`.
        entity_type: String,
    },
}

/// A lease row that cannot be read, naming the lease and the attribute.
///
/// ```
/// use kcl_lease::{AttributeValue as V, Item, decode};
/// let item = Item::from([
///     ("leaseKey".to_string(), V::s("shardId-7")),
///     ("leaseCounter".to_string(), V::s("three")),
///     ("checkpoint".to_string(), V::s("LATEST")),
/// ]);
/// let error = decode(&item).unwrap_err();
/// assert_eq!(error.to_string(), "lease shardId-7: attribute leaseCounter: expected N, found S");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError {
    /// The row's `leaseKey`, when it has a readable one.
    pub lease_key: Option<String>,
    /// The attribute at fault.
    pub attribute: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with an attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A required attribute is absent.
    Missing,
    /// A required string is empty.
    Empty,
    /// The attribute has another DynamoDB type.
    WrongType {
        /// The type Java writes.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// The value does not parse.
    Invalid {
        /// The value as found.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.lease_key {
            Some(key) => write!(f, "lease {key}: ")?,
            None => write!(f, "lease row without a readable leaseKey: ")?,
        }
        write!(f, "attribute {}: {}", self.attribute, self.problem)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => write!(f, "missing"),
            Problem::Empty => write!(f, "empty"),
            Problem::WrongType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            Problem::Invalid { value, expected } => write!(f, "{value:?} is not {expected}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Reads a lease table row.
///
/// A present `entityType` other than `LEASE` makes the row [`Decoded::NotALease`]; a missing one
/// means a lease (KCL 3.1.3 writes none). Required: `leaseKey`, `leaseCounter` (an integer) and
/// `checkpoint`; `checkpointSubSequenceNumber` and `ownerSwitchesSinceCheckpoint` read as 0 when
/// absent. An empty optional string reads as absent (Java never writes one). A known attribute
/// of the wrong type is an error, except `pendingCheckpointState`, which KCL 3.1.3's
/// `createLeaseIfNotExists` writes as a number by mistake: that one is kept in
/// [`Lease::other`], unread, as Java reads it as absent.
pub fn decode(item: &Item) -> Result<Decoded, CodecError> {
    if let Some(entity) = item.get(attr::ENTITY_TYPE) {
        match entity.as_s() {
            Some(attr::ENTITY_TYPE_LEASE) => {}
            Some(other) => {
                return Ok(Decoded::NotALease {
                    entity_type: other.to_owned(),
                });
            }
            None => {
                let key = item.get(attr::LEASE_KEY).and_then(AttributeValue::as_s);
                return Err(CodecError {
                    lease_key: key.map(str::to_owned),
                    attribute: attr::ENTITY_TYPE.into(),
                    problem: wrong_type("S", entity),
                });
            }
        }
    }
    let mut reader = Reader {
        item,
        key: None,
        used: BTreeSet::new(),
    };
    let lease_key = reader.required_s(attr::LEASE_KEY)?;
    reader.key = Some(lease_key.clone());
    let lease_counter = reader
        .u64(attr::LEASE_COUNTER)?
        .ok_or_else(|| reader.error(attr::LEASE_COUNTER, Problem::Missing))?;
    let checkpoint = ExtendedSequenceNumber::new(
        reader.required_s(attr::CHECKPOINT)?,
        reader
            .i64(attr::CHECKPOINT_SUB_SEQUENCE_NUMBER)?
            .unwrap_or(0),
    );
    let pending_checkpoint = match reader.s(attr::PENDING_CHECKPOINT)? {
        Some(sequence) => Some(ExtendedSequenceNumber::new(
            sequence,
            reader
                .i64(attr::PENDING_CHECKPOINT_SUB_SEQUENCE_NUMBER)?
                .unwrap_or(0),
        )),
        None => None,
    };
    let pending_checkpoint_state = match item.get(attr::PENDING_CHECKPOINT_STATE) {
        Some(AttributeValue::B(bytes)) => {
            reader.used.insert(attr::PENDING_CHECKPOINT_STATE);
            Some(bytes.clone())
        }
        _ => None,
    };
    let hash_key_range = match (
        item.contains_key(attr::STARTING_HASH_KEY),
        item.contains_key(attr::ENDING_HASH_KEY),
    ) {
        (true, true) => match (
            reader.hash_key(attr::STARTING_HASH_KEY)?,
            reader.hash_key(attr::ENDING_HASH_KEY)?,
        ) {
            (Some(start), Some(end)) => Some((start, end)),
            _ => None,
        },
        _ => None,
    };
    let lease = Lease {
        lease_owner: reader.s(attr::LEASE_OWNER)?,
        lease_counter,
        checkpoint,
        pending_checkpoint,
        pending_checkpoint_state,
        owner_switches_since_checkpoint: reader
            .u64(attr::OWNER_SWITCHES_SINCE_CHECKPOINT)?
            .unwrap_or(0),
        parent_shard_ids: reader.ss(attr::PARENT_SHARD_ID)?,
        child_shard_ids: reader.ss(attr::CHILD_SHARD_IDS)?,
        hash_key_range,
        throughput_kbps: reader.f64(attr::THROUGHPUT_KBPS)?,
        checkpoint_owner: reader.s(attr::CHECKPOINT_OWNER)?,
        stream_name: reader.s(attr::STREAM_NAME)?,
        shard_id: reader.s(attr::SHARD_ID)?,
        other: Item::new(),
        lease_key,
    };
    let other = item
        .iter()
        .filter(|(name, _)| !reader.used.contains(name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    Ok(Decoded::Lease(Lease { other, ..lease }))
}

fn wrong_type(expected: &'static str, found: &AttributeValue) -> Problem {
    Problem::WrongType {
        expected,
        found: found.type_name(),
    }
}

/// Reads typed attributes of one row, remembering which ones it read.
struct Reader<'a> {
    item: &'a Item,
    key: Option<String>,
    used: BTreeSet<&'static str>,
}

impl Reader<'_> {
    fn error(&self, attribute: &str, problem: Problem) -> CodecError {
        CodecError {
            lease_key: self.key.clone(),
            attribute: attribute.to_owned(),
            problem,
        }
    }

    fn get(&mut self, name: &'static str) -> Option<&AttributeValue> {
        let value = self.item.get(name)?;
        self.used.insert(name);
        Some(value)
    }

    /// An optional string; empty reads as absent.
    fn s(&mut self, name: &'static str) -> Result<Option<String>, CodecError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(text)) if text.is_empty() => Ok(None),
            Some(AttributeValue::S(text)) => Ok(Some(text.clone())),
            Some(other) => {
                let problem = wrong_type("S", other);
                Err(self.error(name, problem))
            }
        }
    }

    fn required_s(&mut self, name: &'static str) -> Result<String, CodecError> {
        match self.item.get(name) {
            Some(AttributeValue::S(text)) if text.is_empty() => {
                Err(self.error(name, Problem::Empty))
            }
            None => Err(self.error(name, Problem::Missing)),
            Some(_) => Ok(self.s(name)?.expect("present and not empty")),
        }
    }

    fn n(&mut self, name: &'static str) -> Result<Option<String>, CodecError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(text)) => Ok(Some(text.clone())),
            Some(other) => {
                let problem = wrong_type("N", other);
                Err(self.error(name, problem))
            }
        }
    }

    fn parsed<T: std::str::FromStr>(
        &mut self,
        name: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, CodecError> {
        match self.n(name)? {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                self.error(
                    name,
                    Problem::Invalid {
                        value: text,
                        expected,
                    },
                )
            }),
        }
    }

    fn u64(&mut self, name: &'static str) -> Result<Option<u64>, CodecError> {
        self.parsed(name, "a non-negative integer")
    }

    fn i64(&mut self, name: &'static str) -> Result<Option<i64>, CodecError> {
        self.parsed(name, "an integer")
    }

    fn f64(&mut self, name: &'static str) -> Result<Option<f64>, CodecError> {
        self.parsed(name, "a number")
    }

    fn ss(&mut self, name: &'static str) -> Result<BTreeSet<String>, CodecError> {
        match self.get(name) {
            None => Ok(BTreeSet::new()),
            Some(AttributeValue::Ss(texts)) => Ok(texts.iter().cloned().collect()),
            Some(other) => {
                let problem = wrong_type("SS", other);
                Err(self.error(name, problem))
            }
        }
    }

    fn hash_key(&mut self, name: &'static str) -> Result<Option<u128>, CodecError> {
        let Some(text) = self.s(name)? else {
            return Ok(None);
        };
        let valid = text.bytes().all(|b| b.is_ascii_digit());
        match text.parse::<u128>() {
            Ok(value) if valid => Ok(Some(value)),
            _ => Err(self.error(
                name,
                Problem::Invalid {
                    value: text,
                    expected: "a decimal hash key below 2^128",
                },
            )),
        }
    }
}

/// Writes a lease as the Java KCL 3.1.3 would (`toDynamoRecord`): `leaseKey`, `leaseCounter`,
/// `checkpoint`, `checkpointSubSequenceNumber` and `ownerSwitchesSinceCheckpoint` always;
/// optional attributes only when present; never an empty string or an empty set (empty
/// optional strings and empty set members are left out); sets sorted; `throughputKBps` as the
/// plain decimal DynamoDB returns (`2.5`, `0`), omitted when not finite. [`Lease::other`] is
/// written too, under the known attributes.
///
/// One deliberate difference: `pendingCheckpointState` is written as the binary it is (Java
/// 3.1.3's create path writes the checkpoint's sub-sequence number there, a bug no
/// MultiLangDaemon application can reach: the protocol has no prepared checkpoints).
pub fn encode(lease: &Lease) -> Item {
    let mut item = lease.other.clone();
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_owned(), value);
    };
    put(attr::LEASE_KEY, AttributeValue::s(&lease.lease_key));
    put(attr::LEASE_COUNTER, AttributeValue::n(lease.lease_counter));
    if let Some(owner) = non_empty(&lease.lease_owner) {
        put(attr::LEASE_OWNER, AttributeValue::s(owner));
    }
    put(
        attr::OWNER_SWITCHES_SINCE_CHECKPOINT,
        AttributeValue::n(lease.owner_switches_since_checkpoint),
    );
    put(
        attr::CHECKPOINT,
        AttributeValue::s(lease.checkpoint.sequence_number()),
    );
    put(
        attr::CHECKPOINT_SUB_SEQUENCE_NUMBER,
        AttributeValue::n(lease.checkpoint.sub_sequence_number()),
    );
    if let Some(parents) = string_set(&lease.parent_shard_ids) {
        put(attr::PARENT_SHARD_ID, parents);
    }
    if let Some(children) = string_set(&lease.child_shard_ids) {
        put(attr::CHILD_SHARD_IDS, children);
    }
    if let Some(pending) = &lease.pending_checkpoint {
        if !pending.sequence_number().is_empty() {
            put(
                attr::PENDING_CHECKPOINT,
                AttributeValue::s(pending.sequence_number()),
            );
            put(
                attr::PENDING_CHECKPOINT_SUB_SEQUENCE_NUMBER,
                AttributeValue::n(pending.sub_sequence_number()),
            );
        }
    }
    if let Some(state) = &lease.pending_checkpoint_state {
        put(
            attr::PENDING_CHECKPOINT_STATE,
            AttributeValue::B(state.clone()),
        );
    }
    if let Some((start, end)) = lease.hash_key_range {
        put(
            attr::STARTING_HASH_KEY,
            AttributeValue::s(start.to_string()),
        );
        put(attr::ENDING_HASH_KEY, AttributeValue::s(end.to_string()));
    }
    if let Some(throughput) = lease.throughput_kbps.and_then(decimal) {
        put(attr::THROUGHPUT_KBPS, AttributeValue::N(throughput));
    }
    for (name, value) in [
        (attr::CHECKPOINT_OWNER, &lease.checkpoint_owner),
        (attr::STREAM_NAME, &lease.stream_name),
        (attr::SHARD_ID, &lease.shard_id),
    ] {
        if let Some(text) = non_empty(value) {
            put(name, AttributeValue::s(text));
        }
    }
    item
}

fn non_empty(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|t| !t.is_empty())
}

/// A string set without empty members, or `None` when nothing is left.
pub(crate) fn string_set(texts: &BTreeSet<String>) -> Option<AttributeValue> {
    let members: Vec<String> = texts.iter().filter(|t| !t.is_empty()).cloned().collect();
    (!members.is_empty()).then_some(AttributeValue::Ss(members))
}

/// A finite double as the plain decimal DynamoDB stores and returns (no exponent, no trailing
/// zeros, `0` for zero); `None` for NaN and infinities, which DynamoDB refuses.
pub(crate) fn decimal(value: f64) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    if value == 0.0 {
        return Some("0".into()); // also -0.0
    }
    Some(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttributeValue as V;

    fn minimal() -> Item {
        Item::from([
            ("leaseKey".to_string(), V::s("shardId-000000000003")),
            ("leaseCounter".to_string(), V::n(4)),
            ("checkpoint".to_string(), V::s("TRIM_HORIZON")),
        ])
    }

    fn error_of(item: &Item) -> String {
        decode(item).unwrap_err().to_string()
    }

    #[test]
    fn a_minimal_row_reads_with_defaults() {
        let Decoded::Lease(lease) = decode(&minimal()).unwrap() else {
            panic!("not a lease")
        };
        assert_eq!(lease.lease_counter, 4);
        assert_eq!(lease.checkpoint, ExtendedSequenceNumber::trim_horizon());
        assert_eq!(lease.owner_switches_since_checkpoint, 0);
        assert!(lease.other.is_empty());
        // Java always writes the sub-sequence number and the owner switches.
        let written = encode(&lease);
        assert_eq!(written["checkpointSubSequenceNumber"], V::n(0));
        assert_eq!(written["ownerSwitchesSinceCheckpoint"], V::n(0));
    }

    #[test]
    fn errors_name_the_lease_and_the_attribute() {
        let mut item = minimal();
        item.remove("leaseCounter");
        assert_eq!(
            error_of(&item),
            "lease shardId-000000000003: attribute leaseCounter: missing"
        );
        let mut item = minimal();
        item.insert("leaseCounter".into(), V::N("1.5".into()));
        assert_eq!(
            error_of(&item),
            "lease shardId-000000000003: attribute leaseCounter: \"1.5\" is not a non-negative integer"
        );
        let mut item = minimal();
        item.insert("parentShardId".into(), V::s("shardId-0"));
        assert_eq!(
            error_of(&item),
            "lease shardId-000000000003: attribute parentShardId: expected SS, found S"
        );
        let mut item = minimal();
        item.insert("leaseKey".into(), V::s(""));
        assert_eq!(
            error_of(&item),
            "lease row without a readable leaseKey: attribute leaseKey: empty"
        );
        let mut item = minimal();
        item.remove("checkpoint");
        assert_eq!(
            error_of(&item),
            "lease shardId-000000000003: attribute checkpoint: missing"
        );
        let mut item = minimal();
        item.insert("startingHashKey".into(), V::s("-1"));
        item.insert("endingHashKey".into(), V::s("10"));
        assert_eq!(
            error_of(&item),
            "lease shardId-000000000003: attribute startingHashKey: \"-1\" is not a decimal hash key below 2^128"
        );
        let mut item = minimal();
        item.insert("entityType".into(), V::n(1));
        assert_eq!(
            error_of(&item),
            "lease shardId-000000000003: attribute entityType: expected S, found N"
        );
    }

    #[test]
    fn entity_types() {
        let mut item = minimal();
        item.insert("entityType".into(), V::s("WORKER_METRIC_STATS"));
        assert_eq!(
            decode(&item).unwrap(),
            Decoded::NotALease {
                entity_type: "WORKER_METRIC_STATS".into()
            }
        );
        item.insert("entityType".into(), V::s("LEASE"));
        let Decoded::Lease(lease) = decode(&item).unwrap() else {
            panic!("a LEASE row is a lease")
        };
        // Kept and written back.
        assert_eq!(encode(&lease)["entityType"], V::s("LEASE"));
    }

    #[test]
    fn java_quirks_are_tolerated() {
        let mut item = minimal();
        // 3.1.3's create path writes a number into pendingCheckpointState: kept, not read.
        item.insert("pendingCheckpointState".into(), V::n(0));
        // A lone hash key is not a range (Java needs both).
        item.insert("startingHashKey".into(), V::s("0"));
        // Empty optional strings read as absent.
        item.insert("leaseOwner".into(), V::s(""));
        let Decoded::Lease(lease) = decode(&item).unwrap() else {
            panic!()
        };
        assert_eq!(lease.pending_checkpoint_state, None);
        assert_eq!(lease.hash_key_range, None);
        assert_eq!(lease.lease_owner, None);
        assert_eq!(
            lease.other.keys().collect::<Vec<_>>(),
            ["pendingCheckpointState", "startingHashKey"]
        );
        let written = encode(&lease);
        assert_eq!(written["pendingCheckpointState"], V::n(0));
        assert!(!written.contains_key("leaseOwner"));
    }

    #[test]
    fn nothing_empty_is_written() {
        let mut lease = Lease::new("k", ExtendedSequenceNumber::new("5", 1));
        lease.lease_owner = Some(String::new());
        lease.checkpoint_owner = Some(String::new());
        lease.parent_shard_ids = BTreeSet::from([String::new()]);
        lease.throughput_kbps = Some(f64::NAN);
        lease.pending_checkpoint = Some(ExtendedSequenceNumber::new("", 0));
        let written = encode(&lease);
        assert_eq!(
            written.keys().collect::<Vec<_>>(),
            [
                "checkpoint",
                "checkpointSubSequenceNumber",
                "leaseCounter",
                "leaseKey",
                "ownerSwitchesSinceCheckpoint"
            ]
        );
    }

    #[test]
    fn doubles_are_plain_decimals() {
        assert_eq!(decimal(0.0).as_deref(), Some("0"));
        assert_eq!(decimal(-0.0).as_deref(), Some("0"));
        assert_eq!(decimal(2.5).as_deref(), Some("2.5"));
        assert_eq!(decimal(3.0).as_deref(), Some("3"));
        assert_eq!(decimal(1e-4).as_deref(), Some("0.0001"));
        assert_eq!(decimal(1.5e10).as_deref(), Some("15000000000"));
        assert_eq!(decimal(f64::INFINITY), None);
    }
}
