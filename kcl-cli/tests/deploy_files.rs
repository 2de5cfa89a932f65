//! The deployment files of `deploy/` (docs/deploy.md), each parsed, validated or run, so that
//! the guide holds no untested recipe:
//!
//! - `deploy/app.properties` passes `kcl properties --check`;
//! - `deploy/kcl-worker-id` writes the stable `workerId` the properties file cannot take from
//!   the environment, refuses ids and files it cannot use, and `exec`s the command;
//! - `deploy/systemd/kcl-app.service` passes `systemd-analyze verify` without a warning;
//! - every stop timeout (systemd, ECS, Kubernetes) covers `shutdownGraceMillis` plus a margin,
//!   read from the files themselves;
//! - `deploy/ecs/task-definition.json` and `deploy/kubernetes/*.yaml` pass
//!   `scripts/deploy_check.py` (botocore's RegisterTaskDefinition shape, the Kubernetes
//!   schemas; packages from PyPI, so `#[ignore]`d like the other PyPI tests);
//! - `kcl daemon` as PID 1 of a PID namespace (as in a container without an init) gets and
//!   forwards SIGTERM, and does not reap the orphans reparented to it: why the guide asks for
//!   an init (ECS `initProcessEnabled`, Kubernetes `shareProcessNamespace`, tini).
#![cfg(target_os = "linux")]
// kill(2) on the processes the tests start.
#![allow(unsafe_code)]

mod common;
mod daemon_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{cache_dir, fresh_venv, kcl, missing, python3, temp_dir, text, workspace};
use daemon_support::{setup, wait_until};

/// Seconds a stop timeout must leave past `shutdownGraceMillis`: the JVM's exit and the
/// leases' release (DynamoDB calls). The same margin as `scripts/deploy_check.py`.
const MARGIN_SECONDS: u64 = 15;
/// Fargate's limit for a container's `stopTimeout`.
const FARGATE_MAX_STOP_TIMEOUT: u64 = 120;
/// Where the files install `kcl` and `kcl-worker-id`.
const INSTALLED_KCL: &str = "/usr/local/bin/kcl";
const INSTALLED_WORKER_ID: &str = "/usr/local/lib/kcl/kcl-worker-id";

fn deploy(path: &str) -> PathBuf {
    workspace().join("deploy").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `shutdownGraceMillis` of deploy/app.properties, in seconds (rounded up).
fn shutdown_grace_seconds() -> u64 {
    let properties = read(&deploy("app.properties"));
    let millis: Vec<u64> = properties
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "shutdownGraceMillis").then(|| value.trim().parse().unwrap())
        })
        .collect();
    assert_eq!(
        millis.len(),
        1,
        "one shutdownGraceMillis in deploy/app.properties"
    );
    assert!(
        millis[0] > 0,
        "shutdownGraceMillis 0 means no graceful stop"
    );
    millis[0].div_ceil(1000)
}

/// The values of `key=` lines of a systemd unit.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(|value| value.trim().to_owned())
        .collect()
}

/// The one value of `key=` in a systemd unit.
fn unit_value(unit: &str, key: &str) -> String {
    let values = unit_values(unit, key);
    assert_eq!(values.len(), 1, "one {key}= in the unit: {values:?}");
    values[0].clone()
}

