//! `kcl properties`: write a MultiLangDaemon properties file from flags, or check one.
//!
//! The daemon is unforgiving in silent ways (docs/protocol.md §5): unknown keys are ignored, `0`
//! and `false` are ignored for number and switch keys (the KCL default stays), a malformed number
//! becomes 0 and is ignored too, and without `retrievalMode` it uses enhanced fan-out. The
//! [`check`] function finds these; the writer refuses or flags them.
//!
//! One job per file: the flags (`args.rs`), the checker (`check.rs`, with `safety.rs` and
//! `endpoint.rs`), the writer from flags (`write.rs`); this file holds the two commands. The
//! `.properties` format and the daemon's keys are the crate `kcl_properties`, which the native
//! engine reads the same file with.

use std::path::Path;

use crate::error::{Error, Result};

mod args;
mod check;
pub(crate) mod endpoint;
mod safety;
mod write;

pub(crate) use args::PropertiesArgs;
use check::Finding;
pub(crate) use check::{Level, check, find_on_path, report};
use kcl_properties::{Entry, parse};

/// Reads a properties file.
pub(crate) fn read_file(path: &Path) -> Result<Vec<Entry>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file("read", path, e))?;
    Ok(parse(&bytes))
}

/// The last value of `key` (exact name).
pub(crate) fn value<'a>(entries: &'a [Entry], key: &str) -> Option<&'a str> {
    entries
        .iter()
        .rev()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

/// Runs `kcl properties`.
pub(crate) fn command(args: PropertiesArgs) -> Result<()> {
    match &args.check {
        Some(path) => check_command(path),
        None => write_command(&args),
    }
}

fn check_command(path: &Path) -> Result<()> {
    let entries = read_file(path)?;
    let base =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current folder", e))?;
    let findings = check(&entries, &base);
    let errors = report(&findings, &path.display().to_string());
    let warnings = findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count();
    println!(
        "{}: {} keys, {errors} errors, {warnings} warnings",
        path.display(),
        entries.len()
    );
    if errors > 0 {
        return Err(Error::failed_hint(
            format!("{} would not work with the daemon", path.display()),
            "fix the errors above, or write a new file with `kcl properties --stream ... -o FILE`",
        ));
    }
    Ok(())
}

fn write_command(args: &PropertiesArgs) -> Result<()> {
    let lines = write::build(args)?;
    let text = write::render(&lines);
    let entries = parse(text.as_bytes());
    let base =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current folder", e))?;
    let findings: Vec<Finding> = check(&entries, &base)
        .into_iter()
        .filter(|f| f.level >= Level::Warning)
        .collect();
    let source = args
        .output
        .as_ref()
        .map_or("kcl properties".to_string(), |p| p.display().to_string());
    let errors = report(&findings, &source);
    if errors > 0 {
        return Err(Error::usage(
            "the properties would not work; nothing written",
        ));
    }
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            if path.exists() && !args.force {
                return Err(Error::usage_hint(
                    format!("{} exists", path.display()),
                    "pass --force to overwrite it",
                ));
            }
            crate::fsutil::write_atomically(path, text.as_bytes())
                .map_err(|e| Error::file("write", path, e))?;
            eprintln!("wrote {} ({} keys)", path.display(), entries.len());
        }
    }
    Ok(())
}
