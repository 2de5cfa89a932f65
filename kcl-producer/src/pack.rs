//! Packing ready records into the entries of one `PutRecords` call: one entry per record, or,
//! with [`Aggregation::SameKey`], KPL aggregates of records that share their keys.
//!
//! An aggregate holds only records with the same partition key and explicit hash key, so it
//! lands on the shard each of its records hashes to. The KCL drops a whole aggregate when one of
//! its records hashes outside the shard it was read from (kcl_kpl::kcl_view); same-key
//! aggregates can never meet that rule, with no shard map and across resharding.

use std::collections::{HashMap, HashSet, VecDeque};

use kcl_kpl::{AggregateBuilder, ExplicitHashKey, Full};

use crate::api::Record;
use crate::dispatch::Pending;
use crate::limits::StreamLimits;

/// Whether and how records are aggregated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Aggregation {
    /// One Kinesis record per record (the default).
    Off,
    /// KPL aggregates of records with the same partition key and explicit hash key, each at most
    /// `max_bytes` (data and partition key, as Kinesis counts the aggregate) and `max_records`.
    /// Consumers built on the KCL see each record with the aggregate's sequence number and its
    /// own sub-sequence number. Refused on streams with the `AUTO` distribution.
    SameKey {
        /// The largest aggregate, in bytes.
        max_bytes: usize,
        /// The most records in one aggregate.
        max_records: usize,
    },
}

impl Aggregation {
    /// Same-key aggregation with the KPL's size limit (51,200 bytes) and at most 10,000 records.
    ///
    /// ```
    /// use kcl_producer::Aggregation;
    /// assert_eq!(Aggregation::same_key(), Aggregation::SameKey { max_bytes: 51_200, max_records: 10_000 });
    /// ```
    pub fn same_key() -> Self {
        Aggregation::SameKey {
            max_bytes: 51_200,
            max_records: 10_000,
        }
    }
}

/// One entry of a call, and the records it carries.
pub(crate) enum Group {
    /// A record sent as it is (lent to the call).
    Plain(Pending),
    /// An aggregate of these records, in sub-sequence order.
    Aggregate(Vec<Pending>),
}

/// Upper bound of what one more record adds to an aggregate besides its data and key: the
/// protobuf tags, lengths and indexes (a few bytes each).
const RECORD_OVERHEAD: usize = 64;

/// One call's worth, taken from the front of `ready`.
pub(crate) struct Packed {
    /// The call's entries, and the records each carries.
    pub(crate) groups: Vec<Group>,
    pub(crate) entries: Vec<Record>,
    /// The bytes of every record taken out of `ready` (the groups' and the left-overs').
    pub(crate) bytes: usize,
    /// With one entry per key, the records of a key whose entry was already made, in order.
    pub(crate) left_over: Vec<Pending>,
}

/// With per-key ordering: whether a partition key has a record in flight or waiting for its
/// backoff.
pub(crate) type Busy<'a> = &'a dyn Fn(&str) -> bool;

/// Takes records from the front of `ready` into one call's entries. With `ordered` (per-key
/// ordering), a partition key gets at most one entry in the call and none while it is busy; its
/// records that may not go are taken out as left-overs.
pub(crate) fn pack(
    ready: &mut VecDeque<Pending>,
    aggregation: Aggregation,
    limits: &StreamLimits,
    ordered: Option<Busy<'_>>,
) -> Packed {
    match aggregation {
        Aggregation::Off => pack_plain(ready, limits, ordered),
        Aggregation::SameKey {
            max_bytes,
            max_records,
        } => pack_same_key(
            ready,
            limits,
            max_bytes.min(limits.max_record_bytes),
            max_records,
            ordered,
        ),
    }
}

fn pack_plain(
    ready: &mut VecDeque<Pending>,
    limits: &StreamLimits,
    ordered: Option<Busy<'_>>,
) -> Packed {
    let (mut groups, mut entries, mut bytes) = (Vec::new(), Vec::new(), 0);
    let mut left_over = Vec::new();
    let mut keys = HashSet::new();
    let mut left_bytes = 0;
    while let Some(next) = ready.front() {
        let key = &next.record_ref().partition_key;
        if ordered.is_some_and(|busy| busy(key) || keys.contains(key)) {
            let pending = ready.pop_front().expect("the front exists");
            left_bytes += pending.bytes;
            left_over.push(pending);
            continue;
        }
        if groups.len() == limits.max_entries
            || (!groups.is_empty() && bytes + next.bytes > limits.max_request_bytes)
        {
            break;
        }
        let mut pending = ready.pop_front().expect("the front exists");
        if ordered.is_some() {
            keys.insert(pending.record_ref().partition_key.clone());
        }
        bytes += pending.bytes;
        entries.push(pending.lend_record());
        groups.push(Group::Plain(pending));
    }
    Packed {
        groups,
        entries,
        bytes: bytes + left_bytes,
        left_over,
    }
}

/// An aggregate being filled: its builder and its records.
struct Open {
    builder: AggregateBuilder,
    pendings: Vec<Pending>,
}

