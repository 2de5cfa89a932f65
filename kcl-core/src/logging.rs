//! `tracing` to stderr: the daemon copies a child's stderr into its own log.

use std::io::IsTerminal;

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG` (targets and levels,
/// e.g. `debug` or `warn,kcl_core=debug`; default `info`),
/// unless the program installed one already. Colours only when stderr is a terminal. The runtime
/// wraps every hook in a `shard{id=…}` span, so each event names its shard.
///
/// ```
/// kcl_core::init_logging();
/// tracing::info!("this goes to stderr");
/// ```
pub fn init() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // `RUST_LOG` in its common forms (`debug`, `warn,kcl_core=debug`); a value that does not
    // parse leaves the default, `info`.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|value| value.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
}
