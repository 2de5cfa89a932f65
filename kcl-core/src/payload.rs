//! Payload extractors: how a record's bytes become the type a handler asks for.
//!
//! In the manner of axum's extractors, the type names the decoding: [`Json<T>`] parses JSON with
//! serde, `String` requires UTF-8, `Vec<u8>` is the raw bytes, [`Record`] is everything, and
//! `Result<T, PayloadError>` turns a decode failure into a value instead of failing the batch.

use std::fmt;

use crate::record::Record;
use kcl_protocol::Position;

/// A type that can be produced from one record.
///
/// ```
/// use kcl_core::{FromRecord, PayloadError, Position, Record};
/// struct Upper(String);
/// impl FromRecord for Upper {
///     fn from_record(record: &Record) -> Result<Self, PayloadError> {
///         String::from_record(record).map(|s| Upper(s.to_uppercase()))
///     }
/// }
/// let r = Record::new("abc", "k", Position::new("1", 0));
/// assert_eq!(Upper::from_record(&r).unwrap().0, "ABC");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be extracted from a Kinesis record",
    label = "not a payload extractor",
    note = "use `kcl::Json<T>` (T: serde::Deserialize), `String`, `Vec<u8>`, `kcl::Record`, or `Result<T, kcl::PayloadError>` for one of those; or implement `kcl::FromRecord` for your type"
)]
pub trait FromRecord: Sized {
    /// Decodes the record, or says why it cannot be.
    fn from_record(record: &Record) -> Result<Self, PayloadError>;
}

/// A JSON payload decoded with serde.
///
/// ```
/// use kcl_core::{FromRecord, Json, Position, Record};
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Click { user: String }
/// let r = Record::new(r#"{"user":"ana"}"#, "k", Position::new("1", 0));
/// let Json(click) = Json::<Click>::from_record(&r).unwrap();
/// assert_eq!(click, Click { user: "ana".into() });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The decoded value.
    ///
    /// ```
    /// assert_eq!(kcl_core::Json(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: serde::de::DeserializeOwned> FromRecord for Json<T> {
    fn from_record(record: &Record) -> Result<Self, PayloadError> {
        serde_json::from_slice(record.data())
            .map(Json)
            .map_err(|error| PayloadError::new(record, PayloadErrorKind::Json(error)))
    }
}

impl FromRecord for String {
    fn from_record(record: &Record) -> Result<Self, PayloadError> {
        match std::str::from_utf8(record.data()) {
            Ok(text) => Ok(text.to_owned()),
            Err(error) => Err(PayloadError::new(record, PayloadErrorKind::Utf8(error))),
        }
    }
}

impl FromRecord for Vec<u8> {
    fn from_record(record: &Record) -> Result<Self, PayloadError> {
        Ok(record.data().to_vec())
    }
}

impl FromRecord for Record {
    fn from_record(record: &Record) -> Result<Self, PayloadError> {
        Ok(record.clone())
    }
}

impl<T: FromRecord> FromRecord for Result<T, PayloadError> {
    fn from_record(record: &Record) -> Result<Self, PayloadError> {
        Ok(T::from_record(record))
    }
}

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