fn pack_same_key(
    ready: &mut VecDeque<Pending>,
    limits: &StreamLimits,
    max_bytes: usize,
    max_records: usize,
    ordered: Option<Busy<'_>>,
) -> Packed {
    let one_entry_per_key = ordered.is_some();
    let mut done: Vec<(Group, Record)> = Vec::new();
    let mut left_over = Vec::new();
    // With one entry per key: the partition keys whose entry is made (closed, or open under
    // another explicit hash key), so their later records wait.
    let mut closed: HashSet<String> = HashSet::new();
    let mut open_keys: HashMap<String, Option<String>> = HashMap::new();
    let mut open: HashMap<(String, Option<String>), Open> = HashMap::new();
    // Entry order: the order in which keys first appeared.
    let mut order: Vec<(String, Option<String>)> = Vec::new();
    let (mut call_bytes, mut taken_bytes) = (0usize, 0usize);
    let open_bytes = |open: &HashMap<(String, Option<String>), Open>| -> usize {
        open.values().map(|o| o.builder.kinesis_size()).sum()
    };
    while let Some(next) = ready.front() {
        let record = next.record_ref();
        let key = (
            record.partition_key.clone(),
            record.explicit_hash_key.clone(),
        );
        if ordered.is_some_and(|busy| {
            busy(&key.0)
                || closed.contains(&key.0)
                || open_keys
                    .get(&key.0)
                    .is_some_and(|hash_key| *hash_key != key.1)
        }) {
            let pending = ready.pop_front().expect("the front exists");
            taken_bytes += pending.bytes;
            left_over.push(pending);
            continue;
        }
        let entries_after = done.len() + open.len() + usize::from(!open.contains_key(&key));
        if entries_after > limits.max_entries
            || call_bytes + open_bytes(&open) + next.bytes + RECORD_OVERHEAD
                > limits.max_request_bytes
        {
            break;
        }
        let pending = ready.pop_front().expect("the front exists");
        taken_bytes += pending.bytes;
        if one_entry_per_key {
            open_keys.insert(key.0.clone(), key.1.clone());
        }
        let explicit = pending
            .record_ref()
            .explicit_hash_key
            .as_deref()
            .map(|text| ExplicitHashKey::parse(text).expect("checked when the record was taken"));
        let slot = open.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            Open {
                builder: AggregateBuilder::new(max_bytes, max_records),
                pendings: Vec::new(),
            }
        });
        let record = pending.record_ref();
        match slot
            .builder
            .push(&record.partition_key, explicit.as_ref(), &record.data)
        {
            Ok(()) => slot.pendings.push(pending),
            Err(Full::TooManyBytes | Full::TooManyRecords) if one_entry_per_key => {
                // The key's one entry is full: the record waits for the next call.
                closed.insert(key.0.clone());
                left_over.push(pending);
            }
            Err(Full::RecordTooLarge) if one_entry_per_key && !slot.pendings.is_empty() => {
                // It cannot join the key's aggregate, and may not overtake it.
                closed.insert(key.0.clone());
                left_over.push(pending);
            }
            Err(Full::TooManyBytes | Full::TooManyRecords) => {
                // Close this key's aggregate and start the next one with the record.
                let closed = close(slot);
                call_bytes += closed.1.data.len() + closed.1.partition_key.len();
                done.push(closed);
                let record = pending.record_ref();
                slot.builder
                    .push(&record.partition_key, explicit.as_ref(), &record.data)
                    .expect("a record that fitted an aggregate alone fits an empty one");
                slot.pendings.push(pending);
            }
            Err(Full::RecordTooLarge) => {
                // Larger than an aggregate may be: it goes alone, as it is.
                if one_entry_per_key {
                    closed.insert(key.0.clone());
                }
                call_bytes += pending.bytes;
                let mut pending = pending;
                let entry = pending.lend_record();
                done.push((Group::Plain(pending), entry));
            }
        }
    }
    for key in order {
        if let Some(mut slot) = open.remove(&key) {
            if !slot.pendings.is_empty() {
                done.push(close(&mut slot));
            }
        }
    }
    let (groups, entries) = done.into_iter().unzip();
    Packed {
        groups,
        entries,
        bytes: taken_bytes,
        left_over,
    }
}

/// Finishes an open aggregate into its group and its entry; `slot` is empty afterwards. An
/// aggregate of one record goes as that record, as it is (readable by any consumer).
fn close(slot: &mut Open) -> (Group, Record) {
    if slot.pendings.len() == 1 {
        let _ = slot.builder.finish();
        let mut pending = slot.pendings.pop().expect("one record");
        let entry = pending.lend_record();
        return (Group::Plain(pending), entry);
    }
    let aggregate = slot
        .builder
        .finish()
        .expect("an open aggregate holds a record");
    let mut entry = Record::new(aggregate.partition_key, aggregate.data);
    if let Some(hash_key) = aggregate.explicit_hash_key {
        entry = entry.explicit_hash_key(hash_key.to_string());
    }
    (Group::Aggregate(std::mem::take(&mut slot.pendings)), entry)
}
