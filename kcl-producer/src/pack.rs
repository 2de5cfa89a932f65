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
use crate::shard_map::ShardMap;

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
    /// KPL aggregates of records predicted to land on the same shard, whatever their keys, as
    /// the KPL aggregates (far more records per aggregate than same-key when keys are many).
    /// The shard map is read with `ListShards` at build time. Kinesis places an aggregate by its
    /// first record's hash key; after a split the map is stale, and an aggregate may land on a
    /// shard that some of its records do not hash to, which the KCL drops whole. Every stored
    /// aggregate is therefore verified against the shard Kinesis reports: one that failed the
    /// check has its records sent again (flagged as maybe duplicated, since non-KCL consumers
    /// read the dropped aggregate) and the map is read again. Refused on streams with the
    /// `AUTO` distribution and together with per-key ordering.
    ShardMap {
        /// The largest aggregate, in bytes.
        max_bytes: usize,
        /// The most records in one aggregate.
        max_records: usize,
    },
}

impl Aggregation {
    /// Shard-map aggregation with the KPL's size limit (51,200 bytes) and at most 10,000
    /// records.
    ///
    /// ```
    /// use kcl_producer::Aggregation;
    /// assert_eq!(Aggregation::shard_map(), Aggregation::ShardMap { max_bytes: 51_200, max_records: 10_000 });
    /// ```
    pub fn shard_map() -> Self {
        Aggregation::ShardMap {
            max_bytes: 51_200,
            max_records: 10_000,
        }
    }

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
    map: Option<&ShardMap>,
) -> Packed {
    match aggregation {
        Aggregation::Off => pack_plain(ready, limits, ordered),
        Aggregation::SameKey {
            max_bytes,
            max_records,
        } => pack_aggregates(
            ready,
            limits,
            max_bytes.min(limits.max_record_bytes),
            max_records,
            ordered,
            &|record| {
                Some(Slot::Key(
                    record.partition_key.clone(),
                    record.explicit_hash_key.clone(),
                ))
            },
        ),
        Aggregation::ShardMap {
            max_bytes,
            max_records,
        } => {
            let Some(map) = map else {
                // No map yet: nothing is aggregated.
                return pack_plain(ready, limits, ordered);
            };
            pack_aggregates(
                ready,
                limits,
                max_bytes.min(limits.max_record_bytes),
                max_records,
                ordered,
                &|record| map.predict(record_hash_key(record)).map(Slot::Shard),
            )
        }
    }
}

/// The hash key that places `record`: its explicit hash key, else the MD5 of its partition key.
pub(crate) fn record_hash_key(record: &Record) -> u128 {
    match &record.explicit_hash_key {
        Some(text) => {
            crate::limits::parse_hash_key(text).expect("checked when the record was taken")
        }
        None => kcl_kpl::hash_key(&record.partition_key),
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

/// What records an aggregate may share: their keys (same-key), or their shard (shard map).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Slot {
    Key(String, Option<String>),
    Shard(usize),
}

fn pack_aggregates(
    ready: &mut VecDeque<Pending>,
    limits: &StreamLimits,
    max_bytes: usize,
    max_records: usize,
    ordered: Option<Busy<'_>>,
    // The aggregate a record may join; `None`: it goes alone, as it is.
    slot_of: &dyn Fn(&Record) -> Option<Slot>,
) -> Packed {
    let one_entry_per_key = ordered.is_some();
    let mut done: Vec<(Group, Record)> = Vec::new();
    let mut left_over = Vec::new();
    // With one entry per key: the partition keys whose entry is made (closed, or open under
    // another explicit hash key), so their later records wait.
    let mut closed: HashSet<String> = HashSet::new();
    let mut open_keys: HashMap<String, Option<String>> = HashMap::new();
    let mut open: HashMap<Slot, Open> = HashMap::new();
    // Entry order: the order in which slots first appeared.
    let mut order: Vec<Slot> = Vec::new();
    let (mut call_bytes, mut taken_bytes) = (0usize, 0usize);
    // The bytes of the open aggregates, kept up to date as they grow.
    let mut open_bytes = 0usize;
    while let Some(next) = ready.front() {
        let record = next.record_ref();
        if ordered.is_some_and(|busy| {
            busy(&record.partition_key)
                || closed.contains(&record.partition_key)
                || open_keys
                    .get(&record.partition_key)
                    .is_some_and(|hash_key| *hash_key != record.explicit_hash_key)
        }) {
            let pending = ready.pop_front().expect("the front exists");
            taken_bytes += pending.bytes;
            left_over.push(pending);
            continue;
        }
        let slot_key = slot_of(record);
        let new_entry = slot_key.as_ref().is_none_or(|key| !open.contains_key(key));
        let entries_after = done.len() + open.len() + usize::from(new_entry);
        if entries_after > limits.max_entries
            || call_bytes + open_bytes + next.bytes + RECORD_OVERHEAD > limits.max_request_bytes
        {
            break;
        }
        let mut pending = ready.pop_front().expect("the front exists");
        taken_bytes += pending.bytes;
        if one_entry_per_key {
            let record = pending.record_ref();
            open_keys.insert(
                record.partition_key.clone(),
                record.explicit_hash_key.clone(),
            );
        }
        let Some(slot_key) = slot_key else {
            call_bytes += pending.bytes;
            let entry = pending.lend_record();
            done.push((Group::Plain(pending), entry));
            continue;
        };
        let explicit = pending
            .record_ref()
            .explicit_hash_key
            .as_deref()
            .map(|text| ExplicitHashKey::parse(text).expect("checked when the record was taken"));
        let created = !open.contains_key(&slot_key);
        let slot = open.entry(slot_key.clone()).or_insert_with(|| {
            order.push(slot_key.clone());
            Open {
                builder: AggregateBuilder::new(max_bytes, max_records),
                pendings: Vec::new(),
            }
        });
        let before = if created {
            0
        } else {
            slot.builder.kinesis_size()
        };
        let record = pending.record_ref();
        match slot
            .builder
            .push(&record.partition_key, explicit.as_ref(), &record.data)
        {
            Ok(()) => slot.pendings.push(pending),
            Err(Full::TooManyBytes | Full::TooManyRecords) if one_entry_per_key => {
                // The key's one entry is full: the record waits for the next call.
                closed.insert(pending.record_ref().partition_key.clone());
                left_over.push(pending);
            }
            Err(Full::RecordTooLarge) if one_entry_per_key && !slot.pendings.is_empty() => {
                // It cannot join the key's aggregate, and may not overtake it.
                closed.insert(pending.record_ref().partition_key.clone());
                left_over.push(pending);
            }
            Err(Full::TooManyBytes | Full::TooManyRecords) => {
                // Close this aggregate and start the next one with the record.
                let finished = close(slot);
                call_bytes += finished.1.data.len() + finished.1.partition_key.len();
                done.push(finished);
                let record = pending.record_ref();
                slot.builder
                    .push(&record.partition_key, explicit.as_ref(), &record.data)
                    .expect("a record that fitted an aggregate alone fits an empty one");
                slot.pendings.push(pending);
            }
            Err(Full::RecordTooLarge) => {
                // Larger than an aggregate may be: it goes alone, as it is.
                if one_entry_per_key {
                    closed.insert(pending.record_ref().partition_key.clone());
                }
                call_bytes += pending.bytes;
                let entry = pending.lend_record();
                done.push((Group::Plain(pending), entry));
            }
        }
        open_bytes = open_bytes + slot.builder.kinesis_size() - before;
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
