//! Payload extractors: how a record's bytes become the type a handler asks for.
//!
//! In the manner of axum's extractors, the type names the decoding: [`Json<T>`] parses JSON with
//! serde, `String` requires UTF-8, `Vec<u8>` is the raw bytes, [`Record`] is everything, and
//! `Result<T, PayloadError>` turns a decode failure into a value instead of failing the batch.

use crate::record::{PayloadError, PayloadErrorKind, Record};

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

/// Makes `Record` pairs extractable: `(Record, T)` gives the record next to its decoded payload.
impl<T: FromRecord> FromRecord for (Record, T) {
    fn from_record(record: &Record) -> Result<Self, PayloadError> {
        Ok((record.clone(), T::from_record(record)?))
    }
}
