//! Why a record's payload did not decode into what was asked for.

use std::fmt;

use kcl_protocol::Position;

use super::Record;

/// A record whose payload could not be decoded as asked.
///
/// Its message names the record (sequence number, sub-sequence number, partition key) and the
/// cause; the runtime adds the shard id when it logs it.
///
/// ```
/// use kcl_core::{FromRecord, Position, Record};
/// let r = Record::new(vec![0xff, 0xfe], "pk-9", Position::new("495903382714902566081", 0));
/// let error = String::from_record(&r).unwrap_err();
/// assert_eq!(error.position(), &Position::new("495903382714902566081", 0));
/// assert!(error.to_string().starts_with("record 495903382714902566081/0 (partition key \"pk-9\"): payload is not valid UTF-8"));
/// ```
#[derive(Debug)]
pub struct PayloadError {
    position: Position,
    partition_key: String,
    kind: PayloadErrorKind,
}

/// Why a payload did not decode.
///
/// ```
/// use kcl_core::{FromRecord, Json, PayloadErrorKind, Position, Record};
/// let record = Record::new("[1, 2", "k", Position::new("1", 0)); // cut short
/// let error = Json::<serde_json::Value>::from_record(&record).unwrap_err();
/// assert!(matches!(error.kind(), PayloadErrorKind::Json(e) if e.is_eof()));
/// let error = String::from_record(&Record::new(vec![0xff], "k", Position::new("2", 0))).unwrap_err();
/// assert!(matches!(error.kind(), PayloadErrorKind::Utf8(_)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PayloadErrorKind {
    /// The wire `data` field was not base64.
    Base64(base64::DecodeError),
    /// `String` was asked for and the bytes are not UTF-8.
    Utf8(std::str::Utf8Error),
    /// `Json<T>` was asked for and serde refused the bytes.
    Json(serde_json::Error),
    /// A custom extractor's own message.
    Custom(String),
}

impl PayloadError {
    /// An error about `record`.
    ///
    /// ```
    /// use kcl_core::{PayloadError, PayloadErrorKind, Position, Record};
    /// let r = Record::new("x", "k", Position::new("1", 0));
    /// let e = PayloadError::new(&r, PayloadErrorKind::Custom("too short".into()));
    /// assert!(e.to_string().ends_with("too short"));
    /// ```
    pub fn new(record: &Record, kind: PayloadErrorKind) -> Self {
        PayloadError {
            position: record.position().clone(),
            partition_key: record.partition_key().to_owned(),
            kind,
        }
    }

    pub(crate) fn invalid_base64(
        position: &Position,
        partition_key: &str,
        error: base64::DecodeError,
    ) -> Self {
        PayloadError {
            position: position.clone(),
            partition_key: partition_key.to_owned(),
            kind: PayloadErrorKind::Base64(error),
        }
    }

    /// Where the record sits in its shard.
    ///
    /// ```
    /// use kcl_core::{FromRecord, Position, Record};
    /// let record = Record::new(vec![0xff], "k", Position::new("31", 4));
    /// let error = String::from_record(&record).unwrap_err();
    /// assert_eq!(error.position(), &Position::new("31", 4));
    /// ```
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// The record's partition key.
    ///
    /// ```
    /// use kcl_core::{FromRecord, Json, Position, Record};
    /// let record = Record::new("[1,", "user-17", Position::new("1", 0));
    /// let error = Json::<Vec<u8>>::from_record(&record).unwrap_err();
    /// assert_eq!(error.partition_key(), "user-17");
    /// ```
    pub fn partition_key(&self) -> &str {
        &self.partition_key
    }

    /// The cause.
    ///
    /// ```
    /// use kcl_core::{PayloadError, PayloadErrorKind, Position, Record};
    /// let record = Record::new("", "k", Position::new("1", 0));
    /// let error = PayloadError::new(&record, PayloadErrorKind::Custom("empty payload".into()));
    /// assert!(matches!(error.kind(), PayloadErrorKind::Custom(m) if m == "empty payload"));
    /// ```
    pub fn kind(&self) -> &PayloadErrorKind {
        &self.kind
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {} (partition key {:?}): ",
            self.position, self.partition_key
        )?;
        match &self.kind {
            PayloadErrorKind::Base64(e) => write!(f, "data is not valid base64: {e}"),
            PayloadErrorKind::Utf8(e) => write!(f, "payload is not valid UTF-8: {e}"),
            PayloadErrorKind::Json(e) => write!(f, "payload is not the expected JSON: {e}"),
            PayloadErrorKind::Custom(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for PayloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            PayloadErrorKind::Base64(e) => Some(e),
            PayloadErrorKind::Utf8(e) => Some(e),
            PayloadErrorKind::Json(e) => Some(e),
            PayloadErrorKind::Custom(_) => None,
        }
    }
}
