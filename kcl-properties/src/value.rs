//! One value read by its [`Kind`], exactly as the daemon applies it ([`read`]).
//!
//! The daemon (`KinesisClientLibConfigurator`) hands every value, as text, to
//! commons-beanutils 1.11.0 (`BeanUtilsBean.setProperty` with a fresh `ConvertUtilsBean`), then
//! copies each field to the KCL's configuration objects only when it is not the Java default
//! of its type (`ConfigurationSettableUtils.resolveFields`: `value != null &&
//! !value.equals(Defaults.defaultValue(field.getType()))`). Hence:
//!
//! - numbers are trimmed and parsed as Java does (`new Integer(text.trim())`, ...); a malformed
//!   one becomes 0 (the converters are registered with default values, not to throw);
//! - a primitive field (`int`, `long`, `double`, `boolean`) holding 0 or `false` is never
//!   applied: the KCL default stays;
//! - a wrapper field (`Integer`, `Long`, `Boolean`) holding 0 or `false` *is* applied, even when
//!   it came from a malformed value;
//! - booleans are matched lower-cased but **not trimmed** (`BooleanConverter`): `true ` (with a
//!   space) is malformed;
//! - enums are upper-cased but not trimmed (`Enum.valueOf(text.toUpperCase())`, converters
//!   registered in `MultiLangDaemonConfiguration`); a value that names no constant stops the
//!   daemon;
//! - durations are trimmed and read by `java.time.Duration.parse`; a malformed or negative one
//!   stops the daemon (`DurationConverter`);
//! - `initialPositionInStreamExtended` is `Long.parseLong(text) * 1000` untrimmed; a malformed one
//!   stops the daemon;
//! - text is taken as it is, trailing spaces included.

use std::time::Duration;

use crate::keys::{Key, Kind};

/// A value as the daemon reads it.
///
/// ```
/// use kcl_properties::{Reading, Value, lookup, read};
/// let max_records = lookup("maxRecords").unwrap();
/// assert_eq!(read(max_records, " 500 "), Ok(Reading::Applied(Value::Int(500))));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Text, taken as it is ([`Kind::Text`], [`Kind::Region`], [`Kind::Url`],
    /// [`Kind::Credentials`], [`Kind::NoEffect`]).
    Text(&'a str),
    /// A whole number ([`Kind::Int`], [`Kind::Long`], [`Kind::BoxedInt`], [`Kind::BoxedLong`]).
    Int(i64),
    /// A floating-point number ([`Kind::Double`]).
    Double(f64),
    /// A switch ([`Kind::Bool`], [`Kind::BoxedBool`]).
    Bool(bool),
    /// One of an enum's names, as the table spells it ([`Kind::Enum`]).
    Choice(&'static str),
    /// A duration ([`Kind::Duration`]).
    Duration(Duration),
    /// Epoch seconds ([`Kind::EpochSeconds`]).
    EpochSeconds(i64),
}

/// What the daemon does with one value.
///
/// ```
/// use kcl_properties::{Ignored, Reading, Value, lookup, read};
/// let key = |name| lookup(name).unwrap();
/// // A Java `long` field: 0 is never applied.
/// assert_eq!(read(key("failoverTimeMillis"), "0"), Ok(Reading::Ignored(Ignored::Zero)));
/// // A Java `Boolean` field: a malformed value becomes `false`, and that applies.
/// assert_eq!(read(key("isGracefulLeaseHandoffEnabled"), "true "), Ok(Reading::Coerced(Value::Bool(false))));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reading<T> {
    /// The value applies.
    Applied(T),
    /// The daemon could not read the text, and applies this value instead: a wrapper type's
    /// converter falls back to 0 or `false`, which is not the wrapper's default (`null`).
    Coerced(T),
    /// The daemon ignores the value: the KCL default stays.
    Ignored(Ignored),
}

