//! Checking a jar folder against a manifest.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{Jar, Manifest};

/// Lower-case hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of bytes.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a folder holds compared with a manifest.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Listed jars present with the right SHA-256 (or present, if hashes were not checked).
    pub ok: Vec<Jar>,
    /// Listed jars that are absent.
    pub missing: Vec<Jar>,
    /// Listed jars whose file has another SHA-256: (jar, the file's SHA-256).
    pub mismatched: Vec<(Jar, String)>,
    /// `.jar` files (in any letter case) in the folder that the manifest does not list.
    pub extra: Vec<PathBuf>,
    /// Temporary files of downloads in progress or interrupted (`.NAME.part-PID`).
    pub partial: Vec<PathBuf>,
}

impl Report {
    /// Whether every listed jar is present and valid (extra jars aside).
    pub(crate) fn complete(&self) -> bool {
        self.missing.is_empty() && self.mismatched.is_empty()
    }

    /// One line per problem.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for jar in &self.missing {
            lines.push(format!("missing: {} ({jar})", jar.file_name()));
        }
        for (jar, actual) in &self.mismatched {
            lines.push(format!(
                "SHA-256 mismatch: {} is {actual}, expected {}",
                jar.file_name(),
                jar.sha256
            ));
        }
        for path in &self.extra {
            lines.push(format!("not in the list: {}", path.display()));
        }
        for path in &self.partial {
            lines.push(format!(
                "interrupted download: {} (remove it; `kcl jars fetch` removes it when its process is gone)",
                path.display()
            ));
        }
        lines
    }
}

/// Checks `dir` against `manifest`; with `hashes` false only presence is checked.
pub(crate) fn verify_dir(manifest: &Manifest, dir: &Path, hashes: bool) -> io::Result<Report> {
    let mut report = Report::default();
    for jar in &manifest.jars {
        let path = dir.join(jar.file_name());
        if !path.is_file() {
            report.missing.push(jar.clone());
        } else if !hashes {
            report.ok.push(jar.clone());
        } else {
            let actual = sha256_file(&path)?;
            if actual == jar.sha256 {
                report.ok.push(jar.clone());
            } else {
                report.mismatched.push((jar.clone(), actual));
            }
        }
    }
    if dir.is_dir() {
        report.extra = extra_jars(manifest, dir)?;
        report.partial = partial_downloads(dir)?
            .into_iter()
            .map(|(path, _)| path)
            .collect();
    }
    Ok(report)
}

/// Whether `java -cp 'DIR/*'` would take a file of this name: it ends with `.jar` in any letter
/// case (Java takes `.jar` and `.JAR`).
pub(super) fn is_jar_name(name: &str) -> bool {
    let name = name.as_bytes();
    name.len() > 4 && name[name.len() - 4..].eq_ignore_ascii_case(b".jar")
}

/// The jar files in `dir` (see [`is_jar_name`]) that `manifest` does not list, sorted.
pub(super) fn extra_jars(manifest: &Manifest, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut extra = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_jar_name(&name) && manifest.by_file_name(&name).is_none() {
            extra.push(entry.path());
        }
    }
    extra.sort();
    Ok(extra)
}

/// The tag of a download's temporary file: `.NAME.jar.part-PID-N` (made by
/// [`crate::fsutil::TempFile::beside`]; older versions wrote `.NAME.jar.part-PID`).
pub(crate) const PARTIAL_TAG: &str = "part";

/// The process id in a temporary download name (`.NAME.jar.part-PID`, optionally followed by
/// `-N` and `-RANDOM`, see [`PARTIAL_TAG`]).
fn partial_pid(name: &str) -> Option<u32> {
    let (stem, rest) = name
        .strip_prefix('.')?
        .rsplit_once(&format!(".{PARTIAL_TAG}-"))?;
    let mut parts = rest.split('-');
    let pid = parts.next()?;
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_jar_name(stem) || !pid.bytes().all(|b| b.is_ascii_digit()) || !parts.all(digits) {
        return None;
    }
    pid.parse().ok()
}

/// The temporary download files in `dir` with the id of the process that wrote them, sorted.
pub(crate) fn partial_downloads(dir: &Path) -> io::Result<Vec<(PathBuf, u32)>> {
    let mut partial = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(pid) = partial_pid(&entry.file_name().to_string_lossy()) {
            partial.push((entry.path(), pid));
        }
    }
    partial.sort();
    Ok(partial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jar_names_in_any_case_and_partial_names() {
        assert!(is_jar_name("a.jar") && is_jar_name("Evil.JAR") && is_jar_name("x.Jar"));
        assert!(!is_jar_name(".jar") && !is_jar_name("a.jar.part-1") && !is_jar_name("ajar"));
        assert!(!is_jar_name("a\u{20ac}"));
        assert_eq!(partial_pid(".thing-1.0.jar.part-999"), Some(999));
        assert_eq!(partial_pid(".thing-1.0.jar.part-999-3"), Some(999));
        assert_eq!(
            partial_pid(".thing-1.0.jar.part-999-3-00ff12ab34cd56ef"),
            Some(999)
        );
        assert_eq!(partial_pid(".thing-1.0.jar.part-999-"), None);
        assert_eq!(partial_pid(".thing-1.0.JAR.part-12"), Some(12));
        assert_eq!(partial_pid("thing-1.0.jar.part-12"), None);
        assert_eq!(partial_pid(".thing.txt.part-12"), None);
        assert_eq!(partial_pid(".thing.jar.part-x"), None);
    }
}
