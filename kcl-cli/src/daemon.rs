//! `kcl daemon`: check the properties, the jars and Java, build the classpath ([`classpath`])
//! and the command line of the real MultiLangDaemon, then run it under `kcl` ([`supervise`]) or
//! print it. Every failure of `kcl` itself exits with [`Error::LAUNCHER_EXIT_CODE`]. With
//! `--native` it is the daemon itself, without Java ([`native_engine`]). Both check the
//! credentials first ([`check_credentials`]): a JVM takes 40 s to start and fails late on bad
//! ones.

mod args;
pub(crate) mod classpath;
mod native_engine;
// The parent-death signal (`prctl(2)`, `getppid(2)`) and `kill(2)` to forward signals.
#[allow(unsafe_code)]
pub(crate) mod supervise;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use kcl_native::run::credentials::CredentialsCheck;

pub(crate) use args::DaemonArgs;

use crate::error::{Error, Result};
use crate::jars::verify_dir;
use crate::properties;

/// The daemon's main class in KCL 2.x and 3.x.
pub(crate) const MAIN_CLASS: &str = "software.amazon.kinesis.multilang.MultiLangDaemon";

/// The oldest Java that runs the KCL 3.1.3 jars (all compiled for Java 8, class version 52).
pub(crate) const MIN_JAVA: u32 = 8;

/// The major version in `java -version` output (`1.8.0_392` is 8, `17.0.15` is 17).
pub(crate) fn java_major_version(output: &str) -> Option<u32> {
    let line = output.lines().find(|line| line.contains("version \""))?;
    let quoted = line.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '-', '_', '+']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

/// The java executable: `--java`, else `$JAVA_HOME/bin/java`, else `java` on PATH.
fn java_executable(explicit: Option<&Path>) -> PathBuf {
    if let Some(java) = explicit {
        return java.to_path_buf();
    }
    if let Some(home) = std::env::var_os("JAVA_HOME").filter(|v| !v.is_empty()) {
        let candidate = PathBuf::from(home).join("bin").join("java");
        if candidate.is_file() {
            return candidate;
        }
    }
    PathBuf::from("java")
}

/// Runs `java -version` and checks the major version.
fn check_java(java: &Path) -> Result<u32> {
    let output = Command::new(java)
        .arg("-version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::failed_hint(
                format!("cannot run {} -version: {e}", java.display()),
                "install Java (17 recommended, e.g. apt-get install openjdk-17-jre-headless), or pass --java PATH / set JAVA_HOME",
            )
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let Some(major) = java_major_version(&text) else {
        return Err(Error::failed_hint(
            format!(
                "{} -version printed no version: {}",
                java.display(),
                text.lines().next().unwrap_or("(nothing)")
            ),
            "pass --java with the path of a Java runtime",
        ));
    };
    if major < MIN_JAVA {
        return Err(Error::failed_hint(
            format!(
                "{} is Java {major}; the KCL 3 daemon needs Java {MIN_JAVA} or newer",
                java.display()
            ),
            "install a newer Java (17 is a good choice) and pass --java or set JAVA_HOME",
        ));
    }
    Ok(major)
}

/// Quotes a word for a POSIX shell when needed.
pub(crate) fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The daemon's command line: java, JVM options, classpath, main class, arguments.
pub(crate) fn command_line(
    java: &Path,
    java_opts: &[String],
    classpath: &str,
    properties: &Path,
    log_configuration: Option<&Path>,
) -> Vec<String> {
    let mut words = vec![java.display().to_string()];
    words.extend(java_opts.iter().cloned());
    words.push("-cp".into());
    words.push(classpath.into());
    words.push(MAIN_CLASS.into());
    words.push("--properties-file".into());
    words.push(properties.display().to_string());
    if let Some(log) = log_configuration {
        words.push("--log-configuration".into());
        words.push(log.display().to_string());
    }
    words
}

