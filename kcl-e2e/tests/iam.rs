//! Issue 18's IAM proof: `kcl iam-policy` allows every call the real KCL 3.1.3 daemon and the
//! native engine make.
//!
//! - **iam1** (`iam_policy_covers_what_both_engines_call`): the emulators record every request
//!   ([`Emulators::start_recording`]). Two applications read one 2-shard stream, each on fresh
//!   tables: one under the Java daemon (`kcl daemon`'s engine, file_sink children), one under
//!   `kcl daemon --native`. Records are put, shard 0 is split while both run, more records
//!   are put, both stop with SIGTERM. Then, for each engine, every (action, resource) it sent is
//!   checked against the policy `kcl iam-policy` prints for its own properties file (`--engine
//!   java` / `--engine native`), and the observed actions are reported against the policy's.
//!   Requests are told apart by the caller (the Java SDK's User-Agent; the native engine's
//!   dummy key `kcl-local`; the harness's `kcl-e2e`).
//! - The same test reads the daemon's jars (`scripts/e2e/jar_requests.py`: the request classes
//!   each KCL and lock-client class uses) and checks them against `kcl iam-policy --list-calls`:
//!   every request a class can send is in the table (as a call or as never called, with the
//!   reason), and every class the table names does use its request.
//!
//! `#[ignore]`d: needs the installed cache, java, node and the built file_sink and kcl
//! (`bash scripts/e2e.sh rust iam_policy` runs it).

mod common;

use common::spec;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use kcl_e2e::iam::{
    Caller, Policy, Request, counted, dynamodb_requests, kinesis_requests, resource,
};
use kcl_e2e::scenario::{names, wait_handled};
use kcl_e2e::settings::REGION;
use kcl_e2e::{Emulators, Ledger, Processor, Report, Settings, Signal, Stream, Worker};

const REQUIRES: &str = "needs the e2e cache (bash scripts/e2e.sh install), java and node, and \
                        `cargo build -p kcl-cli && cargo build --example file_sink`; run with \
                        --ignored";

/// moto's account, the one in the ARNs the proof builds (kinesis-local's differs, but the
/// proof compares names under one account).
const ACCOUNT: &str = "123456789012";

