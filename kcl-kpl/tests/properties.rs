//! Properties of the codec over generated records and bytes:
//!
//! - builder → `decode` gives back the records pushed, in order, tags included;
//! - `encoded_len` is the length `finish` would produce after every push, and `kinesis_size`
//!   adds exactly the first record's partition key;
//! - the byte limit is exact: a record is refused only if the aggregate would then exceed it,
//!   and the same records under a limit of exactly their size all fit;
//! - `decode` and `kcl_view` agree: records from `decode` are what the KCL delivers for every
//!   shard holding their hash keys, and `decode` says "not an aggregate" exactly when the KCL
//!   passes the record through, for the same reason;
//! - `decode` never panics on damaged aggregates or arbitrary bytes.

use kcl_kpl::{
    AggregateBuilder, DecodeError, ExplicitHashKey, Full, HashKeyRange, Outcome, Tag, UserRecord,
    decode, kcl_view,
};
use proptest::prelude::*;

/// Partition keys from a small pool (so tables deduplicate) or anything, multi-byte included.
fn partition_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0..6u8).prop_map(|i| format!("key-{i}")),
        1 => "\\PC{0,20}",
        1 => Just("ключ-🔑".to_string()),
    ]
}

fn explicit_hash_key() -> impl Strategy<Value = Option<ExplicitHashKey>> {
    prop_oneof![
        3 => Just(None),
        1 => any::<u128>().prop_map(|v| Some(ExplicitHashKey::new(v))),
        1 => (0..4u128).prop_map(|v| Some(ExplicitHashKey::new(v))),
        1 => prop_oneof![Just("+7"), Just("007"), Just("-0"), Just("٣")]
            .prop_map(|t| Some(ExplicitHashKey::parse(t).unwrap())),
    ]
}

/// Data lengths around the varint boundaries (127/128, 16383/16384) and small ones.
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => prop_oneof![Just(127usize), Just(128), Just(16_383), Just(16_384)]
            .prop_map(|n| vec![0xAB; n]),
    ]
}

fn tags() -> impl Strategy<Value = Vec<Tag>> {
    proptest::collection::vec(
        ("\\PC{0,6}", proptest::option::of("\\PC{0,6}"))
            .prop_map(|(key, value)| Tag { key, value }),
        0..2,
    )
}

