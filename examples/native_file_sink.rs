//! The processor of `file_sink.rs`, run without Java: the native engine (feature `native`)
//! reads the stream itself and keeps the leases in the Java KCL 3.x lease table, configured by
//! the MultiLangDaemon's own properties file. Every record goes to the same sink files, in the
//! same format, as under the daemon (the end-to-end harness reads both the same way); the
//! processor code is `file_sink.rs`'s, only `main` differs.
//!
//! Usage: `native_file_sink PROPERTIES_FILE OUT_DIR` (or `KCL_SINK_DIR=OUT_DIR native_file_sink
//! PROPERTIES_FILE`), e.g. `cargo run --example native_file_sink --features native --
//! app.properties out`.
//!
//! The file needs `streamName`, `applicationName` and `retrievalMode = POLLING`;
//! `kinesisEndpoint` / `dynamoDBEndpoint` point it at local emulators; `shutdownGraceMillis`
//! lets each shard checkpoint on `shutdownRequested` at SIGTERM/SIGINT before the leases are
//! released. All shards run in this one process, so every event line carries its PID; the last
//! line is `exit 0` (or `exit error`) once the engine returned.

#[allow(dead_code)]
#[path = "file_sink.rs"]
mod file_sink;

use std::path::PathBuf;
use std::process::ExitCode;

use kcl::native::{ShardInfo, load_config, run_blocking};

const USAGE: &str = "native_file_sink PROPERTIES_FILE OUT_DIR (or set KCL_SINK_DIR)";

fn main() -> ExitCode {
    kcl::init_logging();
    let mut args = std::env::args_os().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: {USAGE}");
        return ExitCode::from(2);
    };
    let Some(dir) = args
        .next()
        .or_else(|| std::env::var_os("KCL_SINK_DIR"))
        .map(PathBuf::from)
    else {
        eprintln!("usage: {USAGE}");
        return ExitCode::from(2);
    };
    let config = match load_config(&path) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::from(2);
        }
    };
    // One processor per shard, built on the shard's own thread; file_sink checkpoints at each
    // batch's last record itself, as under the daemon.
    // (`kcl::run` gives the daemon's child the same default runtime settings.)
    let sink_dir = dir.clone();
    let factory = move |_: &ShardInfo| file_sink::runtime(&sink_dir);
    let result = run_blocking(config, factory);
    file_sink::exit_event(&dir, result.is_ok());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}
