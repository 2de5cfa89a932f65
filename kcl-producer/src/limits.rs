//! The stream's write limits, and the check of a record against them before it is sent.
//!
//! One invalid entry makes Kinesis refuse a whole `PutRecords` call, failing every good record
//! in it, so every record is checked on its own, when it is handed to the producer.
//!
//! ```
//! use kcl_producer::api::Record;
//! use kcl_producer::limits::{Invalid, StreamLimits};
//! let limits = StreamLimits::default();
//! assert_eq!(limits.check(&Record::new("user-1", "hello")), Ok(11));
//! assert_eq!(limits.check(&Record::new("", "hello")), Err(Invalid::EmptyPartitionKey));
//! ```

use crate::api::{Record, StreamSummary};

/// The limits one `PutRecords` call and one record must keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamLimits {
    /// Entries per call (500).
    pub max_entries: usize,
    /// Bytes per call, data and partition keys counted (5 MiB).
    pub max_request_bytes: usize,
    /// Bytes per record, data and partition key counted (1 MiB unless the stream was raised,
    /// up to 10 MiB).
    pub max_record_bytes: usize,
}

/// 1 MiB: the default record limit, and the unit of the stream's `MaxRecordSizeInKiB`.
const MIB: usize = 1024 * 1024;

impl Default for StreamLimits {
    /// The limits of a stream nobody changed: 500 entries and 5 MiB per call, 1 MiB per record.
    fn default() -> Self {
        StreamLimits {
            max_entries: 500,
            max_request_bytes: 5 * MIB,
            max_record_bytes: MIB,
        }
    }
}

impl StreamLimits {
    /// The limits of the stream `summary` describes (its own record limit; a call still carries
    /// at most 5 MiB, and never less than one record of the largest size).
    ///
    /// ```
    /// use kcl_producer::api::{Distribution, StreamSummary};
    /// use kcl_producer::limits::StreamLimits;
    /// let summary = StreamSummary {
    ///     stream_arn: "arn:aws:kinesis:eu-west-1:123456789012:stream/big".into(),
    ///     open_shard_count: 1, max_record_size_kib: 10240, distribution: Distribution::PartitionKey,
    /// };
    /// let limits = StreamLimits::of(&summary);
    /// assert_eq!(limits.max_record_bytes, 10 * 1024 * 1024);
    /// assert_eq!(limits.max_request_bytes, 10 * 1024 * 1024);
    /// ```
    pub fn of(summary: &StreamSummary) -> Self {
        let defaults = StreamLimits::default();
        let max_record_bytes = (summary.max_record_size_kib as usize).saturating_mul(1024);
        StreamLimits {
            max_record_bytes,
            max_request_bytes: defaults.max_request_bytes.max(max_record_bytes),
            ..defaults
        }
    }

    /// Checks `entry` against the limits; its size as Kinesis counts it (data and partition key
    /// bytes) when it may be sent.
    ///
    /// ```
    /// use kcl_producer::api::Record;
    /// use kcl_producer::limits::{Invalid, StreamLimits};
    /// let limits = StreamLimits::default();
    /// let big = Record::new("k", vec![0u8; 1024 * 1024]);
    /// assert_eq!(limits.check(&big), Err(Invalid::TooLarge { bytes: 1024 * 1024 + 1, max: 1024 * 1024 }));
    /// let routed = Record::new("k", "x").explicit_hash_key("340282366920938463463374607431768211456");
    /// assert!(matches!(limits.check(&routed), Err(Invalid::ExplicitHashKey(_))));
    /// ```
    pub fn check(&self, entry: &Record) -> Result<usize, Invalid> {
        let key = &entry.partition_key;
        if key.is_empty() {
            return Err(Invalid::EmptyPartitionKey);
        }
        // Kinesis counts characters as Java does: UTF-16 code units.
        let units = key.encode_utf16().count();
        if units > MAX_KEY_UNITS {
            return Err(Invalid::PartitionKeyTooLong { units });
        }
        if let Some(hash_key) = &entry.explicit_hash_key {
            parse_hash_key(hash_key).ok_or_else(|| Invalid::ExplicitHashKey(hash_key.clone()))?;
        }
        let bytes = entry.data.len() + key.len();
        if bytes > self.max_record_bytes {
            return Err(Invalid::TooLarge {
                bytes,
                max: self.max_record_bytes,
            });
        }
        Ok(bytes)
    }
}

