//! The processor of `file_sink.rs`, run without Java through the entry point every
//! `#[kcl::main]` binary has (`kcl::app::run`): `native_file_sink native PROPERTIES_FILE`
//! starts the native engine (feature `native`), which reads the stream itself and keeps the
//! leases in the Java KCL 3.x lease table, configured by the MultiLangDaemon's own properties
//! file. Every record goes to the same sink files, in the same format, as under the daemon (the
//! end-to-end harness reads both the same way); the processor code is `file_sink.rs`'s, and
//! without arguments this binary is a daemon child like `file_sink`.
//!
//! Usage: `KCL_SINK_DIR=OUT_DIR native_file_sink native PROPERTIES_FILE`, e.g.
//! `KCL_SINK_DIR=out cargo run --example native_file_sink --features native -- native
//! app.properties`, or `kcl native --properties app.properties` with `executableName` naming
//! this binary.
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

fn main() -> ExitCode {
    let Some(dir) = std::env::var_os("KCL_SINK_DIR").map(PathBuf::from) else {
        eprintln!("usage: KCL_SINK_DIR=OUT_DIR native_file_sink native PROPERTIES_FILE");
        return ExitCode::from(2);
    };
    // One processor per shard, built on the shard's own thread; file_sink checkpoints at each
    // batch's last record itself, as under the daemon (the default runtime settings, as
    // `kcl::run` gives the daemon's child).
    let sink_dir = dir.clone();
    let code = kcl::app::run(move || file_sink::runtime(&sink_dir));
    file_sink::exit_event(&dir, code == ExitCode::SUCCESS);
    code
}