/// Runs `kcl daemon`; the exit code is the daemon's, or [`Error::LAUNCHER_EXIT_CODE`] if `kcl`
/// refused to start it (or could not).
pub(crate) fn command(args: DaemonArgs) -> Result<ExitCode> {
    if args.native {
        return native_engine::run(&args.properties, !args.no_credentials_check);
    }
    let words = prepare(&args).map_err(Error::launcher)?;
    if args.print_command {
        let quoted: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        println!("{}", quoted.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    supervise::run(&words)
}

/// Runs the checks and returns the daemon's command line.
fn prepare(args: &DaemonArgs) -> Result<Vec<String>> {
    if !args.properties.is_file() {
        return Err(Error::usage_hint(
            format!("{}: no such file", args.properties.display()),
            "write one with `kcl properties --stream ... --application ... --executable ... -o FILE`",
        ));
    }
    let entries = properties::read_file(&args.properties)?;
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current folder", e))?;
    let findings: Vec<_> = properties::check(&entries, &cwd)
        .into_iter()
        .filter(|f| f.level >= properties::Level::Warning)
        .collect();
    if properties::report(&findings, &args.properties.display().to_string()) > 0 {
        return Err(Error::failed_hint(
            format!("{} would not work", args.properties.display()),
            format!(
                "fix the errors above (kcl properties --check {})",
                args.properties.display()
            ),
        ));
    }
    // Before the jars and Java: a JVM that would fail 40 s later on credentials is not started,
    // and the check needs neither.
    if !args.print_command && !args.no_credentials_check {
        let properties = kcl_properties::Properties::load(&args.properties)
            .map_err(|e| Error::file("read", &args.properties, e.source))?;
        check_credentials(&CredentialsCheck::java_daemon(&properties), "kcl daemon")?;
    }
    // The daemon looks `--properties-file` up as a classpath resource first; a canonical
    // absolute path is found by no classpath entry, so the daemon reads exactly this file.
    let properties = args
        .properties
        .canonicalize()
        .map_err(|e| Error::file("resolve", &args.properties, e))?;
    if let Some(log) = &args.log_configuration
        && !log.is_file()
    {
        return Err(Error::usage(format!("{}: no such file", log.display())));
    }
    let manifest = args.set.manifest()?;
    let dir = args.set.folder(args.jars.as_deref())?;
    let report =
        verify_dir(&manifest, &dir, !args.no_verify).map_err(|e| Error::file("read", &dir, e))?;
    if !report.complete() {
        let mut problems = report.problems();
        problems.retain(|p| !p.starts_with("not in the list"));
        return Err(Error::failed_hint(
            format!(
                "the jars in {} are not the KCL {} set:\n  {}",
                dir.display(),
                manifest.name,
                problems.join("\n  ")
            ),
            format!(
                "run `kcl jars fetch{}` (or `kcl jars fetch --from DIR` to copy them from an amazon_kclpy install)",
                if args.jars.is_some() || args.set.dir.is_some() {
                    format!(" --dir {}", dir.display())
                } else {
                    String::new()
                }
            ),
        ));
    }
    let cp = classpath::build(&manifest, &dir, &args.classpath)?;
    let log_configuration = match &args.log_configuration {
        Some(log) => Some(log.clone()),
        None => shipped_log_configuration(&dir),
    };
    let java = java_executable(args.java.as_deref());
    let major = check_java(&java)?;
    if !args.print_command {
        eprintln!(
            "kcl daemon: Java {major}, {} jars of KCL {} from {}, properties {}",
            manifest.jars.len(),
            manifest.name,
            dir.canonicalize().unwrap_or_else(|_| dir.clone()).display(),
            properties.display()
        );
    }
    Ok(command_line(
        &java,
        &args.java_opt,
        &cp,
        &properties,
        log_configuration.as_deref(),
    ))
}

/// Runs the credentials check and prints one line per service to stderr (`WHO: credentials for
/// Kinesis: environment variables (AKIA…, does not expire)`), then each note once; fails when
/// Kinesis or DynamoDB has none, with what was tried and how to fix it.
pub(crate) fn check_credentials(check: &CredentialsCheck, who: &str) -> Result<()> {
    let report = check.run_blocking().map_err(|error| {
        Error::failed_hint(
            error.to_string(),
            format!(
                "{}; or pass --no-credentials-check to start without this check (a JVM with its own, e.g. -Daws.accessKeyId through --java-opt)",
                error.hint()
            ),
        )
    })?;
    let mut notes: Vec<&str> = Vec::new();
    for line in report.services() {
        let warning = if line.is_warning() { "warning: " } else { "" };
        eprintln!(
            "{who}: {warning}credentials for {}: {}",
            line.service(),
            line.outcome()
        );
        for note in line.notes() {
            if !notes.contains(&note.as_str()) {
                notes.push(note);
            }
        }
    }
    for note in notes {
        eprintln!("{who}: note: {note}");
    }
    Ok(())
}

/// The logback configuration `kcl daemon` ships (see the file's comment: the daemon's own, without
/// the ERROR-level copy of every stderr line of a child).
pub(crate) const SHIPPED_LOGBACK: &str = include_str!("daemon/logback.xml");

/// Where the shipped configuration is written: next to the jars it configures.
pub(crate) const SHIPPED_LOGBACK_FILE: &str = "kcl-logback.xml";

/// Writes the shipped logback configuration into the jar folder (unless it is there already) and
/// returns its path; where the folder is not writable, says so and returns `None` (the daemon then
/// uses its bundled configuration).
fn shipped_log_configuration(jars: &Path) -> Option<PathBuf> {
    let path = jars
        .canonicalize()
        .unwrap_or_else(|_| jars.to_path_buf())
        .join(SHIPPED_LOGBACK_FILE);
    if std::fs::read(&path).ok().as_deref() == Some(SHIPPED_LOGBACK.as_bytes()) {
        return Some(path);
    }
    // Written aside and renamed into place, so that a daemon starting at the same moment reads the
    // whole file, old or new, never half of it.
    let aside = path.with_extension(format!("xml.{}", std::process::id()));
    let written = std::fs::write(&aside, SHIPPED_LOGBACK)
        .and_then(|()| std::fs::rename(&aside, &path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&aside);
        });
    match written {
        Ok(()) => Some(path),
        Err(error) => {
            eprintln!(
                "kcl daemon: warning: cannot write {} ({error}): the daemon's bundled logback configuration is used, which logs every stderr line of a child at ERROR; pass --log-configuration FILE",
                path.display()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XML forbids `--` inside a comment, and logback refuses the whole file (the daemon then
    /// exits at start): the shipped configuration's comments must not hold one.
    #[test]
    fn the_shipped_logback_configuration_is_well_formed_where_logback_is_strict() {
        let mut rest = SHIPPED_LOGBACK;
        let mut comments = 0;
        while let Some(start) = rest.find("<!--") {
            let end = rest[start + 4..].find("-->").expect("a closed comment") + start + 4;
            assert!(
                !rest[start + 4..end].contains("--"),
                "`--` in a comment: {}",
                &rest[start..end + 3]
            );
            rest = &rest[end + 3..];
            comments += 1;
        }
        assert!(comments > 0);
        assert!(SHIPPED_LOGBACK.trim_start().starts_with("<?xml"));
        assert!(SHIPPED_LOGBACK.trim_end().ends_with("</configuration>"));
        assert!(SHIPPED_LOGBACK.contains(
            r#"<logger name="software.amazon.kinesis.multilang.DrainChildSTDERRTask" level="OFF"/>"#
        ));
    }

    #[test]
    fn java_versions() {
        assert_eq!(
            java_major_version(r#"openjdk version "17.0.15" 2025-04-15"#),
            Some(17)
        );
        assert_eq!(java_major_version(r#"java version "1.8.0_392""#), Some(8));
        assert_eq!(
            java_major_version(r#"openjdk version "25-ea" 2025-09-16"#),
            Some(25)
        );
        assert_eq!(java_major_version("command not found"), None);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("plain/path-1.jar"), "plain/path-1.jar");
        assert_eq!(shell_quote("it's here"), r#"'it'\''s here'"#);
    }
}