#[test]
fn app_properties_passes_kcl_properties_check() {
    let path = deploy("app.properties");
    let output = kcl()
        .args(["properties", "--check"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(" 0 errors"), "{stdout}");
    // The only warning: the example processor is not installed on this machine.
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning:")).collect();
    assert!(
        warnings.len() == 1 && warnings[0].contains("/usr/local/bin/my-processor does not exist"),
        "{stderr}"
    );
    // kcl-worker-id adds the workerId at start (the next test).
    assert!(stderr.contains("no workerId"), "{stderr}");
}

/// Runs deploy/kcl-worker-id with `args`, `worker_id` as KCL_WORKER_ID (unset if `None`).
fn worker_id_script(dir: &Path, worker_id: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(deploy("kcl-worker-id"));
    command.args(args).current_dir(dir).stdin(Stdio::null());
    match worker_id {
        Some(id) => command.env("KCL_WORKER_ID", id),
        None => command.env_remove("KCL_WORKER_ID"),
    };
    command.output().expect("deploy/kcl-worker-id runs")
}

#[test]
fn kcl_worker_id_appends_a_stable_worker_id_and_execs_the_command() {
    let dir = temp_dir("deploy-worker-id");
    let base = read(&deploy("app.properties"));
    std::fs::write(dir.join("base.properties"), &base).unwrap();

    // The command runs in the script's process (exec): its $$ is the script's pid, and it sees
    // the file written.
    let mut child = Command::new(deploy("kcl-worker-id"))
        .args([
            "base.properties",
            "out.properties",
            "sh",
            "-c",
            "echo $$; cat out.properties",
        ])
        .env("KCL_WORKER_ID", "kcl-app-1")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(child.wait().unwrap().success());
    let expected = format!(
        "{base}\n# Appended by kcl-worker-id (from base.properties):\nworkerId = kcl-app-1\n"
    );
    assert_eq!(
        stdout,
        format!("{pid}\n{expected}"),
        "exec'd, with the file written"
    );
    assert_eq!(read(&dir.join("out.properties")), expected);

    // The file written passes the check, now with a workerId.
    let output = kcl()
        .args(["properties", "--check", "out.properties"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (out, err) = text(&output);
    assert!(output.status.success(), "{out}{err}");
    assert!(
        !err.contains("no workerId") && out.contains(" 0 errors"),
        "{out}{err}"
    );

    // Without KCL_WORKER_ID (or with it empty): the host name.
    let host = Command::new("uname").arg("-n").output().unwrap();
    let host = String::from_utf8(host.stdout).unwrap();
    for id in [None, Some("")] {
        let output = worker_id_script(&dir, id, &["base.properties", "host.properties"]);
        assert!(output.status.success(), "{:?}", text(&output));
        assert!(
            read(&dir.join("host.properties")).ends_with(&format!("\nworkerId = {host}")),
            "the host name {host}"
        );
    }

    // Refused, with exit code 125, nothing written and the command not run.
    std::fs::write(
        dir.join("has-id.properties"),
        format!("{base}workerId = x\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("has-identifier.properties"),
        format!("{base}  workerIdentifier:x\n"),
    )
    .unwrap();
    let refusals: [(Option<&str>, &str, &str); 6] = [
        (Some("a b"), "base.properties", "worker id 'a b'"),
        (
            Some("a\nworkerId = b"),
            "base.properties",
            "has a character",
        ),
        (Some("a\\b"), "base.properties", "has a character"),
        (
            Some("w"),
            "has-id.properties",
            "sets workerId or workerIdentifier already",
        ),
        (
            Some("w"),
            "has-identifier.properties",
            "sets workerId or workerIdentifier already",
        ),
        (
            Some("w"),
            "missing.properties",
            "cannot read missing.properties",
        ),
    ];
    for (id, base, message) in refusals {
        let output = worker_id_script(&dir, id, &[base, "refused.properties", "touch", "ran"]);
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(125), "{id:?} {base}: {stderr}");
        assert!(stderr.contains(message), "{id:?} {base}: {stderr}");
        assert!(!dir.join("refused.properties").exists() && !dir.join("ran").exists());
    }
    let output = worker_id_script(&dir, Some("w"), &["base.properties"]);
    assert_eq!(output.status.code(), Some(125), "no OUT argument");
}

/// Runs `systemd-analyze verify --man=no` on `unit`; its exit code and everything it printed.
fn systemd_verify(unit: &Path) -> (Option<i32>, String) {
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(unit)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            missing(
                "systemd-analyze",
                &format!(
                    "{e}; apt-get install -y --no-install-recommends systemd (scripts/test.sh does)"
                ),
            )
        });
    let (stdout, stderr) = text(&output);
    (output.status.code(), format!("{stdout}{stderr}"))
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify_without_warnings() {
    let unit = read(&deploy("systemd/kcl-app.service"));
    assert_eq!(unit_value(&unit, "Type"), "exec");
    assert_eq!(unit_value(&unit, "KillMode"), "mixed");
    assert_eq!(unit_value(&unit, "KillSignal"), "SIGTERM");
    assert_eq!(unit_value(&unit, "Restart"), "on-failure");
    assert!(
        unit_value(&unit, "SuccessExitStatus")
            .split_whitespace()
            .any(|s| s == "143")
    );
    assert!(
        unit_value(&unit, "RestartPreventExitStatus")
            .split_whitespace()
            .any(|s| s == "125")
    );
    assert_eq!(unit_value(&unit, "NoNewPrivileges"), "yes");
    assert_eq!(unit_value(&unit, "ProtectSystem"), "strict");
    let start = unit_value(&unit, "ExecStart");
    let pre = unit_value(&unit, "ExecStartPre");
    assert!(
        start.starts_with(&format!(
            "{INSTALLED_KCL} daemon --properties /run/kcl-app/app.properties "
        )),
        "{start}"
    );
    assert_eq!(
        pre,
        format!("{INSTALLED_WORKER_ID} /etc/kcl/app.properties /run/kcl-app/app.properties")
    );
    assert_eq!(unit_values(&unit, "Environment")[0], "KCL_WORKER_ID=%H");

    // verify needs the programs on this machine: the copy runs the kcl under test and the
    // repository's kcl-worker-id.
    let dir = temp_dir("deploy-systemd");
    let here = unit
        .replace(
            &format!("ExecStart={INSTALLED_KCL} "),
            &format!("ExecStart={} ", env!("CARGO_BIN_EXE_kcl")),
        )
        .replace(
            &format!("ExecStartPre={INSTALLED_WORKER_ID} "),
            &format!("ExecStartPre={} ", deploy("kcl-worker-id").display()),
        );
    assert!(
        here.lines()
            .filter(|line| line.starts_with("Exec"))
            .all(|line| !line.contains(INSTALLED_KCL) && !line.contains(INSTALLED_WORKER_ID)),
        "every program replaced: {here}"
    );
    let copy = dir.join("kcl-app.service");
    std::fs::write(&copy, &here).unwrap();
    let (code, printed) = systemd_verify(&copy);
    assert_eq!(code, Some(0), "systemd-analyze verify: {printed}");
    assert_eq!(printed, "", "systemd-analyze verify warned");
    println!(
        "systemd-analyze verify --man=no {}: exit 0, no output",
        copy.display()
    );

    // The check can fail: an unknown key only warns (exit 0), a missing program is an error.
    std::fs::write(
        &copy,
        here.replace("KillMode=mixed", "KillMode=mixed\nKilMode=mixed"),
    )
    .unwrap();
    let (code, printed) = systemd_verify(&copy);
    assert!(
        code == Some(0) && printed.contains("Unknown key 'KilMode'"),
        "{printed}"
    );
    std::fs::write(&copy, &unit).unwrap();
    let (code, printed) = systemd_verify(&copy);
    assert!(
        code != Some(0) && printed.contains("is not executable"),
        "{printed}"
    );
}

#[test]
fn every_stop_timeout_covers_shutdown_grace_millis() {
    let least = shutdown_grace_seconds() + MARGIN_SECONDS;

    let unit = read(&deploy("systemd/kcl-app.service"));
    let systemd: u64 = unit_value(&unit, "TimeoutStopSec")
        .trim_end_matches('s')
        .parse()
        .expect("TimeoutStopSec in seconds");

    let task: serde_json::Value =
        serde_json::from_str(&read(&deploy("ecs/task-definition.json"))).unwrap();
    let containers = task["containerDefinitions"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let ecs = containers[0]["stopTimeout"].as_u64().expect("stopTimeout");
    assert_eq!(containers[0]["linuxParameters"]["initProcessEnabled"], true);
    assert!(
        ecs <= FARGATE_MAX_STOP_TIMEOUT,
        "Fargate allows {FARGATE_MAX_STOP_TIMEOUT} s"
    );

    let statefulset = read(&deploy("kubernetes/statefulset.yaml"));
    let periods: Vec<u64> = statefulset
        .lines()
        .filter_map(|line| line.trim().strip_prefix("terminationGracePeriodSeconds:"))
        .map(|value| value.trim().parse().unwrap())
        .collect();
    assert_eq!(periods.len(), 1, "one terminationGracePeriodSeconds");
    let kubernetes = periods[0];

    for (file, seconds) in [
        ("systemd TimeoutStopSec", systemd),
        ("ECS stopTimeout", ecs),
        ("Kubernetes terminationGracePeriodSeconds", kubernetes),
    ] {
        assert!(
            seconds >= least,
            "{file} is {seconds} s: under shutdownGraceMillis + {MARGIN_SECONDS} s = {least} s"
        );
        println!("{file}: {seconds} s >= {least} s");
    }
}

/// A Python with scripts/deploy_check/requirements.txt installed (hashes required):
/// $KCL_TEST_DEPLOY_CHECK_PYTHON, or a venv in the test cache, made once per test binary (the
/// tests that use it run in parallel).
fn python_with_deploy_check() -> Result<PathBuf, String> {
    static PYTHON: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    PYTHON.get_or_init(make_python_with_deploy_check).clone()
}

fn make_python_with_deploy_check() -> Result<PathBuf, String> {
    if let Some(python) = std::env::var_os("KCL_TEST_DEPLOY_CHECK_PYTHON") {
        return Ok(PathBuf::from(python));
    }
    if !python3() {
        return Err("python3 is not available".into());
    }
    let requirements = workspace().join("scripts/deploy_check/requirements.txt");
    let venv = cache_dir().join("deploy-check-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("requirements.txt");
    if std::fs::read(&stamp).ok() == std::fs::read(&requirements).ok() && python.exists() {
        return Ok(python);
    }
    let python = fresh_venv(&venv, &requirements)?;
    std::fs::copy(&requirements, &stamp).unwrap();
    Ok(python)
}

#[test]
#[ignore = "needs python3 and PyPI (botocore, PyYAML, kubernetes-validate; or KCL_TEST_DEPLOY_CHECK_PYTHON): scripts/test.sh runs it when CI or KCL_REQUIRE_PREREQUISITES is set"]
fn ecs_and_kubernetes_files_pass_their_schemas() {
    let python = python_with_deploy_check()
        .unwrap_or_else(|why| missing("botocore, PyYAML and kubernetes-validate", &why));
    let check = workspace().join("scripts/deploy_check.py");
    let run = |folder: &Path| {
        Command::new(&python)
            .arg(&check)
            .arg(folder)
            .stdin(Stdio::null())
            .output()
            .expect("scripts/deploy_check.py runs")
    };
    let output = run(&workspace().join("deploy"));
    let (stdout, stderr) = text(&output);
    println!("{stdout}{stderr}");
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok: ")).count(),
        6,
        "{stdout}"
    );

    // The check can fail: a copy with a field of the wrong type, a short stop timeout, an
    // unknown Kubernetes field and a ConfigMap that is not app.properties.
    let dir = temp_dir("deploy-check");
    copy_tree(&workspace().join("deploy"), &dir);
    let edit = |path: &str, from: &str, to: &str| {
        let file = dir.join(path);
        let content = read(&file);
        assert!(content.contains(from), "{path}: {from}");
        std::fs::write(&file, content.replacen(from, to, 1)).unwrap();
    };
    edit(
        "ecs/task-definition.json",
        "\"essential\": true",
        "\"essential\": \"yes\"",
    );
    edit(
        "ecs/task-definition.json",
        "\"stopTimeout\": 60",
        "\"stopTimeout\": 40",
    );
    edit(
        "kubernetes/statefulset.yaml",
        "shareProcessNamespace:",
        "shareProcessNamespac:",
    );
    edit(
        "kubernetes/configmap.yaml",
        "    streamName = my-stream",
        "    streamName = other",
    );
    let output = run(&dir);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for expected in [
        "containerDefinitions[0].essential",
        "stop timeout 40 s is under",
        "'shareProcessNamespac' was unexpected",
        "data.app.properties differs from deploy/app.properties",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}

/// The IAM policies `kcl iam-policy` prints for deploy/app.properties and variants of it
/// (fan-out, the producer with a KMS key, an assume-role provider with point-in-time recovery
/// and custom table names) pass parliament, the IAM policy linter on PyPI (its bundled AWS
/// data: actions, the resource types each takes, ARN formats); and a policy with a wrong
/// resource fails it.
#[test]
#[ignore = "needs python3 and PyPI (parliament; or KCL_TEST_DEPLOY_CHECK_PYTHON): scripts/test.sh runs it when CI or KCL_REQUIRE_PREREQUISITES is set"]
fn iam_policies_of_the_deployment_pass_parliament() {
    let python = python_with_deploy_check()
        .unwrap_or_else(|why| missing("parliament (scripts/deploy_check/requirements.txt)", &why));
    let dir = temp_dir("deploy-iam");
    let base = read(&workspace().join("deploy/app.properties"));
    let fan_out: String = base
        .lines()
        .filter(|line| !line.starts_with("retrievalMode"))
        .map(|line| format!("{line}\n"))
        .collect();
    let assume_role = format!(
        "{base}\nAwsCredentialsProviderDynamoDB = KclStsAssumeRoleCredentialsProvider|arn:aws:iam::123456789012:role/kcl-leases|kcl\n\
         leaseTablePitrEnabled = true\ncoordinatorStatePointInTimeRecoveryEnabled = true\n\
         workerMetricsPointInTimeRecoveryEnabled = true\ntableName = my-leases\n"
    );
    let kms = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let cases: [(&str, &str, &[&str]); 4] = [
        ("as-is", &base, &[]),
        ("fan-out", &fan_out, &[]),
        ("producer", &base, &["--producer", "--kms-key", kms]),
        ("assume-role", &assume_role, &["--engine", "java"]),
    ];
    let mut policies = Vec::new();
    for (name, properties, flags) in cases {
        let file = dir.join(format!("{name}.properties"));
        std::fs::write(&file, properties).unwrap();
        let policy = dir.join(format!("{name}.json"));
        let output = kcl()
            .args(["iam-policy", "--account", "123456789012", "--properties"])
            .arg(&file)
            .args(flags)
            .arg("--output")
            .arg(&policy)
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}: {}", text(&output).1);
        policies.push(policy);
    }
    let fan_out_policy = read(&policies[1]);
    assert!(
        fan_out_policy.contains("kinesis:SubscribeToShard"),
        "{fan_out_policy}"
    );
    assert!(read(&policies[2]).contains("kms:GenerateDataKey"));
    assert!(read(&policies[3]).contains("sts:AssumeRole"));
    let check = workspace().join("scripts/deploy_check.py");
    let output = Command::new(&python)
        .arg(&check)
        .arg("--iam")
        .args(&policies)
        .stdin(Stdio::null())
        .output()
        .expect("scripts/deploy_check.py runs");
    let (stdout, stderr) = text(&output);
    println!("{stdout}{stderr}");
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok: ")).count(),
        4,
        "{stdout}"
    );

    // The linter can fail: GetRecords on a table is a resource no Kinesis action takes.
    let wrong = dir.join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Wrong","Effect":"Allow","Action":["kinesis:GetRecords"],"Resource":["arn:aws:dynamodb:eu-west-1:123456789012:table/my-app"]}]}"#,
    )
    .unwrap();
    let output = Command::new(&python)
        .arg(&check)
        .arg("--iam")
        .arg(&wrong)
        .stdin(Stdio::null())
        .output()
        .expect("scripts/deploy_check.py runs");
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("RESOURCE_MISMATCH"), "{stderr}");
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A fake `java` for `kcl daemon` that makes three orphans (their parent exits at once, so they
/// are reparented to PID 1 of the namespace, which is `kcl`), waits until they have exited,
/// counts the zombies whose parent is PID 1, logs it and waits for SIGTERM (exit 42).
const ORPHANING_JAVA: &str = r#"#!/bin/sh
if [ "$1" = "-version" ]; then echo 'openjdk version "17.0.9" 2023-10-17' >&2; exit 0; fi
log="$KCL_FAKE_JAVA_LOG"
trap 'echo got-term >> "$log"; exit 42' TERM
echo "parent $PPID" >> "$log"
for i in 1 2 3; do sh -c 'sleep 0.2 & exit 0'; done
zombies() {
  n=0
  for status in /proc/[0-9]*/status; do
    if grep -q '^State:[[:space:]]*Z' "$status" 2>/dev/null &&
      grep -q '^PPid:[[:space:]]*1$' "$status" 2>/dev/null; then n=$((n + 1)); fi
  done
  echo "$n"
}
tries=0
while [ "$(pgrep -c -x sleep)" != 0 ] && [ $tries -lt 100 ]; do sleep 0.1; tries=$((tries + 1)); done
sleep 0.5
echo "zombies $(zombies)" >> "$log"
echo ready >> "$log"
while true; do sleep 0.05; done
"#;

#[test]
fn kcl_daemon_as_pid_1_forwards_sigterm_and_reaps_orphans() {
    let setup = setup("deploy-pid1");
    let java = setup.dir.join("orphaning-java");
    std::fs::write(&java, ORPHANING_JAVA).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&java, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // A PID namespace of its own, /proc of its own: `kcl` is its PID 1, as in a container
    // without an init (docker run without --init, ECS without initProcessEnabled, a pod
    // without shareProcessNamespace). -r maps the user to root, so no privilege is needed
    // where user namespaces are allowed.
    let mut unshare = Command::new("unshare");
    unshare
        .args([
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount",
            "--mount-proc",
        ])
        .arg("--kill-child")
        .arg(env!("CARGO_BIN_EXE_kcl"))
        .arg("daemon")
        .arg("--manifest")
        .arg(&setup.manifest)
        .arg("--java")
        .arg(&java)
        .arg("--properties")
        .arg(&setup.properties)
        .arg("--jars")
        .arg(&setup.jars)
        .env_remove("KCL_MAVEN_REPO")
        .env_remove("KCL_JARS_DIR")
        .env("KCL_FAKE_JAVA_LOG", &setup.java_log)
        // kcl checks that credentials exist before it starts the daemon.
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "example")
        .current_dir(&setup.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = unshare
        .spawn()
        .unwrap_or_else(|e| missing("unshare (util-linux)", &e.to_string()));
    let log = || std::fs::read_to_string(&setup.java_log).unwrap_or_default();
    if !wait_until(Duration::from_secs(30), || log().contains("ready")) {
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        missing(
            "a PID namespace (unshare --user --pid)",
            &format!("the fake java did not start: {}{}", log(), text(&output).1),
        );
    }
    let logged = log();
    assert!(
        logged.contains("parent 1\n"),
        "kcl is PID 1 of the namespace: {logged}"
    );
    assert!(
        logged.contains("zombies 0\n"),
        "kcl, PID 1, reaps the three orphans reparented to it: {logged}"
    );

    // SIGTERM from outside to kcl (PID 1 inside: the kernel delivers only the signals it has a
    // handler for), forwarded to the daemon, whose exit code kcl passes on.
    let kcl_pid = read(&PathBuf::from(format!(
        "/proc/{0}/task/{0}/children",
        child.id()
    )))
    .trim()
    .parse::<u32>()
    .expect("unshare's one child: kcl");
    // SAFETY: kill(2) with a plain pid and a valid signal number.
    assert_eq!(
        unsafe { libc::kill(kcl_pid as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = child.wait().unwrap();
    assert!(log().contains("got-term"), "{}", log());
    assert_eq!(
        status.code(),
        Some(42),
        "the daemon's exit code, through kcl and unshare"
    );
}
