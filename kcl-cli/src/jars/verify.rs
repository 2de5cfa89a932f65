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
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a folder holds compared with a manifest.
#[derive(Debug, Default)]
pub struct Report {
    /// Listed jars present with the right SHA-256 (or present, if hashes were not checked).
    pub ok: Vec<Jar>,
    /// Listed jars that are absent.
    pub missing: Vec<Jar>,
    /// Listed jars whose file has another SHA-256: (jar, the file's SHA-256).
    pub mismatched: Vec<(Jar, String)>,
    /// `.jar` files in the folder that the manifest does not list.
    pub extra: Vec<PathBuf>,
}

impl Report {
    /// Whether every listed jar is present and valid (extra jars aside).
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.mismatched.is_empty()
    }

    /// One line per problem.
    pub fn problems(&self) -> Vec<String> {
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
        lines
    }
}

/// Checks `dir` against `manifest`; with `hashes` false only presence is checked.
pub fn verify_dir(manifest: &Manifest, dir: &Path, hashes: bool) -> io::Result<Report> {
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
        let mut extra = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".jar") && manifest.by_file_name(&name).is_none() {
                extra.push(entry.path());
            }
        }
        extra.sort();
        report.extra = extra;
    }
    Ok(report)
}
