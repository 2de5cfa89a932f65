//! The error type that hooks return.

use std::fmt;

use kcl_protocol::Position;

/// Any failure of user code, as returned by a [`RecordProcessor`](crate::RecordProcessor) hook.
///
/// Every `std::error::Error + Send + Sync + 'static` converts into it with `?`, and so do
/// [`PayloadError`](crate::PayloadError) and [`CheckpointError`](crate::CheckpointError).
/// Like `anyhow::Error`, it does not itself implement `std::error::Error` (that is what makes the
/// blanket conversion possible); use [`Error::source_error`] to reach the cause.
///
/// ```
/// fn parse(text: &str) -> kcl_core::Result<u32> {
///     let n: u32 = text.parse()?;
///     if n == 0 {
///         return Err(kcl_core::Error::msg("zero is not allowed"));
///     }
///     Ok(n)
/// }
/// assert!(parse("x").is_err());
/// assert_eq!(parse("0").unwrap_err().to_string(), "zero is not allowed");
/// ```
pub struct Error {
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
    record: Option<Position>,
}

/// `Result` with [`Error`] as its default error type.
///
/// Both parameters have defaults, so a hook's `Result<()>` can also be written `Result`:
///
/// ```
/// fn hook() -> kcl_core::Result {
///     Ok(())
/// }
/// let port: kcl_core::Result<u16> = "80x".parse::<u16>().map_err(Into::into);
/// assert!(hook().is_ok());
/// assert!(port.unwrap_err().to_string().contains("invalid digit"));
/// ```
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error carrying only a message.
    ///
    /// ```
    /// assert_eq!(kcl_core::Error::msg("boom").to_string(), "boom");
    /// ```
    pub fn msg(message: impl fmt::Display) -> Self {
        Error {
            inner: message.to_string().into(),
            record: None,
        }
    }

    /// Wraps any error value.
    ///
    /// ```
    /// let e = kcl_core::Error::new(std::io::Error::other("disk full"));
    /// assert!(e.downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error {
            inner: Box::new(error),
            record: None,
        }
    }

    /// Marks the record at `position` as the first one that failed: the records of the batch
    /// before it count as handled (partial success, like Lambda's `batchItemFailures`), so
    /// checkpoints may reach the record just before it.
    ///
    /// ```
    /// use kcl_core::{testing::{StoredCheckpoint, TestDaemon}, CheckpointStrategy, Error, Runtime};
    /// let processor = kcl_core::from_fn(|batch, _| {
    ///     for record in batch {
    ///         if record.data() == b"bad" {
    ///             return Err(Error::msg("cannot store it").at_record(record.position().clone()));
    ///         }
    ///     }
    ///     Ok(())
    /// });
    /// let mut daemon = TestDaemon::new(processor);
    /// daemon.initialize("shardId-000000000000");
    /// let good = daemon.next_record("good");
    /// let bad = daemon.next_record("bad");
    /// daemon.process_records(vec![good.clone(), bad], None);
    /// // The default strategy checkpointed what was handled: up to the record before the failure.
    /// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(good.position().clone())));
    /// ```
    pub fn at_record(mut self, position: Position) -> Self {
        self.record = Some(position);
        self
    }

    /// The record named by [`at_record`](Self::at_record), if any.
    ///
    /// ```
    /// let e = kcl_core::Error::msg("x").at_record(kcl_core::Position::new("7", 0));
    /// assert_eq!(e.record(), Some(&kcl_core::Position::new("7", 0)));
    /// assert_eq!(kcl_core::Error::msg("y").record(), None);
    /// ```
    pub fn record(&self) -> Option<&Position> {
        self.record.as_ref()
    }

    /// The wrapped error, if it is an `E`.
    ///
    /// ```
    /// use std::num::ParseIntError;
    /// fn parse(text: &str) -> kcl_core::Result<i32> {
    ///     Ok(text.parse()?)
    /// }
    /// let error = parse("seven").unwrap_err();
    /// assert!(error.downcast_ref::<ParseIntError>().is_some());
    /// assert!(error.downcast_ref::<std::io::Error>().is_none());
    /// ```
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref::<E>()
    }

    /// The wrapped error as a standard error object.
    ///
    /// Use it to walk the cause chain, which `Error` itself does not expose:
    ///
    /// ```
    /// use kcl_core::{FromRecord, Position, Record};
    /// let record = Record::new(vec![0xc3], "k", Position::new("1", 0));
    /// let error = kcl_core::Error::from(String::from_record(&record).unwrap_err());
    /// let cause = error.source_error().source().expect("a UTF-8 error");
    /// assert!(cause.is::<std::str::Utf8Error>());
    /// ```
    pub fn source_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Error::new(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
