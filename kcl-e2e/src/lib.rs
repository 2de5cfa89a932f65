//! The Rust end-to-end harness of kcl: scenarios as `#[ignore]`d tests that start kinesis-local
//! and moto_server on 127.0.0.1, put records into a stream keeping a ledger, run workers of
//! either engine against them, and reconcile what the record processors wrote with the ledger
//! (put, handled, duplicates, lost per scenario) and with the lease table.
//!
//! It is the Rust home of the former Python suite (`scripts/e2e.sh`, `scripts/e2e/*.py`), from the same
//! installed cache (`KCL_E2E_CACHE`, else `<repo>/.e2e-cache`; `bash scripts/e2e.sh install`
//! fills it) with the same commands, environment, properties and sink format; its emulators use
//! free ports, so it can run beside the Python suite.
//!
//! - [`Settings`]: the cache, the built binaries, this run's folder (`<cache>/rust-runs/…`,
//!   logs, worker folders and sinks kept after the run).
//! - [`Emulators`]: kinesis-local (node with the loopback preload) and moto_server, ready when
//!   each answered; [`Emulators::loopback_only`] checks every socket they listen on.
//! - [`Stream`]: create (ACTIVE), put plain records or KPL aggregates ([`kcl_kpl`]) into a
//!   [`Ledger`], list shards, split and merge.
//! - [`Sink`], [`tally`]: what examples/file_sink (and the sinks sharing its writers) wrote,
//!   reconciled with the ledger into a [`Tally`].
//! - [`LeaseTable`]: the lease table scanned and decoded with [`kcl_lease::decode_leases`];
//!   checkpoints, owners, and the audit that no checkpoint passes an unwritten record.
//! - [`Worker`]: a worker of either engine from a [`WorkerSpec`]: [`Worker::Daemon`] runs the
//!   real MultiLangDaemon ([`Daemon`]: properties written by `kcl properties`, the jars checked
//!   by `kcl jars verify`); [`Worker::Native`] runs the native engine ([`NativeWorker`]:
//!   examples/native_file_sink, file_sink's processor through `kcl::app::run` as
//!   `native FILE`, from the same properties file).
//! - [`meter::Meter`]: the summed memory (RSS, PSS) and CPU time of a worker's process tree,
//!   sampled while it runs (`src/bin/bench_native.rs`, the native engine against the daemon).
//! - [`Report`]: `PASS`/`FAIL` lines and the scenario's row, as the Python suite prints them.
//! - For the MultiLangDaemon scenarios moved from the Python suite: [`producer`] (records
//!   trickling in the background), [`taint`] (declared_sink's poison and flaky payloads),
//!   [`declared`] (which processor, and the checks on dead letters and the `every 50 records`
//!   strategy), [`audit`] (the checkpoint audit sampling the lease table beside a scenario),
//!   [`shutdown`] (a clean SIGTERM judged, stray record processors), [`chaos`] (`kill -9` of
//!   the daemon alone, its children judged), [`reshard`] (following a split or merge),
//!   [`exits`] (the exit recorder of the Ctrl-C scenario: how each record processor ended),
//!   [`tool`] (`kcl put` and `kcl daemon` driving the daemon), [`produced`] (`kcl produce
//!   --aggregate --ledger` in the background, its ledgers followed), [`iam`] (the requests the
//!   emulators recorded, by engine, against `kcl iam-policy`).
//!
//! Every process the harness starts is its own process group's leader, stopped by PID and
//! killed with its group when dropped, also when a test panics (logs' ends are printed then).
//!
//! The scenarios (`tests/`) need the cache, `java` and `node` on `PATH`, and `cargo build -p
//! kcl-cli && cargo build --example file_sink --example declared_sink --example
//! checkpoint_on_shutdown` done, and for the native scenarios `cargo build --example native_file_sink --features native`
//! (scripts/e2e.sh does all of it, and runs them one at a time); a missing prerequisite fails
//! them with what to run:
//!
//! ```text
//! bash scripts/e2e.sh install && cargo build -p kcl-cli
//! cargo build --example file_sink --example declared_sink --example checkpoint_on_shutdown
//! cargo build --example native_file_sink --features native
//! cargo test -p kcl-e2e -- --ignored --nocapture --test-threads=1
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod audit;
pub mod chaos;
pub mod daemon;
pub mod declared;
pub mod emulators;
mod error;
pub mod exits;
pub mod iam;
pub mod leases;
pub mod ledger;
pub mod meter;
pub mod native;
pub mod poll;
pub mod process;
pub mod procfs;
pub mod produced;
pub mod producer;
pub mod report;
pub mod reshard;
pub mod scenario;
pub mod settings;
pub mod shutdown;
pub mod signal;
pub mod sink;
pub mod stream;
pub mod taint;
pub mod tool;
pub mod worker;

pub use daemon::Daemon;
pub use emulators::{Emulators, Ports};
pub use error::{Error, Result};
pub use leases::LeaseTable;
pub use ledger::{Ledger, Put, Tally};
pub use report::{Report, Row};
pub use settings::Settings;
pub use signal::Signal;
pub use sink::{Sink, tally};
pub use stream::Stream;
pub use worker::{NativeWorker, Processor, Stopped, Worker, WorkerSpec};
