//! The checkpoint value as the KCL compares it (Java's `ExtendedSequenceNumber`): a decimal
//! sequence number or a sentinel, plus a sub-sequence number, with Java's order.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

/// A checkpoint value as the KCL compares it (Java's `ExtendedSequenceNumber`): a decimal
/// sequence number or a sentinel, plus a sub-sequence number.
///
/// Order: `AT_TIMESTAMP` < `TRIM_HORIZON` < `LATEST` < every sequence number (numerically) <
/// `SHARD_END`; then by sub-sequence number, except that `SHARD_END` equals `SHARD_END` whatever
/// their sub-sequence numbers (as in Java). Equality is textual (`"0100"` ≠ `"100"`), as in
/// Java, while the order is numeric. Like Java's `Character.isDigit`, a sequence number may use
/// the decimal digits of any script of the Basic Multilingual Plane (`"١٠٠"` is 100).
///
/// ```
/// use kcl_protocol::ExtendedSequenceNumber as E;
/// use std::cmp::Ordering;
/// assert_eq!(E::new("TRIM_HORIZON", 0).compare(&E::new("1", 0)), Ok(Ordering::Less));
/// assert_eq!(E::new("0100", 0).compare(&E::new("100", 0)), Ok(Ordering::Equal));
/// assert_eq!(E::new("١٠٠", 0).compare(&E::new("100", 0)), Ok(Ordering::Equal));
/// assert_eq!(E::shard_end().compare(&E::new("99999", 7)), Ok(Ordering::Greater));
/// assert_eq!(E::new("SHARD_END", 3).compare(&E::shard_end()), Ok(Ordering::Equal));
/// assert!(E::new("abc", 0).compare(&E::new("1", 0)).is_err());
/// assert!(E::new("\u{1D7CF}", 0).compare(&E::new("1", 0)).is_err()); // beyond the BMP
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExtendedSequenceNumber {
    sequence_number: String,
    sub_sequence_number: i64,
}

/// The sentinel names the KCL stores instead of a sequence number.
pub const SENTINELS: [&str; 4] = ["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "SHARD_END"];

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank<'a> {
    AtTimestamp,
    TrimHorizon,
    Latest,
    /// The significant ASCII digits of the value ("0" for zero).
    Number(Cow<'a, str>),
    ShardEnd,
}

/// The digit zero of every run of ten decimal digits (Unicode category Nd) in the Basic
/// Multilingual Plane: what Java's `Character.isDigit(char)` accepts (listed with Java 17; no
/// digit was added to the BMP since). Java sees characters beyond the BMP as two surrogates,
/// which are not digits.
const BMP_DIGIT_ZEROS: [u32; 37] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10,
];

/// A character's value as Java 17's `Character.digit(c, 10)` reads it: the decimal digits of
/// every script in the Basic Multilingual Plane, which `new BigInteger(text)` accepts too (the
/// KCL reads sequence numbers and explicit hash keys that way).
///
/// ```
/// use kcl_protocol::java_digit;
/// assert_eq!(java_digit('7'), Some(7));
/// assert_eq!(java_digit('٣'), Some(3)); // ARABIC-INDIC DIGIT THREE
/// assert_eq!(java_digit('x'), None);
/// assert_eq!(java_digit('𝟘'), None); // outside the BMP: two surrogates to Java
/// ```
pub fn java_digit(c: char) -> Option<u8> {
    if c.is_ascii_digit() {
        return Some(c as u8 - b'0');
    }
    let code = u32::from(c);
    BMP_DIGIT_ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&code))
        .map(|zero| (code - zero) as u8)
}

/// The significant ASCII digits of a text that Java's `ExtendedSequenceNumber` reads as a number
/// (every character a decimal digit, which `BigInteger` then reads), or `None`.
fn decimal_digits(text: &str) -> Option<Cow<'_, str>> {
    if text.is_empty() {
        return None;
    }
    // Leading zeros are not significant; zero itself is "0".
    let significant = |digits: &str| -> usize {
        let zeros = digits.len() - digits.trim_start_matches('0').len();
        zeros.min(digits.len() - 1)
    };
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Cow::Borrowed(&text[significant(text)..]));
    }
    let ascii: String = text
        .chars()
        .map(|c| java_digit(c).map(|d| char::from(b'0' + d)))
        .collect::<Option<_>>()?;
    let start = significant(&ascii);
    Some(Cow::Owned(ascii[start..].to_owned()))
}

