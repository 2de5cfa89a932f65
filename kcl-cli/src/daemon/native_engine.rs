//! `kcl daemon --native`: the MultiLangDaemon without Java. The same properties file and the
//! same children (`executableName`, any language), on the native engine's lease coordinator
//! and reader (`kcl_native::multilang::ChildProcesses` on `kcl_native::run_blocking`), with
//! the daemon's lease table: a Java daemon resumes what it wrote, and the reverse.

use std::path::Path;
use std::process::ExitCode;

use kcl_native::config::Level;
use kcl_native::multilang::ChildProcesses;
use kcl_native::run::credentials::CredentialsCheck;

use crate::error::{Error, Result};

/// Runs the native daemon on `path` until SIGINT or SIGTERM (exit 0 after a graceful stop),
/// or until it fails (exit 1: a child failed as the Java daemon exits 1, or the tables or the
/// stream could not be used). A file the engine cannot use exits with
/// [`Error::LAUNCHER_EXIT_CODE`] before anything starts, and so do missing credentials (unless
/// `check_credentials` is false; the engine then finds them at start, or fails). The engine
/// signs with the source the check reported (the same check runs in the engine, see
/// `kcl_native::run::credentials`).
pub(crate) fn run(path: &Path, check_credentials: bool) -> Result<ExitCode> {
    let (properties, config, warnings) =
        crate::native::load(path, "kcl native --check").map_err(Error::launcher)?;
    let children = ChildProcesses::from_properties(&properties).map_err(|error| {
        Error::failed_hint(
            format!("{}: {error}", path.display()),
            "set executableName to the child's command, as for the Java daemon",
        )
        .launcher()
    })?;
    if let Some(problem) = crate::native::program_problem(&children.command()[0]) {
        return Err(Error::failed(format!("{}: {problem}", path.display())).launcher());
    }
    let source = path.display().to_string();
    for warning in warnings
        .iter()
        .filter(|w| w.level == Level::Warning && w.key.as_deref() != Some("executableName"))
    {
        eprintln!("{source}: {warning}");
    }
    if check_credentials {
        super::check_credentials(&CredentialsCheck::native(&config), "kcl daemon --native")
            .map_err(Error::launcher)?;
    }
    eprintln!(
        "kcl daemon --native: application {}, stream {}, worker {}; one child per lease: {}",
        config.application_name(),
        config.stream_name(),
        config.worker_id(),
        children
            .command()
            .iter()
            .map(|w| super::shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    );
    match kcl_native::run_blocking(config, children) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("kcl daemon --native: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}