impl<T> Reading<T> {
    /// The value that applies (also a coerced one), or `None` when the default stays.
    ///
    /// ```
    /// use kcl_properties::{Ignored, Reading};
    /// assert_eq!(Reading::Coerced(0).applied(), Some(0));
    /// assert_eq!(Reading::<i64>::Ignored(Ignored::Zero).applied(), None);
    /// ```
    pub fn applied(self) -> Option<T> {
        match self {
            Reading::Applied(value) | Reading::Coerced(value) => Some(value),
            Reading::Ignored(_) => None,
        }
    }

    /// The reading with its value changed by `f`.
    ///
    /// ```
    /// use kcl_properties::Reading;
    /// assert_eq!(Reading::Applied(2).map(|n| n * 10), Reading::Applied(20));
    /// ```
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reading<U> {
        match self {
            Reading::Applied(value) => Reading::Applied(f(value)),
            Reading::Coerced(value) => Reading::Coerced(f(value)),
            Reading::Ignored(why) => Reading::Ignored(why),
        }
    }
}

/// Why the daemon ignores a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// `0` in a primitive number field (`int`, `long`, `double`).
    Zero,
    /// `false` in a primitive `boolean` field.
    False,
    /// Not a number or not a switch: the converter's fallback (0 or `false`) is a primitive's
    /// default, so nothing is applied.
    Malformed,
}

impl Ignored {
    /// Why, in words, for messages ("the daemon ignores {what} for this key").
    ///
    /// ```
    /// assert_eq!(kcl_properties::Ignored::Zero.what(), "0");
    /// ```
    pub fn what(self) -> &'static str {
        match self {
            Ignored::Zero => "0",
            Ignored::False => "false",
            Ignored::Malformed => "a value it cannot read",
        }
    }
}

/// Reads `raw`, the value of `key` in a properties file, as the daemon applies it; `Err` holds
/// why the daemon would stop at start (or at its first call) with this value.
///
/// ```
/// use kcl_properties::{Ignored, Reading, Value, lookup, read};
/// let key = |name| lookup(name).unwrap();
/// assert_eq!(read(key("maxRecords"), "ten"), Ok(Reading::Ignored(Ignored::Malformed)));
/// assert_eq!(read(key("initialPositionInStream"), "trim_horizon"), Ok(Reading::Applied(Value::Choice("TRIM_HORIZON"))));
/// assert!(read(key("initialPositionInStream"), "LATEST ").is_err());
/// assert_eq!(read(key("streamName"), "orders "), Ok(Reading::Applied(Value::Text("orders "))));
/// ```
pub fn read<'a>(key: &Key, raw: &'a str) -> Result<Reading<Value<'a>>, String> {
    let trimmed = java_trim(raw);
    match key.kind {
        Kind::Text | Kind::Credentials | Kind::NoEffect => Ok(Reading::Applied(Value::Text(raw))),
        Kind::Region => {
            if raw.is_empty() || raw.chars().any(char::is_whitespace) {
                Err("the daemon takes the region as it is, spaces included, and no region has them (it fails at its first call)".into())
            } else {
                Ok(Reading::Applied(Value::Text(raw)))
            }
        }
        Kind::Url => {
            let lower = raw.to_ascii_lowercase();
            if raw.chars().any(char::is_whitespace) {
                Err("an endpoint cannot hold spaces (the daemon's URI.create refuses it)".into())
            } else if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                Err("an endpoint needs http:// or https://".into())
            } else {
                Ok(Reading::Applied(Value::Text(raw)))
            }
        }
        Kind::Int | Kind::Long | Kind::BoxedInt | Kind::BoxedLong => {
            let parsed = match key.kind {
                Kind::Int | Kind::BoxedInt => trimmed.parse::<i32>().map(i64::from).ok(),
                _ => trimmed.parse::<i64>().ok(),
            };
            let boxed = matches!(key.kind, Kind::BoxedInt | Kind::BoxedLong);
            Ok(match (parsed, boxed) {
                (Some(0), false) => Reading::Ignored(Ignored::Zero),
                (Some(n), _) => Reading::Applied(Value::Int(n)),
                (None, false) => Reading::Ignored(Ignored::Malformed),
                (None, true) => Reading::Coerced(Value::Int(0)),
            })
        }
        Kind::Double => Ok(match java_double(trimmed) {
            // `Double.equals`: only +0.0 is the primitive default; -0.0 and NaN apply.
            Some(x) if x.to_bits() == 0 => Reading::Ignored(Ignored::Zero),
            Some(x) => Reading::Applied(Value::Double(x)),
            None => Reading::Ignored(Ignored::Malformed),
        }),
        Kind::Bool | Kind::BoxedBool => {
            let boxed = key.kind == Kind::BoxedBool;
            Ok(match (parse_bool(raw), boxed) {
                (Some(true), _) => Reading::Applied(Value::Bool(true)),
                (Some(false), true) => Reading::Applied(Value::Bool(false)),
                (Some(false), false) => Reading::Ignored(Ignored::False),
                (None, true) => Reading::Coerced(Value::Bool(false)),
                (None, false) => Reading::Ignored(Ignored::Malformed),
            })
        }
        Kind::Enum(names) => {
            let upper = raw.to_uppercase();
            names
                .iter()
                .find(|name| **name == upper)
                .map(|name| Reading::Applied(Value::Choice(name)))
                .ok_or_else(|| {
                    let spaces = if trimmed.len() != raw.len() {
                        " (the daemon does not trim it)"
                    } else {
                        ""
                    };
                    format!("expected one of {}{spaces}", names.join(", "))
                })
        }
        Kind::Duration => match parse_duration(trimmed) {
            Some(Ok(duration)) => Ok(Reading::Applied(Value::Duration(duration))),
            Some(Err(())) => Err("a duration cannot be negative".into()),
            None => Err("expected an ISO-8601 duration such as PT12H".into()),
        },
        Kind::EpochSeconds => raw
            .parse::<i64>()
            .map(|seconds| Reading::Applied(Value::EpochSeconds(seconds)))
            .map_err(|_| "expected epoch seconds (a whole number, no spaces)".into()),
    }
}

