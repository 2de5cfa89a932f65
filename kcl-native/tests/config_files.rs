//! The properties files the project runs the daemon with give the native engine the same
//! configuration as the builder with the same values, and only the note that `executableName`
//! means nothing natively.
//!
//! - `e2e-worker.properties`: what `scripts/e2e/daemon.py` has `kcl properties` write for a
//!   worker (`BASE_PROPERTIES` plus the worker's keys; written by the tool).
//! - `real-daemon.properties`: the file of `shared/background/real-daemon.md` §4.
//! - `at-timestamp.properties`: `kcl properties` with `--initial-position at-timestamp` and the
//!   3.x handoff, client-version, table and metrics-reporter keys through `--set`.

use std::path::Path;
use std::time::Duration;

use kcl_native::config::{ClientVersionConfig, InitialPosition, Level, NativeConfig, Warning};
use kcl_properties::Properties;

fn load(name: &str) -> (NativeConfig, Vec<Warning>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let props = Properties::load(&path).unwrap();
    NativeConfig::from_properties(&props).unwrap()
}

/// The only thing said about these files: the child program is the daemon's business.
fn only_the_executable_note(warnings: &[Warning]) {
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].level, Level::Note);
    assert_eq!(warnings[0].key.as_deref(), Some("executableName"));
}

#[test]
fn the_e2e_workers_file() {
    let (config, warnings) = load("e2e-worker.properties");
    only_the_executable_note(&warnings);
    let built = NativeConfig::builder("kcl-e2e-s6-app", "kcl-e2e-s6")
        .worker_id("s6-worker-1")
        .region("us-east-1")
        .kinesis_endpoint("http://127.0.0.1:14568")
        .dynamodb_endpoint("http://127.0.0.1:14569")
        .initial_position(InitialPosition::TrimHorizon)
        .idle_time_between_reads(Duration::from_millis(250))
        .max_records(100)
        .failover_time(Duration::from_millis(3000))
        .lease_assignment_interval(Duration::from_millis(1000))
        .shard_sync_interval(Duration::from_millis(2000))
        .parent_shard_poll_interval(Duration::from_millis(1000))
        .shutdown_grace(Duration::from_millis(20_000))
        .build()
        .unwrap();
    assert_eq!(config, built);
    assert_eq!(config.table_name(), "kcl-e2e-s6-app");
    assert_eq!(
        config.coordinator_state_table_name(),
        "kcl-e2e-s6-app-CoordinatorState"
    );
    assert_eq!(
        config.worker_metrics_table_name(),
        "kcl-e2e-s6-app-WorkerMetricStats"
    );
    assert_eq!(
        config.worker_metrics_reporter_freq(),
        Duration::from_secs(30)
    );
    assert_eq!(
        config.graceful_lease_handoff_timeout(),
        Duration::from_secs(30)
    );
    assert!(config.graceful_lease_handoff_enabled());
    assert_eq!(config.client_version_config(), ClientVersionConfig::V3x);
    let fetcher = config.fetcher_config();
    assert_eq!(fetcher.max_records, 100);
    assert_eq!(fetcher.idle_time_between_reads, Duration::from_millis(250));
    assert_eq!(fetcher.initial_timestamp_millis, None);
}

#[test]
fn the_real_daemon_file() {
    let (config, warnings) = load("real-daemon.properties");
    only_the_executable_note(&warnings);
    assert_eq!(config.stream_name(), "kcl-e2e");
    assert_eq!(config.worker_id(), "e2e-worker-1");
    assert_eq!(config.failover_time(), Duration::from_secs(3));
    assert_eq!(config.lease_assignment_interval(), Duration::from_secs(1));
    assert_eq!(config.shutdown_grace(), Duration::from_secs(20));
}

#[test]
fn an_at_timestamp_file_with_3x_keys() {
    let (config, warnings) = load("at-timestamp.properties");
    only_the_executable_note(&warnings);
    let built = NativeConfig::builder("words-app", "words")
        .worker_id("host-1")
        .region("eu-west-1")
        .kinesis_endpoint("http://127.0.0.1:4566")
        .dynamodb_endpoint("http://127.0.0.1:4566")
        .initial_position(InitialPosition::AtTimestamp {
            epoch_millis: 1_700_000_000_000,
        })
        .shutdown_grace(Duration::from_secs(30))
        .graceful_lease_handoff_enabled(false)
        .graceful_lease_handoff_timeout(Duration::from_secs(5))
        .client_version_config(ClientVersionConfig::CompatibleWith2x)
        .table_name("words-leases")
        .worker_metrics_reporter_freq(Duration::from_secs(10))
        .call_process_records_even_for_empty_record_list(true)
        .build()
        .unwrap();
    assert_eq!(config, built);
    // The KCL 3.x tables are named after the application, not after tableName.
    assert_eq!(
        config.coordinator_state_table_name(),
        "words-app-CoordinatorState"
    );
    assert_eq!(
        config.fetcher_config().initial_timestamp_millis,
        Some(1_700_000_000_000)
    );
}
