//! `kcl jars`: the MultiLangDaemon's jars, pinned by SHA-256 ([`Manifest`]), fetched from a
//! Maven-layout repository or a folder (`fetch`), and checked (`verify_dir`). Classpaths
//! are joined by `classpath::join`, which refuses entries holding the separator.

mod args;
pub(crate) mod classpath;
// `kill(pid, 0)`: whether the process that left a partial download still runs.
#[allow(unsafe_code)]
mod fetch;
mod manifest;
mod repo_url;
mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use args::{JarSet, JarsArgs};
pub use manifest::{Jar, Manifest};
pub use verify::sha256_file;
pub(crate) use verify::verify_dir;

use args::{FetchArgs, JarsCommand, PathArgs, VerifyArgs};
use fetch::{FetchOptions, fetch};

use crate::error::{Error, Result};

/// The KCL release whose jar list is used by default.
pub(crate) const DEFAULT_RELEASE: &str = "3.1.3";

/// Maven Central.
pub(crate) const DEFAULT_REPO: &str = "https://repo1.maven.org/maven2/";

/// The default jar folder of a release: `$KCL_JARS_DIR`, else `$XDG_CACHE_HOME/kcl/jars/<release>`,
/// else `~/.cache/kcl/jars/<release>`.
pub(crate) fn default_dir(release: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("KCL_JARS_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".cache"),
            None => {
                return Err(Error::usage_hint(
                    "cannot tell where the jar cache is: HOME is not set",
                    "pass --dir DIR or set KCL_JARS_DIR",
                ));
            }
        },
    };
    Ok(cache.join("kcl").join("jars").join(release))
}

impl JarSet {
    /// The manifest chosen by `--manifest` / `--release`.
    pub(crate) fn manifest(&self) -> Result<Manifest> {
        Manifest::select(self.manifest.as_deref(), &self.release)
    }

    /// The folder: `explicit`, else `--dir`, else the default cache folder.
    pub(crate) fn folder(&self, explicit: Option<&Path>) -> Result<PathBuf> {
        match explicit.or(self.dir.as_deref()) {
            Some(dir) => Ok(dir.to_path_buf()),
            None => default_dir(&self.release),
        }
    }
}

/// Runs `kcl jars ...`.
pub(crate) fn command(args: JarsArgs) -> Result<()> {
    match args.command {
        JarsCommand::Fetch(args) => fetch_command(args),
        JarsCommand::Verify(args) => verify_command(args),
        JarsCommand::Path(args) => path_command(args),
    }
}

fn fetch_command(args: FetchArgs) -> Result<()> {
    let manifest = args.set.manifest()?;
    let dir = args.set.folder(None)?;
    let options = FetchOptions {
        repo: args.repo,
        credentials: repo_url::Credentials::from_env(),
        allow_insecure_auth: args.allow_insecure_auth,
        max_jar_size: args.max_jar_size,
        from: args.from,
        offline: args.offline,
        retries: args.retries,
        timeout: Duration::from_secs(args.timeout.max(1)),
        retry_delay: retry_delay(),
        verbose: !args.quiet,
    };
    let summary = fetch(&manifest, &dir, &options)?;
    if !args.quiet {
        eprintln!(
            "{} jars of KCL {} in {} ({} fetched, {} KiB; {} already there)",
            manifest.jars.len(),
            manifest.name,
            dir.display(),
            summary.fetched,
            summary.bytes.div_ceil(1024),
            summary.present
        );
    }
    println!("{}", dir.display());
    Ok(())
}

/// The first retry's delay: 1 s, or `KCL_FETCH_RETRY_DELAY_MS` (tests use a short one).
fn retry_delay() -> Duration {
    std::env::var("KCL_FETCH_RETRY_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(1))
}

fn verify_command(args: VerifyArgs) -> Result<()> {
    let manifest = args.set.manifest()?;
    let dir = args.set.folder(args.folder.as_deref())?;
    if !dir.is_dir() {
        return Err(Error::failed_hint(
            format!("{} is not a folder", dir.display()),
            "fetch the jars first: kcl jars fetch",
        ));
    }
    let report = verify_dir(&manifest, &dir, true).map_err(|e| Error::file("read", &dir, e))?;
    let problems = report.problems();
    if problems.is_empty() {
        println!(
            "ok: {} holds the {} jars of KCL {}, all with the pinned SHA-256",
            dir.display(),
            report.ok.len(),
            manifest.name
        );
        return Ok(());
    }
    for problem in &problems {
        println!("{problem}");
    }
    Err(Error::failed_hint(
        format!(
            "{} does not match the jar list of KCL {}: {} missing, {} mismatched, {} extra, {} interrupted downloads",
            dir.display(),
            manifest.name,
            report.missing.len(),
            report.mismatched.len(),
            report.extra.len(),
            report.partial.len()
        ),
        "run `kcl jars fetch` to repair missing or corrupt jars (it also removes interrupted downloads); remove extra jars (they would join the classpath of `java -cp DIR/*`)",
    ))
}

fn path_command(args: PathArgs) -> Result<()> {
    let manifest = args.set.manifest()?;
    let dir = args.set.folder(None)?;
    if args.classpath {
        let report = verify_dir(&manifest, &dir, !args.no_verify)
            .map_err(|e| Error::file("read", &dir, e))?;
        if !report.complete() {
            let mut problems = report.problems();
            problems.retain(|line| line.starts_with("missing") || line.starts_with("SHA-256"));
            return Err(Error::failed_hint(
                format!(
                    "no classpath: {} of the {} jars of KCL {} in {} are missing or do not have the pinned SHA-256:\n  {}",
                    report.missing.len() + report.mismatched.len(),
                    manifest.jars.len(),
                    manifest.name,
                    dir.display(),
                    problems.join("\n  ")
                ),
                "run `kcl jars fetch` (it fetches missing jars and replaces corrupt ones)",
            ));
        }
        println!("{}", classpath(&manifest, &dir, &[])?);
    } else {
        println!("{}", dir.display());
    }
    Ok(())
}

/// The classpath: `extra` entries, then every jar of the manifest in `dir`, joined by
/// `classpath::join` (an entry holding the separator is refused).
pub(crate) fn classpath(manifest: &Manifest, dir: &Path, extra: &[PathBuf]) -> Result<String> {
    classpath::join(
        extra
            .iter()
            .cloned()
            .chain(manifest.jars.iter().map(|jar| dir.join(jar.file_name()))),
    )
}

/// Parses a size in bytes for `--max-jar-size`: a number with an optional `K`, `M` or `G`
/// suffix (powers of 1024).
pub(crate) fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let (number, shift) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 10),
        Some((i, 'm' | 'M')) => (&text[..i], 20),
        Some((i, 'g' | 'G')) => (&text[..i], 30),
        _ => (text, 0),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            format!("`{text}` is not a size: give bytes, or a number with K, M or G (e.g. 64M)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
    }
}