/// Java's `String.trim`: every character up to U+0020 goes, at both ends.
fn java_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c <= ' ')
}

/// `true`/`false` and the other spellings commons-beanutils' `BooleanConverter` accepts,
/// lower-cased, not trimmed.
fn parse_bool(text: &str) -> Option<bool> {
    match text.to_lowercase().as_str() {
        "true" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Java's `Double.valueOf` for decimal text (trimmed already): an optional sign, digits with an
/// optional fraction and exponent, an optional `f`/`d` suffix, or `NaN` / `Infinity`. Java's
/// hexadecimal floats are not read (they count as malformed here).
fn java_double(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned == "NaN" || unsigned == "Infinity" {
        return text.replace("Infinity", "inf").parse().ok();
    }
    let body = text.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(text);
    let digits_only = body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if !digits_only || !body.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    body.parse().ok()
}

/// `java.time.Duration.parse` (trimmed text): `[-+]PnDTnHnMn.nS`, case-insensitive, each part
/// optional (at least one), each number signed. `None` when malformed, `Some(Err)` when negative.
fn parse_duration(text: &str) -> Option<Result<Duration, ()>> {
    let upper = text.to_ascii_uppercase();
    let (negative, rest) = match upper.as_bytes().first() {
        Some(b'-') => (true, &upper[1..]),
        Some(b'+') => (false, &upper[1..]),
        _ => (false, upper.as_str()),
    };
    let rest = rest.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => {
            if time.is_empty() {
                return None;
            }
            (date, Some(time))
        }
        None => (rest, None),
    };
    let mut nanos: i128 = 0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, i128)]| -> Option<()> {
        let mut rest = part;
        let mut allowed = units;
        while !rest.is_empty() {
            let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
            let unit = rest[end..].chars().next()?;
            let position = allowed.iter().position(|(u, _)| *u == unit)?;
            let scale = allowed[position].1;
            allowed = &allowed[position + 1..];
            nanos += number(&rest[..end], scale, unit == 'S')?;
            any = true;
            rest = &rest[end + 1..];
        }
        Some(())
    };
    take(date, &[('D', 86_400_000_000_000)])?;
    if let Some(time) = time {
        take(
            time,
            &[
                ('H', 3_600_000_000_000),
                ('M', 60_000_000_000),
                ('S', 1_000_000_000),
            ],
        )?;
    }
    if !any {
        return None;
    }
    let total = if negative { -nanos } else { nanos };
    if total < 0 {
        return Some(Err(()));
    }
    let seconds = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Ok(Duration::new(seconds, (total % 1_000_000_000) as u32)))
}

