//! What a process does once to become a daemon child: logging to stderr, the daemon's pipes moved
//! to private descriptors, SIGINT and SIGTERM handled.

use std::io;

/// Prepares this process to be a MultiLangDaemon child; [`Runtime::run`](crate::Runtime::run)
/// calls it, and calling it again does nothing.
///
/// - installs a `tracing` subscriber on stderr ([`init_logging`](crate::init_logging)) unless
///   one is set;
/// - moves the daemon's stdin and stdout to private close-on-exec descriptors: descriptor 1
///   becomes a copy of stderr (`println!` lands there) and descriptor 0 becomes `/dev/null`
///   (`std::io::stdin()` reads end of file at once, and programs the processor starts cannot
///   take the daemon's lines);
/// - handles SIGINT and SIGTERM: the process keeps answering the daemon, whose graceful shutdown
///   needs it, instead of dying (see [`Runtime::signal_grace`](crate::Runtime::signal_grace)).
///
/// Call it first in `main` when building the processor may print, read stdin, start programs or
/// take long; `#[kcl::main]` does.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     if let Err(error) = kcl_core::prepare() {
///         eprintln!("cannot set up the process: {error}");
///         return std::process::ExitCode::FAILURE;
///     }
///     println!("goes to stderr: stdout belongs to the daemon");
///     let processor = kcl_core::from_fn(|_, _| Ok(()));
///     kcl_core::Runtime::new(processor).run_main()
/// }
/// ```
pub fn prepare() -> io::Result<()> {
    crate::logging::init();
    if cfg!(panic = "abort") {
        warn_panic_abort();
    }
    crate::stdio::isolate()?;
    crate::signals::install()
}

/// Once per process: with `panic = "abort"`, a panic in a hook cannot be caught.
fn warn_panic_abort() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::error!(
            "this binary is built with panic = \"abort\": a panic in a hook ends the process without answering the daemon, and the daemon then exits with every shard of the worker. Build with panic = \"unwind\" (the default) so that panics are caught, logged and answered"
        );
    });
}
