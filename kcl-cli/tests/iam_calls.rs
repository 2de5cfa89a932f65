//! `kcl iam-policy` is built from one table of AWS calls (`kcl_cli::iam::calls::CALLS`). These
//! tests tie the table to the Rust code that makes the calls: every AWS SDK operation called on
//! a client in the native engine (kcl-native, kcl-lease) and the producer (kcl-producer, kcl-cli)
//! is in the table with the file that calls it, and every file the table names calls it. A new
//! SDK call without its IAM action, or a stale entry, fails here. (The Java daemon's side is
//! checked against its jars by the e2e scenario `iam_policy_covers_what_both_engines_call`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kcl_cli::iam::calls::{CALLS, Service};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The operations (snake_case, as the fluent client methods are named) of the SDK crates the
/// workspace uses, read from each crate's `src/operation/` folder: the version in Cargo.lock,
/// its sources in cargo's registry (they are there: the workspace was built from them).
fn sdk_operations() -> BTreeMap<String, Vec<Service>> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let registries: Vec<PathBuf> = std::fs::read_dir(home.join("registry").join("src"))
        .expect("cargo's registry sources")
        .map(|entry| entry.unwrap().path())
        .collect();
    let mut operations: BTreeMap<String, Vec<Service>> = BTreeMap::new();
    let mut crates = 0;
    for (name, service) in [
        ("aws-sdk-kinesis", Service::Kinesis),
        ("aws-sdk-dynamodb", Service::Dynamodb),
        ("aws-sdk-cloudwatch", Service::Cloudwatch),
        ("aws-sdk-sts", Service::Sts),
    ] {
        let header = format!("name = \"{name}\"\nversion = \"");
        let Some(at) = lock.find(&header) else {
            continue;
        };
        let version = lock[at + header.len()..].split('"').next().unwrap();
        let folder = registries
            .iter()
            .map(|registry| {
                registry
                    .join(format!("{name}-{version}"))
                    .join("src")
                    .join("operation")
            })
            .find(|folder| folder.is_dir())
            .unwrap_or_else(|| {
                panic!(
                    "the sources of {name} {version} are not in {}",
                    home.display()
                )
            });
        crates += 1;
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                let name = entry.file_name().to_string_lossy().into_owned();
                operations.entry(name).or_default().push(service);
            }
        }
    }
    assert!(
        crates >= 2,
        "aws-sdk-kinesis and aws-sdk-dynamodb are in Cargo.lock"
    );
    operations
}

/// `list_shards` → `ListShards`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The `.rs` files under `folder`, as paths relative to the workspace root.
fn sources(folder: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root().join(folder)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(
                    path.strip_prefix(root())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    found.sort();
    found
}

/// The code of `file` before its unit tests, without whitespace (so a call split over lines,
/// `self\n    .client\n    .get_item()`, reads `self.client.get_item()`).
fn code(file: &str) -> String {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .flat_map(|line| line.chars())
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// The SDK operations `code` calls on a client (`client.op()` or `client().op()`).
fn calls_in(code: &str, operations: &BTreeMap<String, Vec<Service>>) -> Vec<(Service, String)> {
    let mut found = Vec::new();
    for (operation, services) in operations {
        let direct = format!("client.{operation}()");
        let through = format!("client().{operation}()");
        if code.contains(&direct) || code.contains(&through) {
            assert_eq!(
                services.len(),
                1,
                "{operation} is an operation of several services: {services:?}"
            );
            found.push((services[0], pascal(operation)));
        }
    }
    found
}

const SCANNED: [&str; 4] = [
    "kcl-native/src",
    "kcl-lease/src",
    "kcl-producer/src",
    "kcl-cli/src",
];

#[test]
fn every_sdk_call_of_the_native_engine_and_the_producer_is_in_the_table_with_its_file() {
    let operations = sdk_operations();
    let mut seen = BTreeSet::new();
    for folder in SCANNED {
        for file in sources(folder) {
            for (service, action) in calls_in(&code(&file), &operations) {
                let listed = CALLS.iter().any(|call| {
                    call.service == service
                        && call.action == action
                        && call.rust.contains(&file.as_str())
                });
                assert!(
                    listed,
                    "{file} calls {}:{action}, which kcl-cli/src/iam/calls.rs does not list with that file: \
                     add it (kcl iam-policy must allow it)",
                    service.prefix()
                );
                seen.insert((service, action, file.clone()));
            }
        }
    }
    // The scan found the calls it must find (it is not blind).
    for expected in [
        "GetRecords",
        "UpdateItem",
        "Query",
        "PutRecords",
        "CreateTable",
    ] {
        assert!(
            seen.iter().any(|(_, action, _)| action == expected),
            "no {expected} found: {seen:?}"
        );
    }
}

#[test]
fn every_file_the_table_names_makes_the_call() {
    let operations = sdk_operations();
    for call in CALLS {
        for file in call.rust {
            let made = calls_in(&code(file), &operations);
            assert!(
                made.iter()
                    .any(|(service, action)| *service == call.service && action == call.action),
                "calls.rs says {file} calls {}:{}, but it does not (any more): update the table",
                call.service.prefix(),
                call.action
            );
        }
    }
}

#[test]
fn the_table_lists_each_call_once_per_target_and_who() {
    let mut keys = BTreeSet::new();
    for call in CALLS {
        assert!(
            keys.insert((call.service, call.action, call.target, call.by, call.when)),
            "{}:{} on {:?} is listed twice",
            call.service.prefix(),
            call.action,
            call.target
        );
        assert!(!call.why.is_empty());
        assert!(
            !(call.java.is_empty() && call.rust.is_empty()),
            "{}:{} names nothing that makes it",
            call.service.prefix(),
            call.action
        );
    }
}
