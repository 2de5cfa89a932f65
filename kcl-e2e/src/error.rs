//! The harness's one error type: a message saying what failed and, for a missing prerequisite,
//! how to get it.

use std::fmt;

/// What went wrong, in words (a test fails with it as it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(String);

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this message.
    pub fn msg(message: impl Into<String>) -> Self {
        Error(message.into())
    }

    /// A prerequisite that is not there (an installed cache, a built binary, a program on
    /// `PATH`): the message says so, and that the scenario cannot pass without it.
    pub fn missing(what: impl fmt::Display, fix: impl fmt::Display) -> Self {
        Error(format!(
            "prerequisite missing: {what}; {fix} (a scenario cannot pass without running)"
        ))
    }

    /// `what` failed with an SDK (or any) error, its whole chain of causes included.
    pub fn sdk(what: impl fmt::Display, error: &(dyn std::error::Error + 'static)) -> Self {
        let mut text = format!("{what}: {error}");
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Error(text)
    }

    /// `what` failed with an I/O error.
    pub fn io(what: impl fmt::Display, error: std::io::Error) -> Self {
        Error(format!("{what}: {error}"))
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}
