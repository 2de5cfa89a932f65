//! An MLD child binary compiles only what consuming needs: the producer, tokio's network stack and
//! the AWS SDK come in with the feature `producer`, the native engine (and the AWS SDK) with the
//! feature `native`, never without them.
//!
//! Read from `cargo tree` on this workspace's lock file (`--locked`: cargo may fetch the manifests of
//! crates only other platforms compile, e.g. wasm-bindgen's, which no host build downloads).

use std::process::Command;

/// The crates `kcl` compiles (normal dependencies, every platform) with these extra arguments.
fn normal_dependencies(extra: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args([
            "tree", "-p", "kcl", "-e", "normal", "--prefix", "none", "--locked",
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

/// What only the feature `native` brings (besides the producer's crates, which it pulls too).
const NATIVE_ONLY: [&str; 4] = ["kcl-native", "kcl-lease", "aws-sdk-dynamodb", "aws-config"];

#[test]
fn a_consumer_compiles_no_producer_and_no_aws_sdk() {
    for features in [&[][..], &["--features", "tokio"][..]] {
        let crates = normal_dependencies(features);
        assert!(crates.iter().any(|name| name == "kcl-core"), "{crates:?}");
        for heavy in PRODUCER_ONLY.into_iter().chain(NATIVE_ONLY) {
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

#[test]
fn the_native_feature_brings_the_native_engine() {
    let crates = normal_dependencies(&["--features", "native"]);
    for wanted in [
        "kcl-native",
        "kcl-lease",
        "aws-sdk-dynamodb",
        "aws-sdk-kinesis",
    ] {
        assert!(
            crates.iter().any(|name| name == wanted),
            "{wanted} missing: {crates:?}"
        );
    }
    // ... and the producer alone does not bring it.
    let producer_only = normal_dependencies(&["--features", "producer"]);
    assert!(
        !producer_only.iter().any(|name| name == "kcl-native"),
        "{producer_only:?}"
    );
}
