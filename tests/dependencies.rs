//! An MLD child binary compiles only what consuming needs: the producer, tokio's network stack and
//! the AWS SDK come in with the feature `producer`, never without it.
//!
//! Read from `cargo tree` on this workspace's lock file, offline.

use std::process::Command;

/// The crates `kcl` compiles (normal dependencies, every platform) with these extra arguments.
fn normal_dependencies(extra: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "kcl",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .args(["--target", "all"])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

const PRODUCER_ONLY: [&str; 5] = [
    "kcl-producer",
    "kcl-kpl",
    "aws-sdk-kinesis",
    "hyper",
    "md-5",
];

#[test]
fn a_consumer_compiles_no_producer_and_no_aws_sdk() {
    for features in [&[][..], &["--features", "tokio"][..]] {
        let crates = normal_dependencies(features);
        assert!(crates.iter().any(|name| name == "kcl-core"), "{crates:?}");
        for heavy in PRODUCER_ONLY {
            assert!(
                !crates.iter().any(|name| name == heavy),
                "kcl {features:?} compiles {heavy}: {crates:?}"
            );
        }
    }
}

#[test]
fn the_producer_feature_brings_the_producer_and_the_sdk() {
    let crates = normal_dependencies(&["--features", "producer"]);
    for wanted in ["kcl-producer", "kcl-kpl", "aws-sdk-kinesis"] {
        assert!(
            crates.iter().any(|name| name == wanted),
            "{wanted} missing: {crates:?}"
        );
    }
}
