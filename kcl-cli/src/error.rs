//! The tool's errors: each says what went wrong and, where it can, what to do about it.

use std::io;
use std::path::Path;

/// An error that ends a command. The binary prints `error: <message>` (and the hint) to stderr
/// and exits with `Error::exit_code`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line or an input file is wrong (exit code 2).
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// What to do instead.
        hint: Option<String>,
    },
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// SIGINT or SIGTERM stopped the command early (exit code 130).
    #[error("interrupted")]
    Interrupted,
    /// The command ran but what it checked or ran failed (exit code 1).
    #[error("{message}")]
    Failed {
        /// What failed.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// `kcl daemon` itself failed: it refused to start the daemon (bad properties, unverified
    /// jars, no usable Java, ...) or could not start or wait for it. Exit code
    /// `Error::LAUNCHER_EXIT_CODE`, which the daemon never uses, so a supervisor can tell "kcl
    /// refused" from "the daemon exited 1".
    #[error("{0}")]
    Launcher(Box<Error>),
}

impl Error {
    /// The exit code of [`Error::Launcher`] (125, like `env`, `timeout` and `nice` when they
    /// fail themselves rather than the command they run).
    pub(crate) const LAUNCHER_EXIT_CODE: u8 = 125;

    /// Marks an error as `kcl daemon`'s own ([`Error::Launcher`]).
    pub(crate) fn launcher(self) -> Self {
        match self {
            Error::Launcher(_) => self,
            other => Error::Launcher(Box::new(other)),
        }
    }

    /// A usage error without a hint.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: None,
        }
    }

    /// A usage error with a hint.
    pub(crate) fn usage_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A failure without a hint.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Error::Failed {
            message: message.into(),
            hint: None,
        }
    }

    /// A failure with a hint.
    pub(crate) fn failed_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Failed {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// An I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An I/O error on a file, named in the message.
    pub(crate) fn file(action: &str, path: &Path, source: io::Error) -> Self {
        Error::io(format!("cannot {action} {}", path.display()), source)
    }

    /// What to do about it, if known.
    pub(crate) fn hint(&self) -> Option<&str> {
        match self {
            Error::Usage { hint, .. } | Error::Failed { hint, .. } => hint.as_deref(),
            Error::Io { .. } | Error::Interrupted => None,
            Error::Launcher(inner) => inner.hint(),
        }
    }

    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Error::Usage { .. } => 2,
            Error::Interrupted => 130,
            Error::Io { .. } | Error::Failed { .. } => 1,
            Error::Launcher(_) => Self::LAUNCHER_EXIT_CODE,
        }
    }
}

/// The result of a command.
pub type Result<T, E = Error> = std::result::Result<T, E>;
