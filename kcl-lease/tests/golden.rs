//! The golden items (`tests/golden/*.json`) survive read → decode → encode → write byte for
//! byte, and decode to what the spec says they hold.

use std::path::Path;

use kcl_lease::{
    ClientVersion, Decoded, Item, Lease, LockItem, MigrationState, WorkerMetricStats, decode,
    encode, item_from_json, item_to_json,
};
use kcl_protocol::ExtendedSequenceNumber as E;

fn golden(name: &str) -> (String, Item) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let item = item_from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        item_to_json(&item),
        text,
        "{name}: the JSON does not round-trip byte for byte"
    );
    (text, item)
}

fn lease(name: &str) -> Lease {
    let (text, item) = golden(name);
    let Decoded::Lease(lease) = decode(&item).unwrap_or_else(|e| panic!("{name}: {e}")) else {
        panic!("{name} is not a lease")
    };
    assert_eq!(
        item_to_json(&encode(&lease)),
        text,
        "{name}: encode differs from the golden item"
    );
    lease
}

#[test]
fn every_golden_file_is_checked() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    // Each is read by one of the tests below; a new file must be added there.
    assert_eq!(
        names,
        [
            "coordinator_leader.json",
            "coordinator_migration.json",
            "coordinator_migration_with_history.json",
            "daemon313_coordinator_leader.json",
            "daemon313_coordinator_migration_new_application.json",
            "daemon313_lease_inside_aggregate.json",
            "daemon313_worker_metrics.json",
            "lease_child_after_merge.json",
            "lease_handoff_pending.json",
            "lease_kpl_checkpoint.json",
            "lease_multi_stream.json",
            "lease_owned.json",
            "lease_parent_at_shard_end.json",
            "row_3_5_worker_metrics.json",
            "worker_metrics_cpu.json",
            "worker_metrics_default.json",
        ]
    );
}

#[test]
fn owned_lease() {
    let lease = lease("lease_owned.json");
    assert_eq!(lease.lease_owner.as_deref(), Some("java-1"));
    assert_eq!(lease.lease_counter, 1042);
    assert_eq!(lease.throughput_kbps, Some(12.843));
    assert_eq!(lease.hash_key_range, Some((0, u128::MAX / 2)));
    assert!(lease.other.is_empty());
}

#[test]
fn kpl_checkpoint() {
    let lease = lease("lease_kpl_checkpoint.json");
    assert_eq!(lease.checkpoint.sub_sequence_number(), 3);
    assert_eq!(lease.hash_key_range, Some((u128::MAX / 2 + 1, u128::MAX)));
    assert_eq!(lease.throughput_kbps, Some(0.0));
}

#[test]
fn child_after_merge() {
    let lease = lease("lease_child_after_merge.json");
    assert_eq!(lease.checkpoint, E::trim_horizon());
    assert_eq!(lease.lease_owner, None);
    assert_eq!(lease.parent_shard_ids.len(), 2);
}

#[test]
fn parent_at_shard_end() {
    let lease = lease("lease_parent_at_shard_end.json");
    assert!(lease.checkpoint.is_shard_end());
    assert_eq!(
        lease.child_shard_ids.iter().collect::<Vec<_>>(),
        ["shardId-000000000004"]
    );
}

#[test]
fn handoff_pending() {
    let lease = lease("lease_handoff_pending.json");
    assert_eq!(lease.actual_owner(), Some("java-1"));
    assert_eq!(lease.lease_owner.as_deref(), Some("native-1"));
    assert_eq!(lease.owner_switches_since_checkpoint, 2);
}

#[test]
fn multi_stream() {
    let lease = lease("lease_multi_stream.json");
    assert_eq!(
        lease.stream_name.as_deref(),
        Some("123456789012:orders:1700000000")
    );
    assert_eq!(lease.shard_id.as_deref(), Some("shardId-000000000001"));
    assert_eq!(lease.checkpoint.sequence_number(), "AT_TIMESTAMP");
}

