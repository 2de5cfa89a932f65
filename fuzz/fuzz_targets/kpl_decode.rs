//! The KPL aggregate decoder (`kcl_kpl::decode`) and the KCL's view of a record
//! (`kcl_kpl::kcl_view`) on arbitrary bytes: neither panics, they agree (a record the KCL passes
//! through is "not aggregated" to `decode` for the same reason; records `decode` returns are the
//! ones the KCL delivers), and what `decode` returns re-encodes with `AggregateBuilder` into an
//! aggregate that decodes to the same records, its length predicted exactly.
//!
//! Input: the first byte picks how the rest becomes a Kinesis record's data (odd: framed as an
//! aggregate, magic + bytes + their MD5 digest, so that the protobuf parser sees them; even: as
//! is) and the shard's hash key range (the KCL's view is taken for all hash keys and for one
//! half of the space).
#![no_main]

use kcl_kpl::{
    decode, kcl_batch_view, kcl_view, AggregateBuilder, DecodeError, HashKeyRange, Outcome, MAGIC,
};
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let data = if mode & 1 == 1 {
        let mut framed = MAGIC.to_vec();
        framed.extend_from_slice(rest);
        framed.extend_from_slice(&Md5::digest(rest));
        framed
    } else {
        rest.to_vec()
    };
    let view = kcl_view(&data, "pk", HashKeyRange::ALL);
    match decode(&data) {
        Ok(records) => {
            assert_eq!(view.outcome, Outcome::Deaggregated);
            assert_eq!(view.records.len(), records.len());
            for (i, (delivered, record)) in view.records.iter().zip(&records).enumerate() {
                assert_eq!(delivered.partition_key, record.partition_key);
                assert_eq!(delivered.data, record.data);
                assert_eq!(
                    delivered.explicit_hash_key.as_deref(),
                    record.explicit_hash_key.as_ref().map(|k| k.as_str())
                );
                assert_eq!(delivered.sub_sequence_number, i as u64);
            }
            let mut builder = AggregateBuilder::new(usize::MAX, usize::MAX);
            for record in &records {
                builder.push_record(record).unwrap();
            }
            let expected_len = builder.encoded_len();
            match builder.finish() {
                None => assert!(records.is_empty()),
                Some(again) => {
                    assert_eq!(again.data.len(), expected_len);
                    assert_eq!(decode(&again.data).unwrap(), records);
                }
            }
        }
        Err(DecodeError::NotAggregated(reason)) => {
            assert_eq!(view.outcome, Outcome::PassedThrough(reason));
            assert_eq!(view.records.len(), 1);
            assert_eq!(view.records[0].data, data);
        }
        Err(DecodeError::Malformed(_)) => {
            assert!(!matches!(view.outcome, Outcome::PassedThrough(_)));
        }
    }
    // A narrower shard: whatever is not passed through delivers a subset, and an aggregate
    // that is dropped or makes the batch skip delivers nothing.
    let half = if mode & 2 == 0 {
        HashKeyRange::new(0, u128::MAX / 2)
    } else {
        HashKeyRange::new(u128::MAX / 2 + 1, u128::MAX)
    };
    let narrow = kcl_view(&data, "pk", half);
    match narrow.outcome {
        Outcome::Dropped { .. } | Outcome::BatchSkipped { .. } => {
            assert!(narrow.records.is_empty())
        }
        Outcome::Deaggregated => assert_eq!(narrow.records, view.records),
        Outcome::PassedThrough(_) => assert_eq!(narrow.records, view.records),
    }
    let batch = kcl_batch_view([(&data[..], "pk"), (&b"plain"[..], "p")], half);
    assert_eq!(
        batch.is_err(),
        matches!(narrow.outcome, Outcome::BatchSkipped { .. })
    );
});