/// One signed number of a duration part, in nanoseconds (`scale` per unit); seconds may carry
/// a fraction of up to nine digits after `.` or `,`.
fn number(text: &str, scale: i128, fraction: bool) -> Option<i128> {
    let (whole, part) = match text.split_once(['.', ',']) {
        Some((whole, part)) if fraction && part.len() <= 9 => (whole, Some(part)),
        Some(_) => return None,
        None => (text, None),
    };
    let (sign, digits) = match whole.as_bytes().first() {
        Some(b'-') => (-1, &whole[1..]),
        Some(b'+') => (1, &whole[1..]),
        _ => (1, whole),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value = digits.parse::<i128>().ok()?.checked_mul(scale)?;
    if let Some(part) = part {
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let padded = format!("{part:0<9}");
        value += padded.parse::<i128>().ok()?;
    }
    Some(sign * value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::lookup;

    fn of(name: &str, raw: &str) -> Result<Reading<Value<'static>>, String> {
        let raw: &'static str = Box::leak(raw.to_string().into_boxed_str());
        read(lookup(name).unwrap(), raw)
    }

    #[test]
    fn primitive_numbers_ignore_zero_and_malformed() {
        use Reading::*;
        assert_eq!(of("maxRecords", "0"), Ok(Ignored(super::Ignored::Zero)));
        assert_eq!(
            of("maxRecords", "ten"),
            Ok(Ignored(super::Ignored::Malformed))
        );
        assert_eq!(of("maxRecords", ""), Ok(Ignored(super::Ignored::Malformed)));
        // int overflows: malformed.
        assert_eq!(
            of("maxRecords", "2147483648"),
            Ok(Ignored(super::Ignored::Malformed))
        );
        assert_eq!(
            of("failoverTimeMillis", "2147483648"),
            Ok(Applied(Value::Int(2_147_483_648)))
        );
        assert_eq!(
            of("failoverTimeMillis", "\t+3000 "),
            Ok(Applied(Value::Int(3000)))
        );
        assert_eq!(of("failoverTimeMillis", "-5"), Ok(Applied(Value::Int(-5))));
        assert_eq!(
            of("failoverTimeMillis", "3e3"),
            Ok(Ignored(super::Ignored::Malformed))
        );
    }

    #[test]
    fn wrappers_apply_zero_and_coerce_malformed() {
        use Reading::*;
        assert_eq!(
            of("gracefulLeaseHandoffTimeoutMillis", "0"),
            Ok(Applied(Value::Int(0)))
        );
        assert_eq!(
            of("gracefulLeaseHandoffTimeoutMillis", "soon"),
            Ok(Coerced(Value::Int(0)))
        );
        assert_eq!(of("timeoutInSeconds", "x"), Ok(Coerced(Value::Int(0))));
        assert_eq!(
            of("isGracefulLeaseHandoffEnabled", "false"),
            Ok(Applied(Value::Bool(false)))
        );
        assert_eq!(
            of("isGracefulLeaseHandoffEnabled", "OFF"),
            Ok(Applied(Value::Bool(false)))
        );
        assert_eq!(
            of("isGracefulLeaseHandoffEnabled", "Yes"),
            Ok(Applied(Value::Bool(true)))
        );
        assert_eq!(
            of("isGracefulLeaseHandoffEnabled", "true "),
            Ok(Coerced(Value::Bool(false)))
        );
    }

    #[test]
    fn primitive_booleans_ignore_false_and_malformed() {
        use Reading::*;
        let name = "cleanupLeasesUponShardCompletion";
        assert_eq!(of(name, "false"), Ok(Ignored(super::Ignored::False)));
        assert_eq!(of(name, "n"), Ok(Ignored(super::Ignored::False)));
        assert_eq!(of(name, " true"), Ok(Ignored(super::Ignored::Malformed)));
        assert_eq!(of(name, "TRUE"), Ok(Applied(Value::Bool(true))));
    }

    #[test]
    fn doubles() {
        use Reading::*;
        let name = "maxThroughputPerHostKBps";
        assert_eq!(of(name, "0.0"), Ok(Ignored(super::Ignored::Zero)));
        assert_eq!(of(name, "-0"), Ok(Applied(Value::Double(-0.0))));
        assert_eq!(of(name, " 1.5d "), Ok(Applied(Value::Double(1.5))));
        assert_eq!(of(name, "1e3"), Ok(Applied(Value::Double(1000.0))));
        assert_eq!(
            of(name, "-Infinity"),
            Ok(Applied(Value::Double(f64::NEG_INFINITY)))
        );
        assert_eq!(of(name, "inf"), Ok(Ignored(super::Ignored::Malformed)));
        assert_eq!(of(name, "fast"), Ok(Ignored(super::Ignored::Malformed)));
        assert!(matches!(of(name, "NaN"), Ok(Applied(Value::Double(x))) if x.is_nan()));
    }

    #[test]
    fn enums_are_upper_cased_not_trimmed() {
        assert_eq!(
            of("retrievalMode", "polling"),
            Ok(Reading::Applied(Value::Choice("POLLING")))
        );
        let error = of("retrievalMode", "POLLING ").unwrap_err();
        assert!(error.contains("does not trim"), "{error}");
        assert!(of("retrievalMode", "").is_err());
        assert!(of("clientVersionConfig", "3X").is_err());
    }

    #[test]
    fn durations_as_java_reads_them() {
        let applied = |text: &str| match of("staleWorkerMetricsEntryCleanupDuration", text) {
            Ok(Reading::Applied(Value::Duration(d))) => Some(d),
            _ => None,
        };
        assert_eq!(applied("PT12H"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(
            applied(" p1dt30m "),
            Some(Duration::from_secs(86_400 + 1800))
        );
        assert_eq!(applied("PT1.5S"), Some(Duration::from_millis(1500)));
        assert_eq!(applied("PT-1H61M"), Some(Duration::from_secs(60)));
        assert_eq!(applied("-PT-1H"), Some(Duration::from_secs(3600)));
        for bad in [
            "", "P", "PT", "12H", "PT1H1H", "PT1M1H", "P1H", "PT1.5M", "PTS",
        ] {
            assert_eq!(applied(bad), None, "{bad}");
        }
        assert!(
            of("staleWorkerMetricsEntryCleanupDuration", "-PT1H")
                .unwrap_err()
                .contains("negative")
        );
    }

    #[test]
    fn epoch_seconds_region_and_urls() {
        assert_eq!(
            of("initialPositionInStreamExtended", "0"),
            Ok(Reading::Applied(Value::EpochSeconds(0)))
        );
        assert!(of("initialPositionInStreamExtended", " 1700000000").is_err());
        assert!(of("regionName", "us-east-1 ").is_err());
        assert!(of("regionName", "").is_err());
        assert!(of("kinesisEndpoint", "localhost:4567").is_err());
        assert!(of("kinesisEndpoint", "http://localhost:4567 ").is_err());
        assert_eq!(
            of("kinesisEndpoint", "HTTP://localhost:4567"),
            Ok(Reading::Applied(Value::Text("HTTP://localhost:4567")))
        );
    }
}
