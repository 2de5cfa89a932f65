//! Getting the jars into a folder: from a Maven-layout repository (HTTP(S), `file://` or a local
//! path) or from another folder, each checked against its pinned SHA-256 (and a size cap) before
//! it is renamed into place.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::manifest::{Jar, Manifest};
use super::repo_url::{Credentials, MAX_REDIRECTS, Repository, redact};
use super::verify::{PARTIAL_TAG, extra_jars, hex, partial_downloads, sha256_file};
use crate::fsutil::TempFile;

use crate::error::{Error, Result};

/// The mode of a jar this tool downloads (readable by the JVM of any user; it holds no secret).
const JAR_MODE: u32 = 0o644;

/// A temporary download file untouched for this long is stale even if a process with its id
/// runs (process ids are reused).
const STALE_AFTER: Duration = Duration::from_secs(600);

/// How to fetch.
#[derive(Clone, Debug)]
pub(super) struct FetchOptions {
    /// Repository root: `http(s)://...`, `file://...` or a folder in Maven layout.
    pub repo: String,
    /// Credentials for an HTTP(S) repository from `KCL_MAVEN_USERNAME` / `KCL_MAVEN_PASSWORD`.
    pub credentials: Option<Credentials>,
    /// Send credentials over plain `http://` to a host other than this machine.
    pub allow_insecure_auth: bool,
    /// The size cap of a jar whose size the manifest does not pin.
    pub max_jar_size: u64,
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
pub(super) struct FetchSummary {
    /// Jars that were already present and valid.
    pub present: usize,
    /// Jars downloaded or copied.
    pub fetched: usize,
    /// Bytes downloaded or copied.
    pub bytes: u64,
}

/// Brings every jar of `manifest` into `dir`; all problems are collected and reported together.
/// Temporary files of interrupted downloads are removed first, and jars the manifest does not
/// list are reported at the end.
pub(super) fn fetch(
    manifest: &Manifest,
    dir: &Path,
    options: &FetchOptions,
) -> Result<FetchSummary> {
    let source = Source::new(options)?;
    fs::create_dir_all(dir).map_err(|e| Error::file("create the folder", dir, e))?;
    if !options.offline {
        remove_stale_partials(dir, options)?;
    }
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
    warn_about_extras(manifest, dir, options);
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
            source.shown()
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

/// Removes the temporary files of downloads whose process is gone (or that nobody has written
/// to for [`STALE_AFTER`]); a download that may still be running is left alone.
fn remove_stale_partials(dir: &Path, options: &FetchOptions) -> Result<()> {
    let partial = partial_downloads(dir).map_err(|e| Error::file("read", dir, e))?;
    for (path, pid) in partial {
        let idle = fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .unwrap_or_default();
        if pid != std::process::id() && process_runs(pid) && idle < STALE_AFTER {
            note(
                options,
                format!(
                    "warning: leaving {}: process {pid} may still be downloading it",
                    path.display()
                ),
            );
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => note(
                options,
                format!(
                    "removed {}, left by an interrupted download",
                    path.display()
                ),
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::file("remove", &path, e)),
        }
    }
    Ok(())
}

/// Whether a process with this id exists (on other systems than Unix: assumed so).
fn process_runs(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: signal 0 sends nothing; kill only checks that the process exists.
        let result = unsafe { libc::kill(pid, 0) };
        result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Warns about jar files in `dir` that the manifest does not list.
fn warn_about_extras(manifest: &Manifest, dir: &Path, options: &FetchOptions) {
    let Ok(extra) = extra_jars(manifest, dir) else {
        return;
    };
    if extra.is_empty() {
        return;
    }
    let names: Vec<String> = extra.iter().map(|p| p.display().to_string()).collect();
    note(
        options,
        format!(
            "warning: {} jar(s) in {} are not in the list of KCL {} (they would join the classpath of `java -cp DIR/*`; remove them):\n  {}",
            extra.len(),
            dir.display(),
            manifest.name,
            names.join("\n  ")
        ),
    );
}

/// Where jars come from.
enum Source {
    Http {
        agent: ureq::Agent,
        repo: Repository,
    },
    Folder {
        base: PathBuf,
        flat: bool,
    },
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
        let text = options.repo.trim();
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let repo = Repository::parse(text, options.credentials.clone())?;
            if !options.offline {
                repo.check_transport(options.allow_insecure_auth)?;
            }
            return Ok(Source::Http {
                agent: http_agent(options.timeout, repo.is_https()),
                repo,
            });
        }
        if text.contains("://") && !lower.starts_with("file://") {
            return Err(Error::usage_hint(
                format!("unsupported repository URL {}", redact(text)),
                "use http://, https://, file:// or a folder path",
            ));
        }
        let path = text.get(7..).filter(|_| lower.starts_with("file://"));
        Ok(Source::Folder {
            base: PathBuf::from(path.unwrap_or(text)),
            flat: false,
        })
    }

    /// The repository as displayed (credentials redacted).
    fn shown(&self) -> String {
        match self {
            Source::Http { repo, .. } => repo.shown().to_string(),
            Source::Folder { base, .. } => base.display().to_string(),
        }
    }

    /// Puts `jar` at `target` (checked, atomically); returns its size, or a problem.
    fn get(
        &self,
        jar: &Jar,
        target: &Path,
        options: &FetchOptions,
    ) -> std::result::Result<u64, String> {
        let cap = Cap::of(jar, options);
        match self {
            Source::Folder { base, flat } => {
                let source = if *flat {
                    base.join(jar.file_name())
                } else {
                    base.join(jar.repository_path())
                };
                let file = File::open(&source)
                    .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
                install(file, jar, target, cap).map_err(Attempt::into_problem)
            }
            Source::Http { agent, repo } => {
                let url = repo.url(&jar.repository_path());
                let mut delay = options.retry_delay;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match download(agent, repo, &url, jar, target, cap) {
                        Ok(bytes) => return Ok(bytes),
                        Err(Attempt::Final(problem)) => return Err(problem),
                        Err(Attempt::Retry(problem)) if attempt > options.retries => {
                            return Err(format!("{problem} (after {attempt} attempts)"));
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

/// The most bytes a jar may have, and where that limit comes from.
#[derive(Clone, Copy, Debug)]
struct Cap {
    bytes: u64,
    pinned: bool,
}

impl Cap {
    /// The size the manifest pins, else `--max-jar-size`.
    fn of(jar: &Jar, options: &FetchOptions) -> Cap {
        match jar.size {
            Some(bytes) => Cap {
                bytes,
                pinned: true,
            },
            None => Cap {
                bytes: options.max_jar_size,
                pinned: false,
            },
        }
    }

    /// What the limit is, for messages.
    fn describe(&self) -> String {
        if self.pinned {
            format!("the {} bytes the manifest pins for it", self.bytes)
        } else {
            format!(
                "the size cap of {} bytes (--max-jar-size; raise it if this jar really is larger)",
                self.bytes
            )
        }
    }
}

/// Why a download attempt failed: worth another attempt or not.
enum Attempt {
    Retry(String),
    Final(String),
}

impl Attempt {
    fn into_problem(self) -> String {
        match self {
            Attempt::Retry(problem) | Attempt::Final(problem) => problem,
        }
    }
}

/// The HTTP client: redirects are followed by hand (see [`download`]), so ureq follows none;
/// an https repository allows https only.
fn http_agent(timeout: Duration, https_only: bool) -> ureq::Agent {
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
        .max_redirects(0)
        .https_only(https_only)
        .user_agent(concat!("kcl-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// One attempt at `url`, following up to [`MAX_REDIRECTS`] redirects. The repository's
/// credentials go only to its own host and port ([`Repository::authorization`]); an https
/// repository is never followed to http.
fn download(
    agent: &ureq::Agent,
    repo: &Repository,
    start: &str,
    jar: &Jar,
    target: &Path,
    cap: Cap,
) -> std::result::Result<u64, Attempt> {
    let mut url = start.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let shown = repo.show(&url);
        let mut request = agent.get(&url);
        if let Some(authorization) = repo.authorization(&url) {
            request = request.header("Authorization", &authorization);
        }
        let response = request
            .call()
            .map_err(|e| Attempt::Retry(format!("GET {shown}: {e}")))?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            301 | 302 | 303 | 307 | 308 => {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        Attempt::Final(format!(
                            "GET {shown}: HTTP {status} without a usable Location header"
                        ))
                    })?;
                url = repo
                    .redirect(&url, location)
                    .map_err(|problem| Attempt::Final(format!("GET {shown}: {problem}")))?;
                continue;
            }
            404 | 410 => {
                return Err(Attempt::Final(format!(
                    "not found at {shown} (HTTP {status})"
                )));
            }
            500..=599 | 408 | 429 => {
                return Err(Attempt::Retry(format!("GET {shown}: HTTP {status}")));
            }
            _ => return Err(Attempt::Final(format!("GET {shown}: HTTP {status}"))),
        }
        let announced = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(length) = announced.filter(|&length| length > cap.bytes) {
            return Err(Attempt::Final(format!(
                "GET {shown}: the server announces {length} bytes (Content-Length), more than {}; not downloaded",
                cap.describe()
            )));
        }
        return install(response.into_body().into_reader(), jar, target, cap);
    }
    Err(Attempt::Final(format!(
        "GET {}: too many redirects (more than {MAX_REDIRECTS})",
        repo.show(start)
    )))
}

/// Copies `source` to a temporary file next to `target` while hashing it, then renames it into
/// place if the SHA-256 matches; otherwise the temporary file is deleted. Reading stops past
/// `cap` bytes. A mismatch or a file over the cap is final; a read error is worth a retry.
fn install(
    source: impl Read,
    jar: &Jar,
    target: &Path,
    cap: Cap,
) -> std::result::Result<u64, Attempt> {
    let mut source = source.take(cap.bytes.saturating_add(1));
    // `.NAME.part-PID-N`, created exclusively (never through a planted link), removed on drop
    // unless persisted; `verify` and `fetch` recognise such leftovers by that name.
    let mut out = TempFile::beside(target, PARTIAL_TAG, JAR_MODE)
        .map_err(|e| Attempt::Retry(e.to_string()))?;
    let written = |e: io::Error| {
        Attempt::Retry(format!(
            "cannot write the download of {}: {e}",
            target.display()
        ))
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let read = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Attempt::Retry(format!(
                    "reading failed after {total} bytes: {e}"
                )));
            }
        };
        total += read as u64;
        if total > cap.bytes {
            return Err(Attempt::Final(format!(
                "larger than {}: stopped reading after {total} bytes; refusing the file",
                cap.describe()
            )));
        }
        hasher.update(&buffer[..read]);
        out.write_all(&buffer[..read]).map_err(written)?;
    }
    let actual = hex(&hasher.finalize());
    if actual != jar.sha256 {
        return Err(Attempt::Final(format!(
            "SHA-256 mismatch: got {actual}, expected {} ({total} bytes); refusing the file",
            jar.sha256
        )));
    }
    out.persist().map_err(written)?;
    Ok(total)
}
