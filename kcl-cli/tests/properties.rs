//! `kcl properties`: writing a file from flags, refusing silent traps, checking a file; and, when
//! Java and the KCL jars are here, reading the written file with the daemon's own configurator.

mod common;

use std::path::Path;
use std::process::Command;

use common::{kcl, run_kcl, temp_dir, text};

const BASE: [&str; 7] = [
    "properties",
    "--stream",
    "words",
    "--application",
    "words-app",
    "--executable",
    "sh",
];

#[test]
fn writes_a_complete_file_with_explicit_retrieval_mode() {
    let dir = temp_dir("props-write");
    let mut args = BASE.to_vec();
    args.extend([
        "--region",
        "eu-west-1",
        "--endpoint",
        "http://127.0.0.1:4566",
        "--worker-id",
        "host-1",
        "--set",
        "maxRecords=100",
    ]);
    let output = run_kcl(&args, &dir);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    for line in [
        "executableName = sh",
        "streamName = words",
        "applicationName = words-app",
        "AwsCredentialsProvider = DefaultCredentialsProvider",
        "regionName = eu-west-1",
        "kinesisEndpoint = http://127.0.0.1:4566",
        "dynamoDBEndpoint = http://127.0.0.1:4566",
        "initialPositionInStream = TRIM_HORIZON",
        "retrievalMode = POLLING",
        "metricsLevel = NONE",
        "workerId = host-1",
        "shutdownGraceMillis = 30000",
        "maxRecords = 100",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
    assert!(stderr.is_empty(), "a clean file has no warnings: {stderr}");

    let file = dir.join("app.properties");
    let mut to_file = args.clone();
    to_file.extend(["-o", file.to_str().unwrap()]);
    let output = run_kcl(&to_file, &dir);
    assert!(output.status.success());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stdout);
    let again = run_kcl(&to_file, &dir);
    assert_eq!(again.status.code(), Some(2), "no overwrite without --force");
    assert!(text(&again).1.contains("--force"));

    let check = run_kcl(&["properties", "--check", file.to_str().unwrap()], &dir);
    let (stdout, stderr) = text(&check);
    assert!(check.status.success(), "{stderr}");
    assert!(stdout.contains("0 errors, 0 warnings"), "{stdout}");
}

#[test]
fn refuses_unknown_keys_and_warns_about_ignored_values() {
    let dir = temp_dir("props-traps");
    let mut args = BASE.to_vec();
    args.extend(["--set", "idleTimeBetweenReadsInMilis=250"]);
    let output = run_kcl(&args, &dir);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("would ignore it silently"), "{stderr}");
    assert!(
        stderr.contains("did you mean idleTimeBetweenReadsInMillis?"),
        "{stderr}"
    );

    args.push("--allow-unknown");
    let output = run_kcl(&args, &dir);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success());
    assert!(stdout.contains("idleTimeBetweenReadsInMilis = 250"));
    assert!(stderr.contains("unknown key"), "{stderr}");

    let mut args = BASE.to_vec();
    args.extend([
        "--set",
        "cleanupLeasesUponShardCompletion=false",
        "--set",
        "failoverTimeMillis=0",
        "--set",
        "isGracefulLeaseHandoffEnabled=false",
        "--retrieval-mode",
        "default",
        "--metrics",
        "detailed",
        "--kinesis-endpoint",
        "http://127.0.0.1:1",
    ]);
    let output = run_kcl(&args, &dir);
    let (_, stderr) = text(&output);
    assert!(
        output.status.success(),
        "warnings do not stop the file: {stderr}"
    );
    for expected in [
        "cleanupLeasesUponShardCompletion = false has no effect",
        "failoverTimeMillis = 0 has no effect",
        "enhanced fan-out",
        "dynamoDBEndpoint is not",
        "metrics go to AWS itself",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("isGracefulLeaseHandoffEnabled"),
        "a Boolean key applies false: {stderr}"
    );

    let missing = run_kcl(&["properties", "--stream", "s"], &dir);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing)
        .1
        .contains("missing --application, --executable"));
    let at = run_kcl(
        &[BASE.as_slice(), &["--initial-position", "at-timestamp"]].concat(),
        &dir,
    );
    assert_eq!(at.status.code(), Some(2));
    assert!(text(&at).1.contains("--at-timestamp"));
}

