//! `kcl native`: check a properties file for the native (Java-free) engine, then run the
//! application's own binary on it.
//!
//! The processor code lives in the user's binary, not in `kcl`, so `kcl native` does what
//! `kcl daemon` does for the daemon: it checks the file the way the native engine reads it
//! (`kcl_native::config::NativeConfig::from_properties`: the keys it honours, ignores or refuses),
//! then starts the program of `executableName` (split on spaces, as the daemon does) with the
//! arguments `native FILE` appended, which a `#[kcl::main]` binary built with the `kcl` feature
//! `native` understands. The program runs under `kcl` as the daemon does
//! (`daemon::supervise`): SIGINT and SIGTERM are forwarded to it once each (a graceful stop,
//! then a stop at once), and its exit code is `kcl`'s.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use kcl_native::config::{Level, NativeConfig, Warning};
use kcl_properties::Properties;

use crate::daemon::{shell_quote, supervise};
use crate::error::{Error, Result};

/// Shown at the end of `--help`.
const EXAMPLES: &str = "\
Examples:
  kcl native --properties app.properties --check
  kcl native --properties app.properties
  kcl native --properties app.properties --print-command

The program is the properties' executableName (split on spaces, looked up on PATH, relative
paths from the current folder), started with `native FILE` appended: a #[kcl::main] binary built
with the kcl crate's feature `native` runs the native engine then. `kcl native` forwards SIGINT
and SIGTERM to it: the first stops it gracefully (final checkpoints, leases released), a second
at once.

Exit codes:
  125    kcl did not start the program (a file the native engine cannot use, no executableName, ...)
  2      the command line is wrong (an unknown flag, a missing value)
  1      --check found errors
  other  the program's own exit code (128 + N if signal N ended it)";

/// `kcl native`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct NativeArgs {
    /// The MultiLangDaemon's properties file (the native engine reads the same file).
    #[arg(long, short, value_name = "FILE")]
    pub properties: PathBuf,

    /// Only check the file for the native engine (errors, warnings and notes, then a summary);
    /// run nothing.
    #[arg(long, conflicts_with = "print_command")]
    pub check: bool,

    /// Print the program's command line (shell-quoted) instead of running it.
    #[arg(long)]
    pub print_command: bool,
}

/// What the file gives the native engine.
struct Checked {
    config: NativeConfig,
    warnings: Vec<Warning>,
    /// The program and its arguments, `native FILE` included; `None` without `executableName`.
    command: Option<Vec<String>>,
}

/// Runs `kcl native`.
pub(crate) fn command(args: NativeArgs) -> Result<ExitCode> {
    if args.check {
        return check_command(&args.properties).map(|()| ExitCode::SUCCESS);
    }
    let checked = check(&args.properties).map_err(Error::launcher)?;
    let Some(words) = checked.command else {
        return Err(no_executable(&args.properties).launcher());
    };
    if args.print_command {
        let quoted: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        println!("{}", quoted.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    let warnings = checked
        .warnings
        .iter()
        .filter(|w| w.level == Level::Warning)
        .count();
    eprintln!(
        "kcl native: application {}, stream {}, worker {}{}; running {}",
        checked.config.application_name(),
        checked.config.stream_name(),
        checked.config.worker_id(),
        if warnings > 0 {
            format!(
                " ({warnings} warnings: kcl native --check --properties {})",
                args.properties.display()
            )
        } else {
            String::new()
        },
        words
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    );
    supervise::run(&words)
}

fn no_executable(path: &Path) -> Error {
    Error::failed_hint(
        format!(
            "{}: no executableName: kcl native runs the application's binary",
            path.display()
        ),
        format!(
            "set executableName to your #[kcl::main] binary (built with the kcl feature `native`), or run it yourself: BINARY native {}",
            path.display()
        ),
    )
}

/// `kcl native --check`: every finding on stderr, a summary on stdout.
fn check_command(path: &Path) -> Result<()> {
    let checked = check(path)?;
    let source = path.display().to_string();
    for warning in &checked.warnings {
        eprintln!("{source}: {warning}");
    }
    let count = |level| checked.warnings.iter().filter(|w| w.level == level).count();
    let (warnings, notes) = (count(Level::Warning), count(Level::Note));
    let Some(words) = checked.command else {
        println!("{source}: native engine: 1 error, {warnings} warnings, {notes} notes");
        return Err(no_executable(path));
    };
    if let Some(problem) = program_problem(&words[0]) {
        eprintln!("{source}: error: {problem}");
        println!("{source}: native engine: 1 error, {warnings} warnings, {notes} notes");
        return Err(Error::failed(format!(
            "{source}: kcl native would not start {}",
            words[0]
        )));
    }
    if words.len() > 3 {
        eprintln!(
            "{source}: note: executableName has arguments: kcl native appends `native FILE` after them, and a #[kcl::main] binary reads `native` only as its first argument (a wrapper such as `env X=1 ./app` is fine)"
        );
    }
    println!(
        "{source}: native engine: 0 errors, {warnings} warnings, {notes} notes; application {}, stream {}, lease table {}; kcl native runs: {}",
        checked.config.application_name(),
        checked.config.stream_name(),
        checked.config.table_name(),
        words
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// Reads `path` as the native engine does, and builds the program's command line.
fn check(path: &Path) -> Result<Checked> {
    let (properties, config, mut warnings) = load(path, "kcl native --check")?;
    // kcl-native notes that the engine itself starts no child; `kcl native` does start
    // executableName (once, with `native FILE`), and says so in its own words.
    warnings.retain(|w| w.key.as_deref() != Some("executableName"));
    // The program gets the canonical path: it may change its folder, and the file is the same.
    let absolute = path
        .canonicalize()
        .map_err(|e| Error::file("resolve", path, e))?;
    let command = properties
        .get("executableName")
        .and_then(kcl_properties::command_words)
        .filter(|words| !words.is_empty())
        .map(|mut words| {
            words.push("native".into());
            words.push(absolute.display().to_string());
            words
        });
    Ok(Checked {
        config,
        warnings,
        command,
    })
}

/// The properties file at `path`, the native engine's configuration from it and its findings;
/// `checker` is the command that lists them.
pub(crate) fn load(path: &Path, checker: &str) -> Result<(Properties, NativeConfig, Vec<Warning>)> {
    if !path.is_file() {
        return Err(Error::usage_hint(
            format!("{}: no such file", path.display()),
            "write one with `kcl properties --stream ... --application ... --executable ... --retrieval-mode polling -o FILE`",
        ));
    }
    let properties = Properties::load(path).map_err(|e| Error::failed(e.to_string()))?;
    let (config, warnings) = NativeConfig::from_properties(&properties).map_err(|e| {
        Error::failed_hint(
            format!(
                "{}: the native engine cannot run with this file: {e}",
                path.display()
            ),
            format!("fix it ({checker} --properties {})", path.display()),
        )
    })?;
    Ok((properties, config, warnings))
}

/// Why `program` could not be started from here, if it could not.
pub(crate) fn program_problem(program: &str) -> Option<String> {
    if program.contains('/') {
        let found = Path::new(program).is_file();
        (!found).then(|| {
            format!(
                "the program {program} does not exist (relative paths are from the current folder)"
            )
        })
    } else {
        crate::properties::find_on_path(program)
            .is_none()
            .then(|| format!("the program {program} is not on PATH"))
    }
}
