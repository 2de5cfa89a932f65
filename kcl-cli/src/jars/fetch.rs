//! Getting the jars into a folder: from a Maven-layout repository (HTTP(S), `file://` or a local
//! path) or from another folder, each checked against its pinned SHA-256 before it is renamed
//! into place.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::manifest::{Jar, Manifest};
use super::verify::{hex, sha256_file};
use crate::error::{Error, Result};

/// How to fetch.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Repository root: `http(s)://...`, `file://...` or a folder in Maven layout.
    pub repo: String,
    /// Copy from this flat folder (`artifact-version.jar` files) instead.
    pub from: Option<PathBuf>,
    /// Only check what is already there.
    pub offline: bool,
    /// Extra attempts per jar on network errors and 5xx answers.
    pub retries: u32,
    /// Time limit of one download attempt.
    pub timeout: Duration,
    /// Wait before the first retry (doubled each time, at most 8 s).
    pub retry_delay: Duration,
    /// Print progress to stderr.
    pub verbose: bool,
}

/// What `fetch` did.
#[derive(Debug, Default)]
pub struct FetchSummary {
    /// Jars that were already present and valid.
    pub present: usize,
    /// Jars downloaded or copied.
    pub fetched: usize,
    /// Bytes downloaded or copied.
    pub bytes: u64,
}

/// Brings every jar of `manifest` into `dir`; all problems are collected and reported together.
pub fn fetch(manifest: &Manifest, dir: &Path, options: &FetchOptions) -> Result<FetchSummary> {
    fs::create_dir_all(dir).map_err(|e| Error::file("create the folder", dir, e))?;
    let source = Source::new(options)?;
    let mut summary = FetchSummary::default();
    let mut problems = Vec::new();
    let total = manifest.jars.len();
    for (index, jar) in manifest.jars.iter().enumerate() {
        let target = dir.join(jar.file_name());
        if target.is_file() {
            let actual = sha256_file(&target).map_err(|e| Error::file("read", &target, e))?;
            if actual == jar.sha256 {
                summary.present += 1;
                continue;
            }
            if options.offline {
                problems.push(format!(
                    "{}: SHA-256 mismatch (is {actual}, expected {})",
                    jar.file_name(),
                    jar.sha256
                ));
                continue;
            }
            note(
                options,
                format!("{}: wrong SHA-256, fetching it again", jar.file_name()),
            );
            fs::remove_file(&target).map_err(|e| Error::file("remove", &target, e))?;
        }
        if options.offline {
            problems.push(format!("{}: missing ({jar})", jar.file_name()));
            continue;
        }
        match source.get(jar, &target, options) {
            Ok(bytes) => {
                summary.fetched += 1;
                summary.bytes += bytes;
                note(
                    options,
                    format!(
                        "[{}/{total}] {} ({} KiB)",
                        index + 1,
                        jar.file_name(),
                        bytes.div_ceil(1024)
                    ),
                );
            }
            Err(problem) => problems.push(format!("{}: {problem}", jar.file_name())),
        }
    }
    if problems.is_empty() {
        return Ok(summary);
    }
    let hint = if options.offline {
        "run `kcl jars fetch` without --offline, or --from a folder that has the jars".to_string()
    } else if options.from.is_some() {
        "that folder does not hold this release's jars; check --release / --manifest".to_string()
    } else {
        format!(
            "check the repository ({}; set --repo or KCL_MAVEN_REPO), or copy the jars with --from DIR",
            options.repo
        )
    };
    Err(Error::failed_hint(
        format!(
            "{} of {total} jars could not be fetched into {}:\n  {}",
            problems.len(),
            dir.display(),
            problems.join("\n  ")
        ),
        hint,
    ))
}

fn note(options: &FetchOptions, message: String) {
    if options.verbose {
        eprintln!("{message}");
    }
}

/// Where jars come from.
enum Source {
    Http { agent: ureq::Agent, base: String },
    Folder { base: PathBuf, flat: bool },
}

