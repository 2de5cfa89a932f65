//! [`Properties`]: a parsed file, with each key's value looked up and typed as the daemon
//! applies it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::format::{Entry, parse};
use crate::keys::{Key, Kind, lookup};
use crate::value::{Reading, Value, read};

/// A MultiLangDaemon properties file, read as the daemon reads it.
///
/// ```
/// use kcl_properties::Properties;
///
/// let props = Properties::parse(b"streamName = orders\nfailoverTimeMillis = 0\nmaxRecords = 500\nStreamName = typo\n");
/// assert_eq!(props.get("streamName"), Some("orders"));
/// // A Java `long` field: 0 is ignored, the KCL default stays.
/// assert_eq!(props.int("failoverTimeMillis"), Ok(None));
/// assert_eq!(props.int("maxRecords"), Ok(Some(500)));
/// let unknown: Vec<&str> = props.unknown().map(|e| e.key.as_str()).collect();
/// assert_eq!(unknown, ["StreamName"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    entries: Vec<Entry>,
}

/// Why a properties file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// What the system said.
    #[source]
    pub source: std::io::Error,
}

/// Why a value could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The daemon would stop with this value (at start, or at its first call).
    #[error("{}{key} = {value:?}: {reason}", at_line(*line))]
    Refused {
        /// The key.
        key: &'static str,
        /// The value, as the file holds it.
        value: String,
        /// Its line (0 when not read from a file).
        line: usize,
        /// Why.
        reason: String,
    },
    /// The key's type is not the one asked for (e.g. [`Properties::int`] of `streamName`).
    #[error("{key} is read as {kind:?}, not as {wanted}")]
    WrongKind {
        /// The key.
        key: &'static str,
        /// Its type.
        kind: Kind,
        /// What was asked for.
        wanted: &'static str,
    },
    /// The daemon knows no key of this name.
    #[error("{0:?} is not a key the daemon knows")]
    UnknownKey(String),
}

fn at_line(line: usize) -> String {
    if line > 0 {
        format!("line {line}: ")
    } else {
        String::new()
    }
}

impl Properties {
    /// Reads a properties text (bytes as ISO-8859-1, as the daemon reads them).
    ///
    /// ```
    /// let props = kcl_properties::Properties::parse(b"applicationName = app\n");
    /// assert_eq!(props.entries().len(), 1);
    /// ```
    pub fn parse(bytes: &[u8]) -> Properties {
        Properties {
            entries: parse(bytes),
        }
    }

