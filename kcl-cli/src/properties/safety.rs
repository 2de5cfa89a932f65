//! Settings that put the credentials, the records or the child program at risk: plain-HTTP
//! endpoints to other hosts, secrets written into the file, a child program others can replace,
//! and a path with spaces that the daemon would split into a different program.

use std::path::{Path, PathBuf};

use super::check::{Findings, Level, find_on_path};
use super::endpoint;
use kcl_properties::Entry;

/// Whether `key` names an endpoint (`kinesisEndpoint`, `dynamoDBEndpoint`, or any other key
/// ending in `Endpoint`, whatever the case).
fn is_endpoint_key(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("endpoint")
}

/// Whether a key's name says it holds a secret (`secret`, `password` or `token`, any case).
fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    ["secret", "password", "token"]
        .iter()
        .any(|word| lower.contains(word))
}

/// Whether `value` holds an AWS access key id: `AKIA` (long-term) or `ASIA` (temporary) and 16
/// upper-case letters or digits.
fn has_access_key_id(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.windows(20).any(|window| {
        (window.starts_with(b"AKIA") || window.starts_with(b"ASIA"))
            && window[4..]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

/// Warns about one entry: a plain-HTTP endpoint to another host, or a secret. Secrets are
/// never repeated in the message.
pub(super) fn check_entry(found: &mut Findings, entry: &Entry) {
    let line = Some(entry.line);
    if is_endpoint_key(&entry.key)
        && let Some(host) = endpoint::plain_http_to_other_host(&entry.value)
    {
        found.add(
                Level::Warning,
                line,
                format!(
                    "{} = {} {}: records, request signatures and any session token cross the network in clear; use https:// (plain http:// only for an emulator on 127.0.0.1 or localhost)",
                    entry.key,
                    entry.value.trim(),
                    endpoint::plain_http_words(host)
                ),
            );
    }
    let advice = "a properties file is often readable by others and kept in version control; remove it and let AwsCredentialsProvider find the credentials (environment, profile, instance role)";
    if is_secret_key(&entry.key) {
        found.add(
            Level::Warning,
            line,
            format!(
                "{} looks like a secret: a properties file should not hold one ({advice})",
                entry.key
            ),
        );
    } else if has_access_key_id(&entry.value) {
        found.add(
            Level::Warning,
            line,
            format!(
                "the value of {} looks like an AWS access key id (AKIA.../ASIA...): a properties file should not hold credentials ({advice})",
                entry.key
            ),
        );
    }
}

/// Warns about the child program of `executableName` (already split on spaces into `parts`):
/// a longer, space-holding prefix of the raw value that names a file (the daemon would run
/// `parts[0]` instead), and a program or folder that others may write to.
pub(super) fn check_program(
    found: &mut Findings,
    raw: &str,
    parts: &[&str],
    line: Option<usize>,
    base: &Path,
) {
    let program = parts[0];
    if let Some(path_with_spaces) = file_with_spaces(raw, base) {
        found.add(
            Level::Warning,
            line,
            format!(
                "the file {path_with_spaces} exists, but the daemon splits executableName on spaces and would run {program} with the arguments {}; move or link the program to a path without spaces",
                parts[1..].join(" ")
            ),
        );
    }
    let path = if program.contains('/') {
        Some(normalized(&base.join(program)))
    } else {
        find_on_path(program)
    };
    if let Some(path) = path {
        let shown = if program.contains('/') {
            program.to_string()
        } else {
            format!("{program} ({})", path.display())
        };
        check_writable(found, &path, &shown, line);
    }
}

/// The longest prefix of `raw`, cut at a space and still holding one, that names a file from
/// `base`.
fn file_with_spaces<'a>(raw: &'a str, base: &Path) -> Option<&'a str> {
    let ends = raw.match_indices(' ').map(|(at, _)| at).chain([raw.len()]);
    let mut prefixes: Vec<&str> = ends
        .map(|end| raw[..end].trim_end_matches(' '))
        .filter(|prefix| prefix.trim_start_matches(' ').contains(' '))
        .collect();
    prefixes.dedup();
    prefixes
        .into_iter()
        .rev()
        .find(|prefix| base.join(prefix).is_file())
}

/// `path` without `.` components (for messages).
fn normalized(path: &Path) -> PathBuf {
    path.components().collect()
}

#[cfg(unix)]
fn check_writable(found: &mut Findings, path: &Path, shown: &str, line: Option<usize>) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| {
        path.metadata()
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    };
    let who = |mode: u32| {
        if mode & 0o002 != 0 {
            Some("world-writable")
        } else if mode & 0o020 != 0 {
            Some("group-writable")
        } else {
            None
        }
    };
    let Some(file_mode) = mode(path) else {
        return; // not there: reported elsewhere
    };
    if let Some(who) = who(file_mode) {
        found.add(
            Level::Warning,
            line,
            format!(
                "the child program {shown} is {who} (mode {:o}): others can change what the daemon runs; chmod go-w {}",
                file_mode,
                path.display()
            ),
        );
    }
    let mut folders: Vec<PathBuf> = path.parent().map(Path::to_path_buf).into_iter().collect();
    if let Some(real) = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        && !folders.contains(&real)
    {
        folders.push(real);
    }
    for folder in folders {
        let Some(folder_mode) = mode(&folder) else {
            continue;
        };
        if let Some(who) = who(folder_mode) {
            found.add(
                Level::Warning,
                line,
                format!(
                    "the folder {} of the child program {shown} is {who} (mode {:o}): others can replace the program; chmod go-w {}",
                    folder.display(),
                    folder_mode & 0o7777,
                    folder.display()
                ),
            );
        }
    }
}

#[cfg(not(unix))]
fn check_writable(_: &mut Findings, _: &Path, _: &str, _: Option<usize>) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_and_access_key_ids() {
        for key in [
            "aws.secretAccessKey",
            "dbPassword",
            "AWS_SESSION_TOKEN",
            "TokenFile",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["AwsCredentialsProvider", "streamName", "kinesisEndpoint"] {
            assert!(!is_secret_key(key), "{key}");
        }
        assert!(has_access_key_id("AKIAIOSFODNN7EXAMPLE"));
        assert!(has_access_key_id("id=ASIAIOSFODNN7EXAMPLE;"));
        assert!(!has_access_key_id("AKIAIOSFODNN7EXAMPL"));
        assert!(!has_access_key_id("AKIAiosfodnn7example"));
        assert!(!has_access_key_id("é AKIA"));
        assert!(is_endpoint_key("cloudWatchEndpoint") && !is_endpoint_key("endpoints"));
    }

    #[test]
    fn prefixes_with_spaces() {
        let dir = std::env::temp_dir().join(format!("kcl-safety-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a b")).unwrap();
        std::fs::write(dir.join("a b/c d"), "").unwrap();
        std::fs::write(dir.join("a"), "").unwrap();
        assert_eq!(file_with_spaces("a b/c d --x", &dir), Some("a b/c d"));
        assert_eq!(file_with_spaces("a b/c d", &dir), Some("a b/c d"));
        assert_eq!(file_with_spaces("a  b/c  d", &dir), None);
        assert_eq!(file_with_spaces("a --x", &dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
