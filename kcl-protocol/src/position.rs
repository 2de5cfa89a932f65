//! Sequence numbers and positions in a shard.
//!
//! Kinesis sequence numbers are decimal strings of up to 129 digits (real ones are about 56), far
//! beyond `u128`, so they are kept as text and compared numerically by length, then digit by digit.
//! A [`Position`] adds the sub-sequence number that identifies a user record inside a KPL aggregate.
//!
//! The small accessors and comparisons are `#[inline]`: the child runtime calls them for every
//! record from another crate, and a user's release build usually has no link-time optimisation
//! to inline them across crates otherwise.

use std::cmp::Ordering;
use std::fmt;

/// A Kinesis sequence number, kept exactly as the daemon sent it.
///
/// Ordering is numeric for decimal strings (leading zeros ignored, ties broken by the text so that
/// the order agrees with equality). Non-numeric values (sentinels such as `TRIM_HORIZON`, or
/// garbage) sort before every numeric value, among themselves by text.
///
/// ```
/// use kcl_protocol::SequenceNumber;
/// let a = SequenceNumber::new("49590338271490256608559692538361571095921575989136588898");
/// let b = SequenceNumber::new("9");
/// assert!(b < a);
/// assert_eq!(a.as_str().len(), 56);
/// ```
#[derive(Clone)]
pub struct SequenceNumber(Text);

/// The 36 fixed digits of [`SequenceNumber::synthetic`]; a 20-digit counter follows.
const SYNTHETIC_PREFIX: &str = "496660000000000000000000000000000000";

/// Sequence numbers up to this many bytes (real ones have about 56) are stored inline, without
/// an allocation: a batch of records costs no allocation per sequence number.
const INLINE: usize = 62;

#[derive(Clone)]
enum Text {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl SequenceNumber {
    /// Wraps a sequence number as text.
    ///
    /// ```
    /// let s = kcl_protocol::SequenceNumber::new("12");
    /// assert_eq!(s.to_string(), "12");
    /// ```
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        if text.len() <= INLINE {
            SequenceNumber::from_text(&text)
        } else {
            SequenceNumber(Text::Heap(text.into_boxed_str()))
        }
    }

    /// Copies `text` (inline when short enough).
    #[doc(hidden)]
    #[inline]
    pub fn from_text(text: &str) -> Self {
        if text.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            SequenceNumber(Text::Inline {
                len: text.len() as u8,
                bytes,
            })
        } else {
            SequenceNumber(Text::Heap(text.into()))
        }
    }

    /// The sequence number as the daemon wrote it.
    ///
    /// ```
    /// assert_eq!(kcl_protocol::SequenceNumber::new("7").as_str(), "7");
    /// ```
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: the inline bytes are always copied from a `&str` of this length.
            Text::Inline { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(&bytes[..usize::from(*len)])
            },
            Text::Heap(text) => text,
        }
    }

    /// Whether this is a decimal sequence number (and not a sentinel such as `TRIM_HORIZON`).
    ///
    /// ```
    /// assert!(kcl_protocol::SequenceNumber::new("123").is_numeric());
    /// assert!(!kcl_protocol::SequenceNumber::new("LATEST").is_numeric());
    /// ```
    #[inline]
    pub fn is_numeric(&self) -> bool {
        let text = self.as_str();
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
    }

    /// The `n`-th of a made-up series of sequence numbers, for local runs, tests and benchmarks:
    /// 56 digits like Kinesis's, increasing with `n` in Java's order and in text order alike.
    ///
    /// `kcl run` names its records with this series, so the checkpoint files of local runs hold
    /// them: the series never changes.
    ///
    /// ```
    /// use kcl_protocol::SequenceNumber;
    /// let first = SequenceNumber::synthetic(1);
    /// assert_eq!(first.as_str(), "49666000000000000000000000000000000000000000000000000001");
    /// assert!(SequenceNumber::synthetic(10) > SequenceNumber::synthetic(9));
    /// assert_eq!(SequenceNumber::synthetic(u64::MAX).as_str().len(), 56);
    /// ```
    pub fn synthetic(n: u64) -> Self {
        SequenceNumber::new(format!("{SYNTHETIC_PREFIX}{n:020}"))
    }

    /// The `n` of a sequence number made by [`SequenceNumber::synthetic`] (`None` for any other).
    ///
    /// ```
    /// use kcl_protocol::SequenceNumber;
    /// assert_eq!(SequenceNumber::synthetic(42).synthetic_index(), Some(42));
    /// assert_eq!(SequenceNumber::new("42").synthetic_index(), None);
    /// ```
    pub fn synthetic_index(&self) -> Option<u64> {
        let digits = self.as_str().strip_prefix(SYNTHETIC_PREFIX)?;
        if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    #[inline]
    fn significant_digits(&self) -> &str {
        let trimmed = self.as_str().trim_start_matches('0');
        if trimmed.is_empty() { "0" } else { trimmed }
    }
}

impl Ord for SequenceNumber {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.is_numeric(), other.is_numeric()) {
            (true, true) => {
                let (a, b) = (self.significant_digits(), other.significant_digits());
                a.len()
                    .cmp(&b.len())
                    .then_with(|| a.cmp(b))
                    .then_with(|| self.as_str().cmp(other.as_str()))
            }
            (false, true) => Ordering::Less,
            (true, false) => Ordering::Greater,
            (false, false) => self.as_str().cmp(other.as_str()),
        }
    }
}

