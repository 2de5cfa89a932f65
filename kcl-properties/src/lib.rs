//! The MultiLangDaemon's `.properties` file, read exactly as the KCL 3.1.3 daemon reads it: one
//! place for its rules, used by the `kcl` tool (`kcl properties`, `kcl daemon`, `kcl run`) and
//! by the native engine (`kcl-native`), so that one file means the same to both engines.
//!
//! - [`format`](mod@format): the Java `.properties` format ([`parse`] into [`Entry`]s: escapes,
//!   continuations, ISO-8859-1, line numbers; [`escape_value`] and [`is_plain_key`] for
//!   writing).
//! - [`keys`]: every key the daemon reads ([`KEYS`]) with the Java type that decides how its
//!   value applies ([`Kind`]) and the retrieval mode it belongs to ([`Group`]); [`lookup`],
//!   [`suggestion`] and [`unknown_key_message`] ("did you mean").
//! - [`value`]: one value typed as the daemon applies it ([`read`] → [`Reading`]): a Java `int`
//!   ignores `0` and malformed numbers, a `Boolean` applies `false`, enums are case-insensitive
//!   but not trimmed, durations are ISO-8601, ...
//! - [`retrieval`](mod@retrieval): polling or enhanced fan-out, by the daemon's rule
//!   ([`retrieval()`]).
//! - [`endpoint`]: where an endpoint URL goes (its host, whether it is this machine's
//!   loopback, plain HTTP to another host).
//! - [`executable`]: `executableName` split into a command as the daemon splits it
//!   ([`command_words`]).
//! - [`Properties`]: a parsed file with typed lookups ([`Properties::int`],
//!   [`Properties::boolean`], [`Properties::choice`], ...) and the keys the daemon does not know
//!   ([`Properties::unknown`]).
//!
//! ```
//! use kcl_properties::{Properties, Reading, Value, unknown_key_message};
//!
//! let props = Properties::parse(b"\
//! streamName = orders
//! applicationName = orders-app
//! failoverTimeMillis = 0
//! maxRecords = 500
//! isGracefulLeaseHandoffEnabled = false
//! initialPositionInStream = trim_horizon
//! idleTimeBetweenReadsInMilis = 250
//! ");
//! assert_eq!(props.text("streamName"), Ok(Some("orders")));
//! assert_eq!(props.int("failoverTimeMillis"), Ok(None)); // a Java `long`: 0 is ignored
//! assert_eq!(props.int("maxRecords"), Ok(Some(500)));
//! assert_eq!(props.boolean("isGracefulLeaseHandoffEnabled"), Ok(Some(false))); // a `Boolean`
//! assert_eq!(props.choice("initialPositionInStream"), Ok(Some("TRIM_HORIZON")));
//! let typo = props.unknown().next().unwrap();
//! assert_eq!(typo.line, 7);
//! assert!(unknown_key_message(&typo.key).ends_with("did you mean idleTimeBetweenReadsInMillis?"));
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod endpoint;
pub mod executable;
pub mod format;
pub mod keys;
mod properties;
pub mod removed;
pub mod retrieval;
pub mod value;

pub use executable::command_words;
pub use format::{Entry, escape_value, is_plain_key, parse};
pub use keys::{Group, KEYS, Key, Kind, lookup, suggestion, unknown_key_message};
pub use properties::{LoadError, Properties, ValueError};
pub use removed::{
    REMOVED_KEYS, RemovedKey, Replacement, SDK_V1_PROVIDERS, SdkV1Provider, removed_key,
    sdk_v1_provider,
};
pub use retrieval::{Retrieval, RetrievalChoice, retrieval};
pub use value::{Ignored, Reading, Value, read};