fn user_record() -> impl Strategy<Value = UserRecord> {
    (
        partition_key(),
        explicit_hash_key(),
        data(),
        prop_oneof![4 => Just(vec![]), 1 => tags()],
    )
        .prop_map(
            |(partition_key, explicit_hash_key, data, tags)| UserRecord {
                partition_key,
                explicit_hash_key,
                data,
                tags,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn records_round_trip_and_every_size_is_exact(
        records in proptest::collection::vec(user_record(), 1..40),
    ) {
        let mut builder = AggregateBuilder::default();
        for (i, record) in records.iter().enumerate() {
            builder.push_record(record).unwrap();
            let mut copy = builder.clone();
            let aggregate = copy.finish().unwrap();
            prop_assert_eq!(aggregate.data.len(), builder.encoded_len(), "after push {}", i);
            prop_assert_eq!(
                builder.kinesis_size(),
                builder.encoded_len() + records[0].partition_key.len()
            );
            prop_assert_eq!(aggregate.kinesis_size(), builder.kinesis_size());
        }
        let aggregate = builder.finish().unwrap();
        prop_assert_eq!(aggregate.records, records.len());
        prop_assert_eq!(&aggregate.partition_key, &records[0].partition_key);
        prop_assert_eq!(
            aggregate.explicit_hash_key,
            records[0].explicit_hash_key.as_ref().map(ExplicitHashKey::value)
        );
        prop_assert_eq!(&decode(&aggregate.data).unwrap(), &records);

        // The KCL delivers the same records, with sub-sequence numbers 0, 1, ...
        let view = kcl_view(&aggregate.data, &aggregate.partition_key, HashKeyRange::ALL);
        prop_assert_eq!(view.outcome, Outcome::Deaggregated);
        prop_assert_eq!(view.records.len(), records.len());
        for (i, (delivered, record)) in view.records.iter().zip(&records).enumerate() {
            prop_assert_eq!(&delivered.partition_key, &record.partition_key);
            prop_assert_eq!(&delivered.data, &record.data);
            prop_assert_eq!(
                delivered.explicit_hash_key.as_deref(),
                record.explicit_hash_key.as_ref().map(ExplicitHashKey::as_str)
            );
            prop_assert_eq!(delivered.sub_sequence_number, i as u64);
        }
        // ... for a shard holding all their hash keys, and drops them all for one that misses
        // any.
        let lowest = records.iter().map(UserRecord::hash_key).min().unwrap();
        let highest = records.iter().map(UserRecord::hash_key).max().unwrap();
        let tight = HashKeyRange::new(lowest, highest);
        prop_assert_eq!(kcl_view(&aggregate.data, "", tight).outcome, Outcome::Deaggregated);
        if highest > lowest {
            let short = HashKeyRange::new(lowest, highest - 1);
            let view = kcl_view(&aggregate.data, "", short);
            let dropped = matches!(view.outcome, Outcome::Dropped { .. });
            prop_assert!(dropped, "{:?}", view.outcome);
            prop_assert!(view.records.is_empty());
        }
    }

    #[test]
    fn the_byte_limit_is_exact(
        records in proptest::collection::vec(user_record(), 1..30),
        limit in 20usize..2000,
    ) {
        // Push until the limit refuses a record; then check the refusal was deserved.
        let mut builder = AggregateBuilder::new(limit, usize::MAX);
        let mut taken = Vec::new();
        for record in &records {
            let mut unlimited = AggregateBuilder::new(usize::MAX, usize::MAX);
            for earlier in &taken {
                unlimited.push_record(earlier).unwrap();
            }
            unlimited.push_record(record).unwrap();
            let would_be = unlimited.kinesis_size();
            match builder.push_record(record) {
                Ok(()) => {
                    prop_assert!(would_be <= limit);
                    prop_assert_eq!(builder.kinesis_size(), would_be);
                    taken.push(record.clone());
                }
                Err(full) => {
                    prop_assert!(would_be > limit, "refused at {} of {}", would_be, limit);
                    let expected = if taken.is_empty() { Full::RecordTooLarge } else { Full::TooManyBytes };
                    prop_assert_eq!(full, expected);
                    break;
                }
            }
            prop_assert!(builder.kinesis_size() <= limit);
        }
        // Exactly the size of what was taken: everything fits again, and one byte less does not.
        if !taken.is_empty() {
            let size = builder.kinesis_size();
            let mut exact = AggregateBuilder::new(size, taken.len());
            for record in &taken {
                exact.push_record(record).unwrap();
            }
            let mut short = AggregateBuilder::new(size - 1, taken.len());
            let refused = taken.iter().any(|record| short.push_record(record).is_err());
            prop_assert!(refused);
        }
    }

    #[test]
    fn decode_and_kcl_view_agree_on_damaged_aggregates(
        records in proptest::collection::vec(user_record(), 1..8),
        damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 0..3),
        fix_digest in any::<bool>(),
    ) {
        let mut builder = AggregateBuilder::default();
        for record in &records {
            builder.push_record(record).unwrap();
        }
        let mut data = builder.finish().unwrap().data;
        // Damage the message, then (usually) write a matching digest so the parser sees it.
        let mut message = data[4..data.len() - 16].to_vec();
        for (at, byte, how) in &damage {
            match how {
                0 if !message.is_empty() => { let i = at.index(message.len()); message[i] = *byte; }
                1 => { let i = at.index(message.len() + 1); message.insert(i, *byte); }
                _ if !message.is_empty() => { let i = at.index(message.len()); message.truncate(i); }
                _ => {}
            }
        }
        if fix_digest {
            data = reframe(&message);
        } else if !damage.is_empty() {
            data.truncate(4);
            data.extend_from_slice(&message);
            data.extend_from_slice(&[0; 16]);
        }
        check_agreement(&data)?;
    }

    #[test]
    fn decode_and_kcl_view_agree_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        framed in any::<bool>(),
    ) {
        let data = if framed { reframe(&bytes) } else { bytes };
        check_agreement(&data)?;
    }
}

/// Magic, `message`, the MD5 digest of `message`.
fn reframe(message: &[u8]) -> Vec<u8> {
    let mut builder = AggregateBuilder::default();
    builder.push("k", None, b"").unwrap();
    let template = builder.finish().unwrap().data;
    let mut out = template[..4].to_vec();
    out.extend_from_slice(message);
    out.extend_from_slice(&md5_of(message));
    out
}

/// The MD5 digest of `message`.
fn md5_of(message: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    let mut out = [0; 16];
    out.copy_from_slice(&Md5::digest(message));
    out
}

fn check_agreement(data: &[u8]) -> Result<(), TestCaseError> {
    let view = kcl_view(data, "pk", HashKeyRange::ALL);
    match decode(data) {
        Ok(records) => {
            prop_assert_eq!(view.outcome, Outcome::Deaggregated);
            prop_assert_eq!(view.records.len(), records.len());
            for (delivered, record) in view.records.iter().zip(&records) {
                prop_assert_eq!(&delivered.partition_key, &record.partition_key);
                prop_assert_eq!(&delivered.data, &record.data);
            }
        }
        Err(DecodeError::NotAggregated(reason)) => {
            prop_assert_eq!(view.outcome, Outcome::PassedThrough(reason));
            prop_assert_eq!(&view.records[0].data, &data.to_vec());
        }
        Err(DecodeError::Malformed(_)) => {
            let passed = matches!(view.outcome, Outcome::PassedThrough(_));
            prop_assert!(!passed, "{:?}", view.outcome);
        }
    }
    Ok(())
}