impl PartialOrd for SequenceNumber {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SequenceNumber {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SequenceNumber {}

impl std::hash::Hash for SequenceNumber {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for SequenceNumber {
    fn from(text: &str) -> Self {
        SequenceNumber::from_text(text)
    }
}

impl From<String> for SequenceNumber {
    fn from(text: String) -> Self {
        SequenceNumber::new(text)
    }
}

/// A record's place in its shard: sequence number plus sub-sequence number.
///
/// Totally ordered by sequence number, then sub-sequence number; this is the order in which the
/// daemon accepts checkpoints.
///
/// ```
/// use kcl_protocol::Position;
/// let first = Position::new("495903382714902566091", 0);
/// let second = Position::new("495903382714902566091", 2);
/// let third = Position::new("495903382714902566092", 0);
/// assert!(first < second && second < third);
/// assert_eq!(second.to_string(), "495903382714902566091/2");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    sequence_number: SequenceNumber,
    sub_sequence_number: u64,
}

impl Position {
    /// A position from a sequence number and a sub-sequence number.
    ///
    /// ```
    /// let p = kcl_protocol::Position::new("1", 3);
    /// assert_eq!(p.sub_sequence_number(), 3);
    /// ```
    pub fn new(sequence_number: impl Into<SequenceNumber>, sub_sequence_number: u64) -> Self {
        Position {
            sequence_number: sequence_number.into(),
            sub_sequence_number,
        }
    }

    /// The sequence number.
    ///
    /// ```
    /// assert_eq!(kcl_protocol::Position::new("42", 0).sequence_number().as_str(), "42");
    /// ```
    #[inline]
    pub fn sequence_number(&self) -> &SequenceNumber {
        &self.sequence_number
    }

    /// The sub-sequence number (0 unless the record came out of a KPL aggregate).
    ///
    /// ```
    /// assert_eq!(kcl_protocol::Position::new("42", 0).sub_sequence_number(), 0);
    /// ```
    #[inline]
    pub fn sub_sequence_number(&self) -> u64 {
        self.sub_sequence_number
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.sequence_number, self.sub_sequence_number)
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Position({self})")
    }
}

/// Where the lease resumes, as announced by `initialize`.
///
/// Fresh leases carry a sentinel (`TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`); a lease that was
/// checkpointed before carries the stored position.
///
/// ```
/// use kcl_protocol::StartingPosition;
/// assert_eq!(StartingPosition::from_wire(Some("TRIM_HORIZON"), Some(0)), StartingPosition::TrimHorizon);
/// let resumed = StartingPosition::from_wire(Some("4959"), Some(2));
/// assert_eq!(resumed.checkpoint().unwrap().sub_sequence_number(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartingPosition {
    /// Start at the oldest record kept by the stream.
    TrimHorizon,
    /// Start at the tip of the stream.
    Latest,
    /// Start at a timestamp configured on the daemon.
    AtTimestamp,
    /// The shard was already completely processed.
    ShardEnd,
    /// Resume after this checkpointed position.
    Checkpoint(Position),
    /// A sentinel this SDK does not know, kept as text.
    Other(String),
    /// The daemon sent no position (old daemons, or no checkpoint object).
    Unknown,
}

impl StartingPosition {
    /// Interprets the `sequenceNumber` and `subSequenceNumber` fields of `initialize`.
    ///
    /// ```
    /// use kcl_protocol::StartingPosition;
    /// assert_eq!(StartingPosition::from_wire(None, None), StartingPosition::Unknown);
    /// ```
    pub fn from_wire(sequence_number: Option<&str>, sub_sequence_number: Option<u64>) -> Self {
        match sequence_number {
            None => StartingPosition::Unknown,
            Some("TRIM_HORIZON") => StartingPosition::TrimHorizon,
            Some("LATEST") => StartingPosition::Latest,
            Some("AT_TIMESTAMP") => StartingPosition::AtTimestamp,
            Some("SHARD_END") => StartingPosition::ShardEnd,
            Some(text) => {
                let sequence = SequenceNumber::new(text);
                if sequence.is_numeric() {
                    StartingPosition::Checkpoint(Position::new(
                        sequence,
                        sub_sequence_number.unwrap_or(0),
                    ))
                } else {
                    StartingPosition::Other(text.to_owned())
                }
            }
        }
    }

    /// The checkpointed position the lease resumes after, if there is one.
    ///
    /// ```
    /// assert!(kcl_protocol::StartingPosition::Latest.checkpoint().is_none());
    /// ```
    pub fn checkpoint(&self) -> Option<&Position> {
        match self {
            StartingPosition::Checkpoint(position) => Some(position),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_order_ignores_length_of_text_only_when_leading_zeros() {
        let short = SequenceNumber::new("999");
        let long = SequenceNumber::new("1000");
        assert!(short < long);
        assert!(SequenceNumber::new("0999") < SequenceNumber::new("1000"));
        assert!(SequenceNumber::new("0999") != SequenceNumber::new("999"));
        assert!(SequenceNumber::new("LATEST") < SequenceNumber::new("0"));
    }

    #[test]
    fn position_orders_by_sequence_then_sub_sequence() {
        let a = Position::new(
            "49590338271490256608559692538361571095921575989136588898",
            5,
        );
        let b = Position::new(
            "49590338271490256608559692538361571095921575989136588899",
            0,
        );
        assert!(a < b);
        assert!(Position::new("10", 1) > Position::new("10", 0));
    }
}
