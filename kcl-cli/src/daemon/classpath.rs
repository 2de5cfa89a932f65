//! The daemon's classpath: the `--classpath` entries, then the pinned jars, each one entry to
//! Java. Java has no escape for the path separator, so a path holding it is refused: `cp/a:b`
//! would become the two entries `cp/a` and `b/...`, and what ran would not be what was verified.
//! Nothing else joins the classpath (not the properties file's folder: whoever can write there
//! could add classes, logging configurations and service providers to the JVM that holds the
//! AWS credentials).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::jars::classpath::SEPARATOR;
use crate::jars::{Manifest, classpath};

/// The classpath for `manifest`'s jars in `jar_dir` after the `extra` entries. Every path is
/// made canonical (as java will see it) and refused if it holds [`SEPARATOR`], with a message
/// that says which of the daemon's inputs it came from; [`crate::jars::classpath::join`], the one
/// place every classpath is joined, refuses it too.
pub(crate) fn build(manifest: &Manifest, jar_dir: &Path, extra: &[PathBuf]) -> Result<String> {
    let extra: Vec<PathBuf> = extra
        .iter()
        .map(|path| {
            let path = canonical(path);
            refuse_separator(
                &path,
                "the --classpath entry",
                &format!("give each entry its own --classpath (-c), from a path without '{SEPARATOR}' (rename the file or folder, or link to it)"),
            )?;
            Ok(path)
        })
        .collect::<Result<_>>()?;
    let jar_dir = canonical(jar_dir);
    refuse_separator(
        &jar_dir,
        "the jar folder",
        &format!(
            "move or link the jars to a folder whose path has no '{SEPARATOR}', and pass it with --jars (or KCL_JARS_DIR)"
        ),
    )?;
    classpath(manifest, &jar_dir, &extra)
}

/// The canonical form of a path, or the path itself if it cannot be resolved (java reports a
/// missing `--classpath` entry no differently).
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// Refuses `path` (named `what`) if it holds [`SEPARATOR`].
fn refuse_separator(path: &Path, what: &str, hint: &str) -> Result<()> {
    if path.to_string_lossy().contains(SEPARATOR) {
        return Err(Error::usage_hint(
            format!(
                "{what} {} contains '{SEPARATOR}', which separates classpath entries (Java has no escape for it)",
                path.display()
            ),
            hint,
        ));
    }
    Ok(())
}
