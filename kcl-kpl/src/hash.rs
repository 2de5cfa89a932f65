//! Hash keys: where Kinesis puts a record (the MD5 of its partition key, or its explicit hash
//! key), explicit hash keys as the aggregate stores them, and a shard's range of hash keys.

use std::fmt;
use std::str::FromStr;

use md5::{Digest, Md5};
use thiserror::Error;

use crate::java::{JavaNumber, java_big_integer};

/// The hash key Kinesis (and the KCL) computes for a partition key: the MD5 digest of its UTF-8
/// bytes read as a 128-bit big-endian number.
///
/// ```
/// // MD5("0") = cfcd2084 95d565ef 66e7dff9 f98764da
/// assert_eq!(kcl_kpl::hash_key("0"), 0xcfcd208495d565ef66e7dff9f98764da);
/// ```
pub fn hash_key(partition_key: &str) -> u128 {
    md5_number(partition_key.as_bytes())
}

/// The MD5 digest of `bytes` as a big-endian number.
pub(crate) fn md5_number(bytes: &[u8]) -> u128 {
    u128::from_be_bytes(md5(bytes))
}

/// The MD5 digest of `bytes`.
pub(crate) fn md5(bytes: &[u8]) -> [u8; 16] {
    let digest = Md5::digest(bytes);
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest);
    out
}

/// An explicit hash key as an aggregate's table stores it: decimal text, and its value.
///
/// [`ExplicitHashKey::new`] writes a number in plain decimal (what the Kinesis API accepts for
/// a record's own explicit hash key). [`ExplicitHashKey::parse`] keeps any text the KCL reads
/// as a hash key (Java's `new BigInteger(text)` between 0 and 2^128 − 1: a leading `+`, leading
/// zeros, `-0`, decimal digits of other scripts), because the KPL stores the text its caller
/// gave and a decoded aggregate must give it back unchanged.
///
/// ```
/// use kcl_kpl::ExplicitHashKey;
/// let key = ExplicitHashKey::new(42);
/// assert_eq!((key.as_str(), key.value()), ("42", 42));
/// let stored = ExplicitHashKey::parse("+0042").unwrap();
/// assert_eq!((stored.as_str(), stored.value()), ("+0042", 42));
/// assert!(ExplicitHashKey::parse("-1").is_err());
/// assert!(ExplicitHashKey::parse("340282366920938463463374607431768211456").is_err()); // 2^128
/// assert!(ExplicitHashKey::parse(" 42").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExplicitHashKey {
    text: String,
    value: u128,
}

/// Text that is not an explicit hash key: not a number to Java's `BigInteger`, or outside
/// 0 ..= 2^128 − 1.
///
/// ```
/// let error = kcl_kpl::ExplicitHashKey::parse("x").unwrap_err();
/// assert_eq!(error.to_string(), "not a hash key (a decimal number from 0 to 2^128 - 1): \"x\"");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("not a hash key (a decimal number from 0 to 2^128 - 1): {0:?}")]
pub struct InvalidExplicitHashKey(pub String);

impl ExplicitHashKey {
    /// The key for `value`, in plain decimal.
    ///
    /// ```
    /// assert_eq!(kcl_kpl::ExplicitHashKey::new(u128::MAX).as_str(), "340282366920938463463374607431768211455");
    /// ```
    pub fn new(value: u128) -> Self {
        ExplicitHashKey {
            text: value.to_string(),
            value,
        }
    }

    /// Text the KCL reads as a hash key, kept as written.
    ///
    /// ```
    /// assert_eq!(kcl_kpl::ExplicitHashKey::parse("007").unwrap().value(), 7);
    /// ```
    pub fn parse(text: &str) -> Result<Self, InvalidExplicitHashKey> {
        match java_big_integer(text) {
            Some(JavaNumber::HashKey(value)) => Ok(ExplicitHashKey {
                text: text.to_owned(),
                value,
            }),
            _ => Err(InvalidExplicitHashKey(text.to_owned())),
        }
    }

    /// The text, as stored.
    ///
    /// ```
    /// assert_eq!(kcl_kpl::ExplicitHashKey::new(7).as_str(), "7");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The hash key.
    ///
    /// ```
    /// assert_eq!(kcl_kpl::ExplicitHashKey::new(7).value(), 7);
    /// ```
    pub fn value(&self) -> u128 {
        self.value
    }
}

impl From<u128> for ExplicitHashKey {
    fn from(value: u128) -> Self {
        ExplicitHashKey::new(value)
    }
}

impl FromStr for ExplicitHashKey {
    type Err = InvalidExplicitHashKey;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ExplicitHashKey::parse(text)
    }
}

impl fmt::Display for ExplicitHashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A shard's hash keys, both ends included (`HashKeyRange` of `DescribeStream`/`ListShards`).
///
/// ```
/// use kcl_kpl::HashKeyRange;
/// let lower_half = HashKeyRange::new(0, u128::MAX / 2);
/// assert!(lower_half.contains(0) && lower_half.contains(u128::MAX / 2));
/// assert!(!lower_half.contains(u128::MAX / 2 + 1));
/// assert!(HashKeyRange::ALL.contains(u128::MAX));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashKeyRange {
    /// The smallest hash key of the shard (`StartingHashKey`).
    pub start: u128,
    /// The largest hash key of the shard (`EndingHashKey`).
    pub end: u128,
}

impl HashKeyRange {
    /// Every hash key: what the KCL checks against when it does not know the shard
    /// (`AggregatorUtil.deaggregate(List)` uses 0 ..= 2^128 − 1).
    ///
    /// ```
    /// assert_eq!(kcl_kpl::HashKeyRange::ALL, kcl_kpl::HashKeyRange::new(0, u128::MAX));
    /// ```
    pub const ALL: HashKeyRange = HashKeyRange {
        start: 0,
        end: u128::MAX,
    };

    /// The range `start ..= end`.
    ///
    /// ```
    /// assert!(kcl_kpl::HashKeyRange::new(5, 9).contains(9));
    /// ```
    pub const fn new(start: u128, end: u128) -> Self {
        HashKeyRange { start, end }
    }

    /// Whether `hash_key` is in the range.
    ///
    /// ```
    /// assert!(!kcl_kpl::HashKeyRange::new(5, 9).contains(4));
    /// ```
    pub const fn contains(&self, hash_key: u128) -> bool {
        self.start <= hash_key && hash_key <= self.end
    }
}

impl Default for HashKeyRange {
    fn default() -> Self {
        HashKeyRange::ALL
    }
}