    /// Reads a properties file.
    ///
    /// ```
    /// let error = kcl_properties::Properties::load("/no/such/file.properties").unwrap_err();
    /// assert!(error.to_string().starts_with("cannot read /no/such/file.properties"));
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Properties, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LoadError {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Properties::parse(&bytes))
    }

    /// Properties made of these entries (in file order: a later entry of a key wins).
    ///
    /// ```
    /// use kcl_properties::{Entry, Properties};
    /// let entry = |key: &str, value: &str| Entry { key: key.into(), value: value.into(), line: 0 };
    /// let props = Properties::from_entries(vec![entry("maxRecords", "1"), entry("maxRecords", "2")]);
    /// assert_eq!(props.get("maxRecords"), Some("2"));
    /// ```
    pub fn from_entries(entries: Vec<Entry>) -> Properties {
        Properties { entries }
    }

    /// Every entry, in file order, duplicates included.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The last value of `key` (exact name), as the file holds it.
    ///
    /// ```
    /// let props = kcl_properties::Properties::parse(b"a = 1\na = 2\n");
    /// assert_eq!(props.get("a"), Some("2"));
    /// assert_eq!(props.get("A"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    }

    /// The entry the daemon applies for the key it knows as `name`: the last one whose key names
    /// it (the credentials keys in any case, as the daemon normalises them).
    ///
    /// ```
    /// let props = kcl_properties::Properties::parse(b"awscredentialsprovider = DefaultCredentialsProvider\n");
    /// assert_eq!(props.entry("AwsCredentialsProvider").unwrap().line, 1);
    /// ```
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        let key = lookup(name)?;
        self.entries
            .iter()
            .rev()
            .find(|e| lookup(&e.key).is_some_and(|k| k.name == key.name))
    }

    /// The entries whose key the daemon does not know (it ignores them silently), in file
    /// order.
    pub fn unknown(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| lookup(&e.key).is_none())
    }

    /// The keys the daemon knows that the file sets, each with the entry that applies, in the
    /// order of [`KEYS`](crate::KEYS).
    ///
    /// ```
    /// let props = kcl_properties::Properties::parse(b"maxRecords = 5\nstreamName = s\nmaxRecords = 6\n");
    /// let known: Vec<(&str, &str)> = props.known().map(|(k, e)| (k.name, e.value.as_str())).collect();
    /// assert_eq!(known, [("streamName", "s"), ("maxRecords", "6")]);
    /// ```
    pub fn known(&self) -> impl Iterator<Item = (&'static Key, &Entry)> {
        crate::keys::KEYS
            .iter()
            .filter_map(|key| self.entry(key.name).map(|entry| (key, entry)))
    }

    /// The value of the known key `name`, typed as the daemon applies it; `Ok(None)` when the
    /// file does not set it.
    ///
    /// ```
    /// use kcl_properties::{Properties, Reading, Value};
    /// let props = Properties::parse(b"isGracefulLeaseHandoffEnabled = false\n");
    /// assert_eq!(props.read("isGracefulLeaseHandoffEnabled"), Ok(Some(Reading::Applied(Value::Bool(false)))));
    /// assert_eq!(props.read("maxRecords"), Ok(None));
    /// ```
    pub fn read(&self, name: &str) -> Result<Option<Reading<Value<'_>>>, ValueError> {
        let key = lookup(name).ok_or_else(|| ValueError::UnknownKey(name.to_string()))?;
        let Some(entry) = self.entry(name) else {
            return Ok(None);
        };
        read(key, &entry.value)
            .map(Some)
            .map_err(|reason| ValueError::Refused {
                key: key.name,
                value: entry.value.clone(),
                line: entry.line,
                reason,
            })
    }

    /// A whole-number key (`int`, `long`, `Integer`, `Long`): the value that applies, or `None`
    /// when it is not set or the daemon ignores it (0 or malformed in a primitive field). A
    /// malformed value of a wrapper field applies as 0.
    ///
    /// ```
    /// let props = kcl_properties::Properties::parse(b"maxRecords = ten\ntimeoutInSeconds = 0\n");
    /// assert_eq!(props.int("maxRecords"), Ok(None));
    /// assert_eq!(props.int("timeoutInSeconds"), Ok(Some(0)));
    /// assert!(props.int("streamName").is_err());
    /// ```
    pub fn int(&self, name: &str) -> Result<Option<i64>, ValueError> {
        self.typed(name, "a whole number", |value| match value {
            Value::Int(n) => Some(n),
            _ => None,
        })
    }

    /// A `double` key: the value that applies, or `None` (not set, 0, malformed).
    pub fn double(&self, name: &str) -> Result<Option<f64>, ValueError> {
        self.typed(name, "a number", |value| match value {
            Value::Double(x) => Some(x),
            _ => None,
        })
    }

    /// A switch (`boolean`, `Boolean`): the value that applies, or `None` (not set, or `false`
    /// or malformed in a primitive field). A malformed value of a `Boolean` applies as `false`.
    ///
    /// ```
    /// let props = kcl_properties::Properties::parse(b"cleanupLeasesUponShardCompletion = false\nisGracefulLeaseHandoffEnabled = false\n");
    /// assert_eq!(props.boolean("cleanupLeasesUponShardCompletion"), Ok(None));
    /// assert_eq!(props.boolean("isGracefulLeaseHandoffEnabled"), Ok(Some(false)));
    /// ```
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ValueError> {
        self.typed(name, "a switch", |value| match value {
            Value::Bool(b) => Some(b),
            _ => None,
        })
    }

    /// A text key (also region, endpoint and credentials keys), as the file holds it.
    ///
    /// ```
    /// let props = kcl_properties::Properties::parse(b"applicationName = app \n");
    /// assert_eq!(props.text("applicationName"), Ok(Some("app ")));
    /// ```
    pub fn text(&self, name: &str) -> Result<Option<&str>, ValueError> {
        self.typed(name, "text", |value| match value {
            Value::Text(text) => Some(text),
            _ => None,
        })
    }

    /// An enum key: the name it applies, as [`KEYS`](crate::KEYS) spells it.
    ///
    /// ```
    /// let props = kcl_properties::Properties::parse(b"initialPositionInStream = trim_horizon\n");
    /// assert_eq!(props.choice("initialPositionInStream"), Ok(Some("TRIM_HORIZON")));
    /// ```
    pub fn choice(&self, name: &str) -> Result<Option<&'static str>, ValueError> {
        self.typed(name, "one of names", |value| match value {
            Value::Choice(choice) => Some(choice),
            _ => None,
        })
    }

    /// An ISO-8601 duration key.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, ValueError> {
        self.typed(name, "a duration", |value| match value {
            Value::Duration(duration) => Some(duration),
            _ => None,
        })
    }

    /// An epoch-seconds key (`initialPositionInStreamExtended`).
    ///
    /// ```
    /// let props = kcl_properties::Properties::parse(b"initialPositionInStreamExtended = 1700000000\n");
    /// assert_eq!(props.epoch_seconds("initialPositionInStreamExtended"), Ok(Some(1_700_000_000)));
    /// ```
    pub fn epoch_seconds(&self, name: &str) -> Result<Option<i64>, ValueError> {
        self.typed(name, "epoch seconds", |value| match value {
            Value::EpochSeconds(seconds) => Some(seconds),
            _ => None,
        })
    }

    fn typed<'a, T>(
        &'a self,
        name: &str,
        wanted: &'static str,
        pick: impl Fn(Value<'a>) -> Option<T>,
    ) -> Result<Option<T>, ValueError> {
        let key = lookup(name).ok_or_else(|| ValueError::UnknownKey(name.to_string()))?;
        let probe = match key.kind {
            Kind::Text | Kind::Region | Kind::Url | Kind::Credentials | Kind::NoEffect => {
                Value::Text("")
            }
            Kind::Int | Kind::Long | Kind::BoxedInt | Kind::BoxedLong => Value::Int(0),
            Kind::Double => Value::Double(0.0),
            Kind::Bool | Kind::BoxedBool => Value::Bool(false),
            Kind::Enum(_) => Value::Choice(""),
            Kind::Duration => Value::Duration(Duration::ZERO),
            Kind::EpochSeconds => Value::EpochSeconds(0),
        };
        if pick(probe).is_none() {
            return Err(ValueError::WrongKind {
                key: key.name,
                kind: key.kind,
                wanted,
            });
        }
        Ok(self
            .read(name)?
            .and_then(|reading| reading.applied())
            .and_then(pick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_entry_wins_and_credentials_keys_ignore_case() {
        let props = Properties::parse(
            b"AwsCredentialsProvider = A\nAWSCREDENTIALSPROVIDER = B\nmaxRecords = 1\nmaxRecords = 0\n",
        );
        assert_eq!(props.text("AwsCredentialsProvider"), Ok(Some("B")));
        assert_eq!(props.int("maxRecords"), Ok(None));
        assert_eq!(props.unknown().count(), 0);
        assert_eq!(
            props.read("nope"),
            Err(ValueError::UnknownKey("nope".into()))
        );
    }

    #[test]
    fn refused_values_name_their_line() {
        let props = Properties::parse(b"# c\nretrievalMode = polling \n");
        let error = props.choice("retrievalMode").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 2: retrievalMode = \"polling \": expected one of POLLING, FANOUT, DEFAULT (the daemon does not trim it)"
        );
        assert!(matches!(
            props.int("retrievalMode"),
            Err(ValueError::WrongKind { .. })
        ));
    }
}