fn kcl(settings: &Settings, args: &[&str]) -> String {
    let kcl = settings
        .kcl()
        .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let output = Command::new(&kcl).args(args).output().expect("kcl runs");
    assert!(
        output.status.success(),
        "kcl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Checks one engine's requests against its policy; returns the lines of the proof table.
fn prove(
    report: &mut Report,
    tag: &str,
    requests: &[Request],
    who: Caller,
    policy: &Policy,
    stream: &str,
) -> Vec<String> {
    let calls = counted(requests, who);
    let mut lines = Vec::new();
    let mut denied = Vec::new();
    let mut observed = BTreeSet::new();
    for ((action, table), count) in &calls {
        let request = Request {
            caller: who,
            action: action.clone(),
            table: table.clone(),
        };
        let arn = resource(&request, REGION, ACCOUNT, stream);
        let allowed = policy.allows(action, &arn);
        observed.insert(action.clone());
        lines.push(format!(
            "{tag}: {action} on {} x{count}: {}",
            table.as_deref().unwrap_or("the stream"),
            if allowed {
                "allowed"
            } else {
                "NOT IN THE POLICY"
            }
        ));
        if !allowed {
            denied.push(format!("{action} on {arn}"));
        }
    }
    let core = [
        "kinesis:ListShards",
        "kinesis:GetShardIterator",
        "kinesis:GetRecords",
        "dynamodb:CreateTable",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
    ];
    let missing: Vec<&str> = core
        .into_iter()
        .filter(|a| !observed.contains(*a))
        .collect();
    report.check(
        &format!("{tag}-the-recording-saw-its-reads-and-lease-writes"),
        missing.is_empty(),
        format!("not seen: {missing:?}"),
    );
    let unused: Vec<String> = policy
        .actions()
        .into_iter()
        .filter(|a| !observed.contains(a))
        .collect();
    report.check(
        &format!("{tag}-every-call-allowed-by-kcl-iam-policy"),
        denied.is_empty() && !calls.is_empty(),
        format!(
            "{} distinct (action, resource) pairs, {} requests; not allowed: {denied:?}",
            calls.len(),
            calls.values().sum::<usize>()
        ),
    );
    report.note(format!(
        "{tag}: policy actions not seen in this run: {}",
        unused.join(", ")
    ));
    lines
}

/// The jar scan against `kcl iam-policy --list-calls`.
fn jars_against_table(report: &mut Report, settings: &Settings) {
    let jars = settings
        .jars()
        .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let python = settings.cache.join("venv/bin/python3");
    let script = settings.repo.join("scripts/e2e/jar_requests.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&jars)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let in_jars: BTreeMap<String, Vec<String>> = serde_json::from_slice(&output.stdout).unwrap();
    let table: Vec<serde_json::Value> =
        serde_json::from_str(&kcl(settings, &["iam-policy", "--list-calls"])).unwrap();
    let listed: BTreeSet<String> = table
        .iter()
        .filter(|c| c["by"] != "producer")
        .map(|c| {
            format!(
                "{}:{}",
                c["service"].as_str().unwrap(),
                c["action"].as_str().unwrap()
            )
        })
        .collect();
    let missing: Vec<&String> = in_jars.keys().filter(|a| !listed.contains(*a)).collect();
    report.check(
        "iam1-every-request-in-the-jars-is-in-the-table",
        missing.is_empty() && in_jars.len() >= 15,
        format!(
            "{} request kinds in the jars; missing from the table: {missing:?}",
            in_jars.len()
        ),
    );
    let mut wrong = Vec::new();
    for call in &table {
        let action = format!(
            "{}:{}",
            call["service"].as_str().unwrap(),
            call["action"].as_str().unwrap()
        );
        for class in call["java"].as_array().unwrap() {
            let class = class.as_str().unwrap();
            let uses = in_jars.get(&action).is_some_and(|classes| {
                classes
                    .iter()
                    .any(|c| c == class || c.starts_with(&format!("{class}$")))
            });
            if !uses {
                wrong.push(format!("{class} does not use {action}"));
            }
        }
    }
    report.check(
        "iam1-every-class-the-table-names-uses-its-request",
        wrong.is_empty(),
        format!("{wrong:?}"),
    );
}

/// iam1: see the module documentation.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink and kcl"]
fn iam_policy_covers_what_both_engines_call() {
    let mut report = Report::begin("iam1", "kcl iam-policy against what both engines call");
    let settings = Settings::from_env().unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let emulators = Emulators::start_recording(&settings).unwrap_or_else(|e| panic!("{e}"));
    jars_against_table(&mut report, &settings);

    let (stream_name, app) = names(&settings, "iam1");
    let stream = Stream::create(&emulators, &stream_name, 2).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::new();
    stream
        .put_records(&ledger, "iam1", 0, 200)
        .unwrap_or_else(|e| panic!("{e}"));
    let processor = Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let mut java = Worker::daemon(
        &settings,
        &emulators,
        spec(
            &format!("{app}-java"),
            &stream_name,
            "iam1-java",
            processor.clone(),
        ),
    )
    .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let mut native = Worker::native_daemon(
        &settings,
        &emulators,
        spec(
            &format!("{app}-native"),
            &stream_name,
            "iam1-native",
            processor,
        ),
    )
    .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    java.start().unwrap_or_else(|e| panic!("{e}"));
    native.start().unwrap_or_else(|e| panic!("{e}"));
    let sinks = [java.sink(), native.sink()];
    for (tag, sink) in ["java", "native"].iter().zip(&sinks) {
        let result = wait_handled(&ledger, &[sink], Duration::from_secs(120), false);
        report.check(
            &format!("iam1-{tag}-first-wave-handled"),
            result.lost == 0,
            result.line(),
        );
    }
    // A split: shard sync, the children's leases, the parent's end.
    let parent = stream
        .open_shards()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_keys()
        .next()
        .unwrap();
    stream
        .split_in_half(&parent)
        .unwrap_or_else(|e| panic!("{e}"));
    stream
        .put_records(&ledger, "iam1", 200, 200)
        .unwrap_or_else(|e| panic!("{e}"));
    for (tag, sink) in ["java", "native"].iter().zip(&sinks) {
        let result = wait_handled(&ledger, &[sink], Duration::from_secs(150), false);
        report.check(
            &format!("iam1-{tag}-every-record-handled-after-the-split"),
            result.lost == 0,
            result.line(),
        );
    }
    for worker in [&mut java, &mut native] {
        let grace = worker.grace();
        let stopped = worker
            .stop(Signal::Term, grace + Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{e}"));
        report.check(
            &format!("{}-stops-on-sigterm", worker.worker_id()),
            stopped.ended,
            format!(
                "exit {:?} after {:.1}s",
                stopped.code,
                stopped.took.as_secs_f64()
            ),
        );
    }

    let [kinesis_log, _] = emulators.logs();
    let mut requests = kinesis_requests(&kinesis_log).unwrap_or_else(|e| panic!("{e}"));
    requests.extend(
        dynamodb_requests(&Emulators::dynamodb_recording(&settings))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let harness = requests
        .iter()
        .filter(|r| r.caller == Caller::Harness)
        .count();
    report.note(format!(
        "iam1: {} requests recorded, {harness} of them the harness's",
        requests.len()
    ));
    let mut lines = Vec::new();
    for (tag, who, worker, engine) in [
        ("iam1-java", Caller::Java, &java, "java"),
        ("iam1-native", Caller::Native, &native, "native"),
    ] {
        let properties = worker.folder().join("kcl.properties");
        let text = kcl(
            &settings,
            &[
                "iam-policy",
                "--properties",
                properties.to_str().unwrap(),
                "--account",
                ACCOUNT,
                "--engine",
                engine,
            ],
        );
        std::fs::write(worker.folder().join("iam-policy.json"), &text).unwrap();
        let policy = Policy::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        lines.extend(prove(
            &mut report,
            tag,
            &requests,
            who,
            &policy,
            &stream_name,
        ));
    }
    let proof = settings.run_dir.join("iam1-proof.txt");
    std::fs::write(&proof, lines.join("\n") + "\n").unwrap();
    for line in &lines {
        println!("{line}");
    }
    report.note(format!("iam1: the proof table is in {}", proof.display()));
    if report.failing() {
        java.print_log_tail(40);
        native.print_log_tail(40);
    }
    let result = kcl_e2e::tally(&ledger, &[&sinks[0]], false);
    report
        .finish(
            result,
            "every call of both engines allowed by kcl iam-policy",
        )
        .assert_passed();
}
