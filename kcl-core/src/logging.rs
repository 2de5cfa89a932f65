//! `tracing` to stderr: the daemon copies a child's stderr into its own log.

use std::io::IsTerminal;

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG` (default `info`),
/// unless the program installed one already. Colours only when stderr is a terminal. The runtime
/// wraps every hook in a `shard{id=…}` span, so each event names its shard.
///
/// ```
/// kcl_core::init_logging();
/// tracing::info!("this goes to stderr");
/// ```
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .try_init();
}
