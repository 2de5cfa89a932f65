//! `kcl properties --check` on a file written for amazon_kclpy 1.x (the KCL 1.x
//! MultiLangDaemon): each trap of the move to KCL 3.x that the file holds is reported, with its
//! level, its line and the 3.x replacement (docs/migration.md lists them).

mod common;

use std::path::{Path, PathBuf};

use common::{run_kcl, temp_dir, text};

/// The amazon_kclpy 1.x sample file of `tests/data`.
fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kclpy-1x.properties")
}

/// The line of the file's `key = ...` entry.
fn line_of(contents: &str, key: &str) -> usize {
    contents
        .lines()
        .position(|l| l.starts_with(&format!("{key} =")))
        .unwrap_or_else(|| panic!("{key} is not in the sample"))
        + 1
}

/// Runs `kcl properties --check` on `file` from `dir`: exit code, stdout, stderr.
fn check(file: &Path, dir: &Path) -> (Option<i32>, String, String) {
    let output = run_kcl(&["properties", "--check", file.to_str().unwrap()], dir);
    let (stdout, stderr) = text(&output);
    (output.status.code(), stdout, stderr)
}

#[test]
fn check_reports_every_migration_trap_of_a_kclpy_1x_file() {
    let dir = temp_dir("migration-check");
    let file = sample();
    let contents = std::fs::read_to_string(&file).unwrap();
    let (code, stdout, stderr) = check(&file, &dir);
    assert_eq!(
        code,
        Some(1),
        "the v1 credentials provider stops it: {stdout}\n{stderr}"
    );
    assert!(stdout.contains("1 errors"), "{stdout}");
    let at = |key: &str| format!("line {}: ", line_of(&contents, key));
    for (level, key, words) in [
        (
            "error",
            Some("AWSCredentialsProvider"),
            "AwsCredentialsProvider names AWS SDK v1 credentials providers, which KCL 3.x no longer reads: DefaultAWSCredentialsProviderChain (use DefaultCredentialsProvider)",
        ),
        (
            "note",
            Some("AWSCredentialsProvider"),
            "AWSCredentialsProvider is the KCL 1.x/2.x spelling of AwsCredentialsProvider",
        ),
        (
            "warning",
            Some("skipShardSyncAtStartupIfLeasesExist"),
            "a KCL 1.x key that KCL 3.x no longer reads, so the daemon ignores it silently; use skipShardSyncAtWorkerInitializationIfLeasesExist instead",
        ),
        (
            "warning",
            Some("maxCacheByteSize"),
            "unknown key \"maxCacheByteSize\": a KCL 1.x key that KCL 3.x no longer reads, so the daemon ignores it silently; no key replaces it",
        ),
        (
            "note",
            Some("maxLeasesToStealAtOneTime"),
            "maxLeasesToStealAtOneTime is ignored in KCL 3.x mode",
        ),
        (
            "note",
            Some("processingLanguage"),
            "processingLanguage is read but has no effect in KCL 3.x",
        ),
        (
            "note",
            Some("validateSequenceNumberBeforeCheckpointing"),
            "validateSequenceNumberBeforeCheckpointing is read but has no effect in KCL 3.x",
        ),
        (
            "warning",
            None,
            "the daemon uses enhanced fan-out (SubscribeToShard over HTTP/2, extra cost, not served by most emulators), where KCL 1.x polled: it needs the IAM actions kinesis:RegisterStreamConsumer",
        ),
        ("note", None, "no workerId"),
        ("warning", None, "shutdownGraceMillis is not set"),
    ] {
        let prefix = match key {
            Some(key) => format!("{level}: {}", at(key)),
            None => format!("{level}: "),
        };
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&prefix) && l.contains(words)),
            "missing {prefix:?}...{words:?} in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("<applicationName>-WorkerMetricStats"),
        "{stderr}"
    );
    assert!(!stderr.contains("did you mean"), "{stderr}");

    // With the sample's polling keys set (idle time below KCL 3.x's least), the daemon polls:
    // no fan-out warning, and the idle time is raised to 200 ms.
    let polling = dir.join("polling.properties");
    let uncommented = contents
        .replace("#maxRecords = 10000", "maxRecords = 10000")
        .replace(
            "#idleTimeBetweenReadsInMillis = 1000",
            "idleTimeBetweenReadsInMillis = 100",
        );
    std::fs::write(&polling, &uncommented).unwrap();
    let (code, stdout, stderr) = check(&polling, &dir);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(!stderr.contains("enhanced fan-out"), "{stderr}");
    let idle = format!(
        "warning: line {}: idleTimeBetweenReadsInMillis = 100 is below the KCL 3.x least, 200 ms",
        line_of(&uncommented, "idleTimeBetweenReadsInMillis")
    );
    assert!(stderr.contains(&idle), "missing {idle:?} in:\n{stderr}");

    // The file written for KCL 3.x: the credentials error is gone.
    let fixed = dir.join("fixed.properties");
    std::fs::write(
        &fixed,
        contents.replace(
            "AWSCredentialsProvider = DefaultAWSCredentialsProviderChain",
            "AwsCredentialsProvider = DefaultCredentialsProvider",
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = check(&fixed, &dir);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("0 errors"), "{stdout}");
    assert!(!stderr.contains("SDK v1"), "{stderr}");
}
