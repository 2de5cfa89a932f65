//! Property tests of the lease codec: every lease round-trips through its item and through
//! DynamoDB JSON; nothing empty is ever written; arbitrary rows never panic the decoder and
//! decode to a fixed point.

use std::collections::{BTreeMap, BTreeSet};

use kcl_lease::{
    AttributeValue, Decoded, Item, Lease, attr, decode, encode, item_from_json, item_to_json,
};
use kcl_protocol::ExtendedSequenceNumber as E;
use proptest::prelude::*;

const KNOWN: [&str; 18] = [
    attr::LEASE_KEY,
    attr::LEASE_OWNER,
    attr::LEASE_COUNTER,
    attr::CHECKPOINT,
    attr::CHECKPOINT_SUB_SEQUENCE_NUMBER,
    attr::PENDING_CHECKPOINT,
    attr::PENDING_CHECKPOINT_SUB_SEQUENCE_NUMBER,
    attr::PENDING_CHECKPOINT_STATE,
    attr::OWNER_SWITCHES_SINCE_CHECKPOINT,
    attr::PARENT_SHARD_ID,
    attr::CHILD_SHARD_IDS,
    attr::STARTING_HASH_KEY,
    attr::ENDING_HASH_KEY,
    attr::THROUGHPUT_KBPS,
    attr::CHECKPOINT_OWNER,
    attr::STREAM_NAME,
    attr::SHARD_ID,
    attr::ENTITY_TYPE,
];

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:_\\-é]{1,12}"
}

fn sequence() -> impl Strategy<Value = E> {
    let value = prop_oneof![
        Just("TRIM_HORIZON".to_string()),
        Just("LATEST".to_string()),
        Just("AT_TIMESTAMP".to_string()),
        Just("SHARD_END".to_string()),
        "[0-9]{1,56}",
    ];
    (value, any::<i64>()).prop_map(|(s, sub)| E::new(s, sub))
}

fn value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        any::<String>().prop_map(AttributeValue::S),
        any::<i64>().prop_map(AttributeValue::n),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(AttributeValue::B),
        proptest::collection::vec(text(), 1..3).prop_map(AttributeValue::Ss),
        proptest::collection::vec(any::<i32>().prop_map(|n| n.to_string()), 1..3)
            .prop_map(AttributeValue::Ns),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(AttributeValue::L),
            proptest::collection::btree_map(text(), inner, 0..3).prop_map(AttributeValue::M),
        ]
    })
}

fn set() -> impl Strategy<Value = BTreeSet<String>> {
    proptest::collection::btree_set(text(), 0..3)
}

prop_compose! {
    fn lease()(
        lease_key in text(),
        lease_owner in proptest::option::of(text()),
        lease_counter in any::<u64>(),
        checkpoint in sequence(),
        pending_checkpoint in proptest::option::of(sequence()),
        pending_checkpoint_state in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)),
        owner_switches_since_checkpoint in any::<u64>(),
        parent_shard_ids in set(),
        child_shard_ids in set(),
        hash_key_range in proptest::option::of((any::<u128>(), any::<u128>())),
        throughput_kbps in proptest::option::of(prop_oneof![Just(0.0), 0.0..1e6f64, any::<f64>().prop_filter("finite", |f| f.is_finite())]),
        checkpoint_owner in proptest::option::of(text()),
        stream_name in proptest::option::of(text()),
        shard_id in proptest::option::of(text()),
        other in proptest::collection::btree_map("[a-z]{1,6}X", value(), 0..3),
        labelled in any::<bool>(),
    ) -> Lease {
        let mut other: Item = other;
        if labelled {
            other.insert(attr::ENTITY_TYPE.into(), AttributeValue::s(attr::ENTITY_TYPE_LEASE));
        }
        Lease {
            lease_key, lease_owner, lease_counter, checkpoint, pending_checkpoint,
            pending_checkpoint_state, owner_switches_since_checkpoint, parent_shard_ids,
            child_shard_ids, hash_key_range, throughput_kbps, checkpoint_owner, stream_name,
            shard_id, other,
        }
    }
}

/// No empty string and no empty set anywhere in a value (DynamoDB and Java refuse them).
fn nothing_empty(value: &AttributeValue) -> bool {
    match value {
        AttributeValue::S(s) => !s.is_empty(),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => {
            !v.is_empty() && v.iter().all(|s| !s.is_empty())
        }
        AttributeValue::Bs(v) => !v.is_empty(),
        AttributeValue::L(v) => v.iter().all(nothing_empty),
        AttributeValue::M(m) => m.values().all(nothing_empty),
        _ => true,
    }
}

fn known_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(KNOWN.to_vec()).prop_map(str::to_owned),
        "[a-z]{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn leases_round_trip(lease in lease()) {
        let item = encode(&lease);
        prop_assert_eq!(decode(&item).unwrap(), Decoded::Lease(lease.clone()));
        let json = item_to_json(&item);
        prop_assert_eq!(item_from_json(&json).unwrap(), item.clone());
        // Byte for byte: the JSON of the re-encoded decode is the same text.
        let Decoded::Lease(again) = decode(&item_from_json(&json).unwrap()).unwrap() else { unreachable!() };
        prop_assert_eq!(item_to_json(&encode(&again)), json);
        for (name, value) in &item {
            if !lease.other.contains_key(name) {
                prop_assert!(nothing_empty(value), "{} is empty in {:?}", name, item);
            }
        }
        for name in [attr::LEASE_COUNTER, attr::OWNER_SWITCHES_SINCE_CHECKPOINT, attr::CHECKPOINT_SUB_SEQUENCE_NUMBER] {
            let text = item[name].as_n().unwrap();
            prop_assert!(text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok(), "{} = {}", name, text);
        }
    }

    #[test]
    fn absent_optionals_are_not_written(key in text(), counter in any::<u64>()) {
        let mut lease = Lease::new(key, E::trim_horizon());
        lease.lease_counter = counter;
        let item = encode(&lease);
        let names: Vec<&str> = item.keys().map(String::as_str).collect();
        prop_assert_eq!(names, [
            attr::CHECKPOINT, attr::CHECKPOINT_SUB_SEQUENCE_NUMBER, attr::LEASE_COUNTER,
            attr::LEASE_KEY, attr::OWNER_SWITCHES_SINCE_CHECKPOINT,
        ]);
    }

    #[test]
    fn arbitrary_rows_decode_to_a_fixed_point(
        row in proptest::collection::btree_map(known_name(), value(), 0..10),
        key in text(),
        counter in any::<u64>(),
        with_required in any::<bool>(),
    ) {
        let mut row: BTreeMap<String, AttributeValue> = row;
        if with_required {
            row.insert(attr::LEASE_KEY.into(), AttributeValue::s(key));
            row.insert(attr::LEASE_COUNTER.into(), AttributeValue::n(counter));
            row.insert(attr::CHECKPOINT.into(), AttributeValue::s("LATEST"));
        }
        match decode(&row) {
            Ok(Decoded::Lease(lease)) => {
                let again = decode(&encode(&lease)).unwrap();
                prop_assert_eq!(again, Decoded::Lease(lease));
            }
            Ok(Decoded::NotALease { entity_type }) => prop_assert_ne!(entity_type, "LEASE"),
            Err(error) => prop_assert!(KNOWN.contains(&error.attribute.as_str()), "{}", error),
        }
    }
}