impl ExtendedSequenceNumber {
    /// A value from its parts.
    pub fn new(sequence_number: impl Into<String>, sub_sequence_number: i64) -> Self {
        ExtendedSequenceNumber {
            sequence_number: sequence_number.into(),
            sub_sequence_number,
        }
    }

    /// `SHARD_END`: the shard was completely processed.
    pub fn shard_end() -> Self {
        Self::new("SHARD_END", 0)
    }

    /// `TRIM_HORIZON`: where a fresh lease starts (with `initialPositionInStream = TRIM_HORIZON`).
    pub fn trim_horizon() -> Self {
        Self::new("TRIM_HORIZON", 0)
    }

    /// The sequence number (or sentinel name).
    pub fn sequence_number(&self) -> &str {
        &self.sequence_number
    }

    /// The sub-sequence number.
    pub fn sub_sequence_number(&self) -> i64 {
        self.sub_sequence_number
    }

    /// Whether this is `SHARD_END`.
    pub fn is_shard_end(&self) -> bool {
        self.sequence_number == "SHARD_END"
    }

    /// The record position this value names: `None` for a sentinel or a negative sub-sequence
    /// number.
    ///
    /// ```
    /// use kcl_protocol::{ExtendedSequenceNumber as E, Position};
    /// assert_eq!(E::new("42", 3).position(), Some(Position::new("42", 3)));
    /// assert_eq!(E::trim_horizon().position(), None);
    /// ```
    pub fn position(&self) -> Option<crate::position::Position> {
        let sub = u64::try_from(self.sub_sequence_number).ok()?;
        (!self.is_sentinel())
            .then(|| crate::position::Position::new(self.sequence_number.as_str(), sub))
    }

    /// Whether this is a sentinel (`TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`, `SHARD_END`).
    pub fn is_sentinel(&self) -> bool {
        SENTINELS.contains(&self.sequence_number.as_str())
    }

    fn rank(&self) -> Result<Rank<'_>, NotASequenceNumber> {
        Ok(match self.sequence_number.as_str() {
            "AT_TIMESTAMP" => Rank::AtTimestamp,
            "TRIM_HORIZON" => Rank::TrimHorizon,
            "LATEST" => Rank::Latest,
            "SHARD_END" => Rank::ShardEnd,
            other => match decimal_digits(other) {
                Some(digits) => Rank::Number(digits),
                None => return Err(NotASequenceNumber(other.to_owned())),
            },
        })
    }

    /// Java's `compareTo`: numeric order of the sequence numbers, then sub-sequence numbers
    /// (`SHARD_END` is above everything else and equal to itself whatever the sub-sequence
    /// numbers). Text that is neither digits nor a sentinel cannot be compared.
    pub fn compare(&self, other: &Self) -> Result<Ordering, NotASequenceNumber> {
        let (a, b) = (self.rank()?, other.rank()?);
        let by_sequence = match (&a, &b) {
            (Rank::ShardEnd, _) | (_, Rank::ShardEnd) => return Ok(a.cmp(&b)),
            (Rank::Number(x), Rank::Number(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
            _ => a.cmp(&b),
        };
        Ok(by_sequence.then(self.sub_sequence_number.cmp(&other.sub_sequence_number)))
    }
}

impl From<&crate::position::Position> for ExtendedSequenceNumber {
    /// The checkpoint value of a record's position.
    fn from(position: &crate::position::Position) -> Self {
        ExtendedSequenceNumber::new(
            position.sequence_number().as_str(),
            i64::try_from(position.sub_sequence_number()).unwrap_or(i64::MAX),
        )
    }
}

impl fmt::Display for ExtendedSequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.sequence_number, self.sub_sequence_number)
    }
}

/// A sequence number that is neither decimal digits nor a sentinel name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotASequenceNumber(pub String);

impl fmt::Display for NotASequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is neither a sequence number nor a sentinel",
            self.0
        )
    }
}

impl std::error::Error for NotASequenceNumber {}
