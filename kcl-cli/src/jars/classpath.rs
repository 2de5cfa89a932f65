//! Joining classpath entries for `java -cp`: the one place that decides what an entry may hold.
//!
//! Java has no escape for its classpath separator, so a folder named `a:b` would be split into
//! the entries `a` and `b`, and what runs would not be what was verified. Every classpath that
//! `kcl` builds goes through [`join`], which refuses such entries.

use std::path::Path;

use crate::error::{Error, Result};

/// The platform's classpath separator: `:`, or `;` on Windows.
pub(crate) const SEPARATOR: char = if cfg!(windows) { ';' } else { ':' };

/// Joins `entries` with [`SEPARATOR`], refusing (with a usage error naming the entry) any entry
/// that is empty, is not valid UTF-8, or contains the separator.
pub(crate) fn join<P: AsRef<Path>>(entries: impl IntoIterator<Item = P>) -> Result<String> {
    let mut joined = String::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let entry = entry.as_ref();
        let text = check(entry)?;
        if index > 0 {
            joined.push(SEPARATOR);
        }
        joined.push_str(text);
    }
    Ok(joined)
}

/// The entry as text, or the reason it cannot be a classpath entry.
fn check(entry: &Path) -> Result<&str> {
    let fix = "rename or move that folder so that its path has no such character, or choose \
               another one (--dir, --jars, --classpath, KCL_JARS_DIR or XDG_CACHE_HOME)";
    let Some(text) = entry.to_str() else {
        return Err(Error::usage_hint(
            format!(
                "classpath entry {} is not valid UTF-8, so it cannot be passed to java as it is",
                entry.display()
            ),
            fix,
        ));
    };
    if text.is_empty() {
        return Err(Error::usage_hint(
            "an empty classpath entry would put the current folder on the classpath",
            "give a folder or jar path",
        ));
    }
    if text.contains(SEPARATOR) {
        let parts: Vec<&str> = text.split(SEPARATOR).collect();
        return Err(Error::usage_hint(
            format!(
                "classpath entry {text} contains `{SEPARATOR}`, Java's classpath separator: java \
                 would read it as the separate entries {}, not the file kcl checked",
                parts.join(" and ")
            ),
            fix,
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_with_the_separator_are_refused_by_name() {
        let bad = format!("/x/a{SEPARATOR}b/thing.jar");
        let error = join(["/ok.jar", bad.as_str()]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains(&bad), "{error}");
        assert!(error.hint().unwrap().contains("rename or move"));
        assert!(join([""]).is_err());
        assert_eq!(join(Vec::<&Path>::new()).unwrap(), "");
        assert_eq!(join(["/a.jar"]).unwrap(), "/a.jar");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_entries_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"/x/\xff.jar"));
        assert!(join([path]).is_err());
    }

    #[test]
    fn join_examples() {
        assert_eq!(
            join(["/jars/a.jar", "/jars/b.jar"]).unwrap(),
            "/jars/a.jar:/jars/b.jar"
        );
        assert!(join(["/tmp/a:b/x.jar"]).is_err());
    }
}
