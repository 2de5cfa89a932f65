//! `kcl run` drives a child written with amazon_kclpy (the official Python client, v3 API),
//! unchanged: the sdist's `amazon_kclpy` package runs as a child without any jar.
//!
//! The sdist is downloaded once from PyPI into the test cache (under target/); without python3
//! or PyPI the test fails (it is `#[ignore]`d by default; scripts/test.sh runs it when CI or
//! KCL_REQUIRE_PREREQUISITES is set).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cache_dir, fixture, kcl, missing, python3, temp_dir, text};

const SDIST: &str = "amazon_kclpy-3.2.0";

/// A folder holding the `amazon_kclpy` package: $KCL_TEST_KCLPY_DIR, or the 3.2.0 sdist from
/// PyPI, unpacked in the test cache.
fn kclpy_root() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("KCL_TEST_KCLPY_DIR").map(PathBuf::from) {
        return Ok(dir);
    }
    if !python3() {
        return Err("python3 is not available".into());
    }
    let root = cache_dir().join(SDIST);
    if root.join("amazon_kclpy/kcl.py").is_file() {
        return Ok(root);
    }
    let downloads = cache_dir().join("sdists");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
        ])
        .arg("amazon_kclpy==3.2.0")
        .arg("-d")
        .arg(&downloads)
        .status()
        .map_err(|e| format!("pip did not run: {e}"))?;
    if !status.success() {
        return Err("pip download amazon_kclpy==3.2.0 failed (is PyPI reachable?)".into());
    }
    let archive = downloads.join(format!("{SDIST}.tar.gz"));
    let status = Command::new("python3")
        .args([
            "-c",
            "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])",
        ])
        .arg(&archive)
        .arg(cache_dir())
        .status()
        .map_err(|e| format!("python3 did not run: {e}"))?;
    if status.success() && root.join("amazon_kclpy/kcl.py").is_file() {
        Ok(root)
    } else {
        Err(format!("could not unpack {}", archive.display()))
    }
}

fn run_counter(dir: &Path, root: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    kcl()
        .arg("run")
        .args(args)
        .arg("--")
        .arg("python3")
        .arg(fixture("kclpy_counter.py"))
        .arg(out)
        .env("PYTHONPATH", root)
        .current_dir(dir)
        .output()
        .expect("kcl runs")
}

fn events(out: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

#[test]
#[ignore = "needs python3 and amazon_kclpy 3.2.0 (KCL_TEST_KCLPY_DIR or PyPI): scripts/test.sh runs it when CI or KCL_REQUIRE_PREREQUISITES is set"]
fn an_amazon_kclpy_processor_runs_resumes_and_ends_its_shards() {
    let root = kclpy_root().unwrap_or_else(|why| {
        missing(
            "amazon_kclpy 3.2.0",
            &format!("{why}; set KCL_TEST_KCLPY_DIR to a folder holding the amazon_kclpy package"),
        )
    });
    let dir = temp_dir("kclpy");
    let input = dir.join("in.txt");
    let lines: Vec<String> = (1..=40).map(|i| format!("word-{i}")).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = dir.join("events.txt");
    let input_arg = input.to_str().unwrap();

    // First run: 2 batches per shard, the first checkpoint of every shard throttled.
    let first = run_counter(
        &dir,
        &root,
        &out,
        &[
            "--input",
            input_arg,
            "--shards",
            "2",
            "--batch-size",
            "4",
            "--max-batches",
            "2",
            "--checkpoint-error",
            "1=ThrottlingException",
        ],
    );
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "{stdout}\n{stderr}");
    let events_first = events(&out);
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let outcomes: Vec<&str> = events_first
            .iter()
            .filter(|e| e[0] == "checkpoint" && e[1] == shard)
            .map(|e| e[2].as_str())
            .collect();
        assert_eq!(
            outcomes,
            ["ThrottlingException", "ok", "ok", "ok"],
            "kclpy retried the throttled checkpoint, then checkpointed each batch and at shutdownRequested"
        );
        assert!(
            events_first.iter().any(|e| e[0] == "end"
                && e[1] == shard
                && e[2] == "shutdownRequested"
                && e[3] == "8")
        );
    }

    // Second run: resumes after the stored checkpoints, then ends the shards.
    let second = run_counter(
        &dir,
        &root,
        &out,
        &[
            "--input",
            input_arg,
            "--shards",
            "2",
            "--batch-size",
            "4",
            "--end",
            "shard-ended",
        ],
    );
    let (stdout, stderr) = text(&second);
    assert!(second.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("SHARD_END"), "{stdout}");
    let all = events(&out);
    let resumed: Vec<&Vec<String>> = all
        .iter()
        .filter(|e| e[0] == "init" && e[2] != "TRIM_HORIZON")
        .collect();
    assert_eq!(
        resumed.len(),
        2,
        "both shards resumed from a sequence number: {all:?}"
    );
    let mut seen: Vec<String> = all
        .iter()
        .filter(|e| e[0] == "record")
        .map(|e| e[2].clone())
        .collect();
    seen.sort();
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(
        seen, expected,
        "every record exactly once over the two runs"
    );
    assert_eq!(
        all.iter()
            .filter(|e| e[0] == "end" && e[2] == "shardEnded")
            .count(),
        2
    );
}