#[test]
fn check_finds_the_traps_of_a_hand_written_file() {
    let dir = temp_dir("props-check");
    let file = dir.join("legacy.properties");
    std::fs::write(
        &file,
        "executableName = \\ python3 app.py\napplicationName = a\nStreamName = s\nAWSCredentialsProvider = DefaultCredentialsProvider\n\
         maxRecords = 1O0\nmetricsLevel = verbose\n",
    )
    .unwrap();
    let output = run_kcl(&["properties", "--check", file.to_str().unwrap()], &dir);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    for expected in [
        "error: line 1: executableName starts with a space",
        "error: streamName (or streamArn) is missing",
        "unknown key \"StreamName\"",
        "did you mean streamName?",
        "maxRecords = \"1O0\" is not a whole number: the daemon turns it into 0 and ignores it",
        "metricsLevel = \"verbose\": expected one of NONE, SUMMARY, DETAILED",
        "shutdownGraceMillis is not set",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(stdout.contains("3 errors"), "{stdout}");
    assert!(
        !stderr.contains("AwsCredentialsProvider is missing"),
        "the credentials key ignores case: {stderr}"
    );
}

/// Reads a properties file with the KCL 3.1.3 configurator (the daemon's own parser) and prints
/// what it applied.
const PROBE: &str = r#"
import software.amazon.kinesis.multilang.config.*;
import java.io.*;
import java.net.URLEncoder;
public class Probe {
  public static void main(String[] a) throws Exception {
    MultiLangDaemonConfiguration c = new KinesisClientLibConfigurator().getConfiguration(new FileInputStream(a[0]));
    System.out.println("streamName=" + c.getStreamName());
    System.out.println("applicationName=" + c.getApplicationName());
    System.out.println("workerIdentifier=" + URLEncoder.encode(c.getWorkerIdentifier(), "UTF-8"));
    System.out.println("retrievalMode=" + c.getRetrievalMode());
    System.out.println("metricsLevel=" + c.getMetricsLevel());
    System.out.println("initialPosition=" + c.getInitialPositionInStreamExtended().getInitialPositionInStream());
    System.out.println("shutdownGraceMillis=" + c.getShutdownGraceMillis());
    System.out.println("maxRecords=" + c.getPollingConfig().getMaxRecords());
  }
}
"#;

#[test]
#[ignore = "needs java, javac and the KCL 3.1.3 jars (KCL_TEST_JARS_DIR, .e2e-cache or PyPI): scripts/test.sh runs it when CI or KCL_REQUIRE_PREREQUISITES is set"]
fn the_daemons_own_configurator_reads_the_written_file() {
    let jars = common::require_real_jars();
    common::require_program("javac", "-version");
    common::require_program("java", "-version");
    let dir = temp_dir("props-java");
    std::fs::write(dir.join("Probe.java"), PROBE).unwrap();
    let classpath = format!("{}/*", jars.display());
    let compiled = Command::new("javac")
        .args(["-nowarn", "-cp", &classpath, "Probe.java"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(compiled.status.success(), "{}", text(&compiled).1);
    let file = dir.join("app.properties");
    let output = kcl()
        .args(BASE)
        .args([
            "--worker-id",
            "wörker-ключ",
            "--metrics",
            "summary",
            "--initial-position",
            "latest",
            "--set",
            "maxRecords=250",
            "-o",
        ])
        .arg(&file)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output).1);
    let read = Command::new("java")
        .args(["-cp", &format!("{classpath}:{}", dir.display()), "Probe"])
        .arg(Path::new(&file))
        .current_dir(&dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&read);
    assert!(read.status.success(), "{stderr}");
    for line in [
        "streamName=words",
        "applicationName=words-app",
        "workerIdentifier=w%C3%B6rker-%D0%BA%D0%BB%D1%8E%D1%87",
        "retrievalMode=POLLING",
        "metricsLevel=SUMMARY",
        "initialPosition=LATEST",
        "shutdownGraceMillis=30000",
        "maxRecords=250",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
}
