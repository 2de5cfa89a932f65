//! The pinned jar lists: Maven coordinates and SHA-256 of every jar of a daemon release.

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};

/// KCL releases whose jar list is built in.
const BUILTIN: &[(&str, &str)] = &[("3.1.3", include_str!("kcl-3.1.3.txt"))];

/// One jar of the daemon's classpath.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jar {
    /// Maven groupId, e.g. `software.amazon.kinesis`.
    pub group: String,
    /// Maven artifactId.
    pub artifact: String,
    /// Maven version.
    pub version: String,
    /// Lower-case hex SHA-256 of the jar file.
    pub sha256: String,
    /// The jar's size in bytes, if the manifest pins it (then no download may exceed it).
    pub size: Option<u64>,
}

impl Jar {
    /// The file name in a jar folder: `artifact-version.jar`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.jar", self.artifact, self.version)
    }

    /// The path under a Maven repository root: `group/path/artifact/version/artifact-version.jar`.
    pub fn repository_path(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.group.replace('.', "/"),
            self.artifact,
            self.version,
            self.file_name()
        )
    }
}

impl fmt::Display for Jar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.group, self.artifact, self.version)
    }
}

/// A pinned list of jars.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// What the list is: a release number or a file name.
    pub name: String,
    /// The jars, in file order.
    pub jars: Vec<Jar>,
}

impl Manifest {
    /// The built-in list of a KCL release.
    pub fn builtin(release: &str) -> Result<Manifest> {
        let Some((_, text)) = BUILTIN.iter().find(|(name, _)| *name == release) else {
            let known: Vec<_> = BUILTIN.iter().map(|(name, _)| *name).collect();
            return Err(Error::usage_hint(
                format!("no built-in jar list for KCL {release}"),
                format!(
                    "known releases: {}; or pass --manifest FILE with lines `group:artifact:version sha256`",
                    known.join(", ")
                ),
            ));
        };
        Manifest::parse(release, text)
    }

    /// Reads a manifest file.
    pub(crate) fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file("read", path, e))?;
        Manifest::parse(&path.display().to_string(), &text)
    }

    /// The list chosen by `--manifest` or `--release`.
    pub(crate) fn select(manifest: Option<&Path>, release: &str) -> Result<Manifest> {
        match manifest {
            Some(path) => Manifest::load(path),
            None => Manifest::builtin(release),
        }
    }

    /// Parses lines `group:artifact:version sha256 [bytes]`; `#` starts a comment. The optional
    /// third field pins the jar's size in bytes.
    pub(crate) fn parse(name: &str, text: &str) -> Result<Manifest> {
        let mut jars: Vec<Jar> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |what: &str| {
                Error::usage(format!(
                    "{name}, line {}: {what} (expected `group:artifact:version sha256 [bytes]`): {raw}",
                    index + 1
                ))
            };
            let mut fields = line.split_whitespace();
            let (Some(coordinates), Some(sha256), size, None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("expected two or three fields"));
            };
            let size = match size {
                None => None,
                Some(size) => Some(
                    size.parse::<u64>()
                        .map_err(|_| bad("the size must be a number of bytes"))?,
                ),
            };
            let parts: Vec<&str> = coordinates.split(':').collect();
            let [group, artifact, version] = parts[..] else {
                return Err(bad("coordinates need three parts"));
            };
            if [group, artifact, version]
                .iter()
                .any(|part| part.is_empty() || part.contains(['/', '\\']) || part.contains(".."))
            {
                return Err(bad("invalid coordinates"));
            }
            if group.split('.').any(str::is_empty) {
                return Err(bad(
                    "invalid group: a leading or trailing `.`, or an empty part between dots",
                ));
            }
            let sha256 = sha256.to_ascii_lowercase();
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("the SHA-256 must be 64 hex digits"));
            }
            let jar = Jar {
                group: group.into(),
                artifact: artifact.into(),
                version: version.into(),
                sha256,
                size,
            };
            if jars.iter().any(|j| j.file_name() == jar.file_name()) {
                return Err(bad("listed twice"));
            }
            jars.push(jar);
        }
        if jars.is_empty() {
            return Err(Error::usage(format!("{name}: the jar list is empty")));
        }
        Ok(Manifest {
            name: name.into(),
            jars,
        })
    }

    /// The jar with this file name, if listed.
    pub(crate) fn by_file_name(&self, file_name: &str) -> Option<&Jar> {
        self.jars.iter().find(|jar| jar.file_name() == file_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_list_has_the_multilang_daemon() {
        let manifest = Manifest::builtin("3.1.3").unwrap();
        assert_eq!(manifest.jars.len(), 79);
        let daemon = manifest
            .by_file_name("amazon-kinesis-client-multilang-3.1.3.jar")
            .unwrap();
        assert_eq!(
            daemon.repository_path(),
            "software/amazon/kinesis/amazon-kinesis-client-multilang/3.1.3/amazon-kinesis-client-multilang-3.1.3.jar"
        );
        assert!(Manifest::builtin("9.9.9").is_err());
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        for text in [
            "g:a:1 abc",
            "g:a 0000000000000000000000000000000000000000000000000000000000000000",
            "g:../a:1 0000000000000000000000000000000000000000000000000000000000000000",
            ".tmp:a:1 0000000000000000000000000000000000000000000000000000000000000000",
            "org.:a:1 0000000000000000000000000000000000000000000000000000000000000000",
            "g:a:1 0000000000000000000000000000000000000000000000000000000000000000 12k",
            "g:a:1 0000000000000000000000000000000000000000000000000000000000000000 1 2",
            "",
        ] {
            assert!(Manifest::parse("t", text).is_err(), "{text}");
        }
        let twice = "g:a:1 0000000000000000000000000000000000000000000000000000000000000000\n\
                     h:a:1 0000000000000000000000000000000000000000000000000000000000000000";
        let error = Manifest::parse("t", twice).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn a_third_field_pins_the_size_and_groups_have_no_empty_parts() {
        let sha = "0".repeat(64);
        let m = Manifest::parse("t", &format!("g.h:a:1 {sha} 1234\ng:b:1 {sha}")).unwrap();
        assert_eq!(m.jars[0].size, Some(1234));
        assert_eq!(m.jars[1].size, None);
        let error = Manifest::parse("m.txt", &format!("a.b:c:1 {sha}\n.tmp:art:1 {sha}"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("m.txt, line 2: invalid group: a leading or trailing `.`"),
            "{error}"
        );
    }

    #[test]
    fn parse_example() {
        let sha = "0".repeat(64);
        let m = Manifest::parse("test", &format!("# a comment\ng.h:art:1.0 {sha}\n")).unwrap();
        assert_eq!(m.jars[0].repository_path(), "g/h/art/1.0/art-1.0.jar");
    }
}
