//! The processor of `word_count.rs`, run without Java through the library API: the native
//! engine (feature `native`, under way) reads the stream itself and keeps the leases in the
//! Java KCL 3.x lease table, configured by the MultiLangDaemon's own properties file. The
//! processor code is the same value the daemon's child runs; only `main` differs. (`word_count`
//! itself, a `#[kcl::main]` binary, does the same as `word_count native app.properties` when
//! built with the feature: this example shows what that does, with `kcl::native`.)
//!
//! Usage: `cargo run --example native_word_count --features native -- app.properties`
//!
//! The file needs `streamName`, `applicationName` and `retrievalMode = POLLING` (the native
//! engine polls); `kinesisEndpoint` / `dynamoDBEndpoint` point it at local emulators (which get
//! dummy credentials). Set `shutdownGraceMillis` (e.g. 10000) so that Ctrl-C lets each shard
//! checkpoint on `shutdownRequested` before the leases are evicted; a second Ctrl-C stops at
//! once.

#[allow(dead_code)]
#[path = "word_count.rs"]
mod word_count;

use std::process::ExitCode;

use kcl::native::{ShardInfo, load_config, run_blocking};

fn main() -> ExitCode {
    kcl::init_logging();
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: native_word_count PROPERTIES_FILE");
        return ExitCode::from(2);
    };
    let config = match load_config(&path) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::from(2);
        }
    };
    // One processor per shard, built on the shard's own thread; the settings `#[kcl::main]`
    // gives word_count (a checkpoint after every batch).
    let factory = |_: &ShardInfo| {
        kcl::Runtime::new(word_count::WordCount::default())
            .checkpoint_strategy(kcl::CheckpointStrategy::EveryBatch)
    };
    match run_blocking(config, factory) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}