/// The longest partition key, in UTF-16 code units.
const MAX_KEY_UNITS: usize = 256;

/// An explicit hash key as Kinesis takes it: decimal, no sign, no leading zero, at most
/// 2^128 - 1.
///
/// ```
/// use kcl_producer::limits::parse_hash_key;
/// assert_eq!(parse_hash_key("0"), Some(0));
/// assert_eq!(parse_hash_key("340282366920938463463374607431768211455"), Some(u128::MAX));
/// assert_eq!(parse_hash_key("007"), None);
/// assert_eq!(parse_hash_key("+7"), None);
/// assert_eq!(parse_hash_key(""), None);
/// ```
pub fn parse_hash_key(text: &str) -> Option<u128> {
    let digits = text.as_bytes();
    let canonical = match digits {
        [] => false,
        [b'0'] => true,
        [first, ..] => *first != b'0',
    };
    if !canonical || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.parse().ok()
}

/// Why a record cannot be sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// The partition key is empty.
    #[error("the partition key is empty (Kinesis needs 1 to 256 characters)")]
    EmptyPartitionKey,
    /// The partition key is longer than 256 characters.
    #[error(
        "the partition key has {units} characters (UTF-16 code units); Kinesis takes at most 256"
    )]
    PartitionKeyTooLong {
        /// Its length in UTF-16 code units.
        units: usize,
    },
    /// The explicit hash key is not a decimal number from 0 to 2^128 - 1.
    #[error("the explicit hash key {0:?} is not a decimal number from 0 to 2^128 - 1")]
    ExplicitHashKey(String),
    /// Data and partition key together exceed the stream's record limit.
    #[error(
        "the record has {bytes} bytes of data and partition key; the stream takes at most {max}"
    )]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The stream's limit.
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lengths_count_utf16_units_at_the_boundary() {
        let limits = StreamLimits::default();
        assert!(limits.check(&Record::new("k".repeat(256), "")).is_ok());
        assert_eq!(
            limits.check(&Record::new("k".repeat(257), "")),
            Err(Invalid::PartitionKeyTooLong { units: 257 })
        );
        // 128 astral characters are 256 UTF-16 units (and 512 bytes, counted in the size).
        let astral = "🔑".repeat(128);
        assert_eq!(limits.check(&Record::new(astral.clone(), "ab")), Ok(514));
        assert_eq!(
            limits.check(&Record::new(astral + "k", "")),
            Err(Invalid::PartitionKeyTooLong { units: 257 })
        );
    }

    #[test]
    fn the_record_limit_counts_the_key_and_is_inclusive() {
        let limits = StreamLimits::default();
        assert_eq!(
            limits.check(&Record::new("kk", vec![0u8; MIB - 2])),
            Ok(MIB)
        );
        assert_eq!(
            limits.check(&Record::new("kk", vec![0u8; MIB - 1])),
            Err(Invalid::TooLarge {
                bytes: MIB + 1,
                max: MIB
            })
        );
    }

    #[test]
    fn hash_keys_are_canonical_decimals_up_to_the_top_of_the_range() {
        for good in ["0", "1", "10", "340282366920938463463374607431768211455"] {
            assert!(parse_hash_key(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "-1",
            "01",
            " 1",
            "1 ",
            "1e3",
            "0x10",
            "340282366920938463463374607431768211456",
        ] {
            assert_eq!(parse_hash_key(bad), None, "{bad}");
        }
    }
}