#[test]
fn a_3_5_row_that_is_not_a_lease_is_skipped() {
    let (_, item) = golden("row_3_5_worker_metrics.json");
    assert_eq!(
        decode(&item).unwrap(),
        Decoded::NotALease {
            entity_type: "WORKER_METRIC_STATS".into()
        }
    );
    // The same row read as worker metrics keeps entityType and leaseKey.
    let row = WorkerMetricStats::decode(&item).unwrap();
    assert_eq!(item_to_json(&row.encode()), item_to_json(&item));
}

#[test]
fn coordinator_items() {
    let (text, item) = golden("coordinator_leader.json");
    let lock = LockItem::decode(&item).unwrap();
    assert_eq!(
        (lock.owner_name.as_str(), lock.lease_duration_ms),
        ("java-1", 120_000)
    );
    assert_eq!(item_to_json(&lock.encode()), text);
    for name in [
        "coordinator_migration.json",
        "coordinator_migration_with_history.json",
    ] {
        let (text, item) = golden(name);
        let state = MigrationState::decode(&item).unwrap();
        assert_eq!(item_to_json(&state.encode()), text, "{name}");
    }
    let (_, item) = golden("coordinator_migration.json");
    assert_eq!(
        MigrationState::decode(&item).unwrap().client_version,
        ClientVersion::V3x
    );
}

#[test]
fn worker_metrics_rows() {
    for name in ["worker_metrics_default.json", "worker_metrics_cpu.json"] {
        let (text, item) = golden(name);
        let row = WorkerMetricStats::decode(&item).unwrap();
        assert_eq!(item_to_json(&row.encode()), text, "{name}");
    }
    let (_, item) = golden("worker_metrics_default.json");
    let row = WorkerMetricStats::decode(&item).unwrap();
    assert!(row.is_using_default_metric());
    let (_, item) = golden("worker_metrics_cpu.json");
    let row = WorkerMetricStats::decode(&item).unwrap();
    assert!(row.is_any_metric_failing());
}

/// Items captured from the real KCL 3.1.3 MultiLangDaemon's tables (kcl-e2e's migration
/// scenario, on moto): they must decode and encode back unchanged.
#[test]
fn items_the_3_1_3_daemon_wrote() {
    // The checkpoint a daemon child made inside a KPL aggregate, left owned after SIGTERM.
    let lease = lease("daemon313_lease_inside_aggregate.json");
    assert_eq!(lease.checkpoint.sub_sequence_number(), 7);
    assert_eq!(lease.lease_owner.as_deref(), Some("m3-daemon"));
    assert_eq!(lease.throughput_kbps, Some(2.075321));
    assert!(lease.other.is_empty());

    // A new application's Migration3.0: the INIT state is its first history entry.
    let (text, item) = golden("daemon313_coordinator_migration_new_application.json");
    let state = MigrationState::decode(&item).unwrap();
    assert_eq!(state.client_version, ClientVersion::V3x);
    assert_eq!(state.history.len(), 1);
    assert_eq!(state.history[0].client_version, None);
    assert_eq!(state.history[0].modified_by, "m3-daemon");
    assert_eq!(item_to_json(&state.encode()), text);
    // What the native engine writes for a new application has the same shape.
    let native = MigrationState::created(
        ClientVersion::V3x,
        state.modified_by.clone(),
        state.history[0].modified_timestamp_ms,
    );
    assert_eq!(native.history, state.history);

    let (text, item) = golden("daemon313_coordinator_leader.json");
    let lock = LockItem::decode(&item).unwrap();
    assert_eq!(
        (lock.owner_name.as_str(), lock.lease_duration_ms),
        ("m3-daemon", 120_000)
    );
    assert_eq!(item_to_json(&lock.encode()), text);

    // The MultiLangDaemon's row: no metric at all (empty `sts` and `opr`).
    let (text, item) = golden("daemon313_worker_metrics.json");
    let row = WorkerMetricStats::decode(&item).unwrap();
    assert_eq!(row.worker_id, "m3-daemon");
    assert_eq!(item_to_json(&row.encode()), text);
}