impl Source {
    fn new(options: &FetchOptions) -> Result<Source> {
        if let Some(from) = &options.from {
            if !from.is_dir() {
                return Err(Error::usage(format!(
                    "--from {}: not a folder",
                    from.display()
                )));
            }
            return Ok(Source::Folder {
                base: from.clone(),
                flat: true,
            });
        }
        let repo = options.repo.trim();
        if repo.starts_with("http://") || repo.starts_with("https://") {
            let base = if repo.ends_with('/') {
                repo.to_string()
            } else {
                format!("{repo}/")
            };
            return Ok(Source::Http {
                agent: http_agent(options.timeout),
                base,
            });
        }
        let path = repo.strip_prefix("file://").unwrap_or(repo);
        if repo.contains("://") && !repo.starts_with("file://") {
            return Err(Error::usage_hint(
                format!("unsupported repository URL {repo}"),
                "use http://, https://, file:// or a folder path",
            ));
        }
        Ok(Source::Folder {
            base: PathBuf::from(path),
            flat: false,
        })
    }

    /// Puts `jar` at `target` (checked, atomically); returns its size, or a problem.
    fn get(
        &self,
        jar: &Jar,
        target: &Path,
        options: &FetchOptions,
    ) -> std::result::Result<u64, String> {
        match self {
            Source::Folder { base, flat } => {
                let source = if *flat {
                    base.join(jar.file_name())
                } else {
                    base.join(jar.repository_path())
                };
                let file = File::open(&source)
                    .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
                install(file, jar, target)
            }
            Source::Http { agent, base } => {
                let url = format!("{base}{}", jar.repository_path());
                let mut delay = options.retry_delay;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match download(agent, &url, jar, target) {
                        Ok(bytes) => return Ok(bytes),
                        Err(Attempt::Final(problem)) => return Err(problem),
                        Err(Attempt::Retry(problem)) if attempt > options.retries => {
                            return Err(format!("{problem} (after {attempt} attempts)"))
                        }
                        Err(Attempt::Retry(problem)) => {
                            note(
                                options,
                                format!(
                                    "{}: {problem}; retrying in {:.1} s",
                                    jar.file_name(),
                                    delay.as_secs_f64()
                                ),
                            );
                            std::thread::sleep(delay);
                            delay = (delay * 2).min(Duration::from_secs(8));
                        }
                    }
                }
            }
        }
    }
}

enum Attempt {
    Retry(String),
    Final(String),
}

fn http_agent(timeout: Duration) -> ureq::Agent {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(provider)
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(timeout))
        .timeout_connect(Some(Duration::from_secs(15)))
        .http_status_as_error(false)
        .user_agent(concat!("kcl-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

fn download(
    agent: &ureq::Agent,
    url: &str,
    jar: &Jar,
    target: &Path,
) -> std::result::Result<u64, Attempt> {
    let response = agent
        .get(url)
        .call()
        .map_err(|e| Attempt::Retry(format!("GET {url}: {e}")))?;
    let status = response.status().as_u16();
    match status {
        200 => {}
        404 | 410 => {
            return Err(Attempt::Final(format!(
                "not found at {url} (HTTP {status})"
            )))
        }
        500..=599 | 408 | 429 => return Err(Attempt::Retry(format!("GET {url}: HTTP {status}"))),
        _ => return Err(Attempt::Final(format!("GET {url}: HTTP {status}"))),
    }
    let reader = response.into_body().into_reader();
    install(reader, jar, target).map_err(|problem| {
        if problem.starts_with("SHA-256") {
            Attempt::Final(problem)
        } else {
            Attempt::Retry(problem)
        }
    })
}

/// Copies `source` to a temporary file next to `target` while hashing it, then renames it into
/// place if the SHA-256 matches; otherwise the temporary file is deleted.
fn install(mut source: impl Read, jar: &Jar, target: &Path) -> std::result::Result<u64, String> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(".{}.part-{}", jar.file_name(), std::process::id()));
    let result = (|| {
        let mut out =
            File::create(&temp).map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 128 * 1024];
        let mut total = 0u64;
        loop {
            let read = match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading failed after {total} bytes: {e}")),
            };
            hasher.update(&buffer[..read]);
            out.write_all(&buffer[..read])
                .map_err(|e| format!("cannot write {}: {e}", temp.display()))?;
            total += read as u64;
        }
        out.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", temp.display()))?;
        let actual = hex(&hasher.finalize());
        if actual != jar.sha256 {
            return Err(format!(
                "SHA-256 mismatch: got {actual}, expected {} ({total} bytes); refusing the file",
                jar.sha256
            ));
        }
        fs::rename(&temp, target).map_err(|e| {
            format!(
                "cannot rename {} to {}: {e}",
                temp.display(),
                target.display()
            )
        })?;
        Ok(total)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
