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
    assert!(
        text(&missing)
            .1
            .contains("missing --application, --executable")
    );
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
        "maxRecords = \"1O0\" is not a whole number: the daemon ignores it, so the KCL default stays",
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

#[test]
fn set_refuses_keys_that_would_split_or_inject_lines() {
    let dir = temp_dir("props-keys");
    for key in [
        "x\nexecutableName",
        "foo bar",
        "a:b",
        "#comment",
        "!bang",
        "back\\slash",
        "tab\tkey",
        "ключ",
        "",
    ] {
        let setting = format!("{key}=1");
        let args = [BASE.as_slice(), &["--allow-unknown", "--set", &setting]].concat();
        let output = run_kcl(&args, &dir);
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{key:?}: {stderr}");
        assert!(
            stderr.contains("a key may hold only letters, digits, '.', '_' and '-'"),
            "{key:?}: {stderr}"
        );
        assert!(stdout.is_empty(), "{key:?}: nothing is written: {stdout}");
    }
    let args = [
        BASE.as_slice(),
        &["--allow-unknown", "--set", "my.custom_key-1 = one two"],
    ]
    .concat();
    let output = run_kcl(&args, &dir);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.lines().any(|l| l == "my.custom_key-1 = one two"),
        "{stdout}"
    );
}

/// Reads a properties file with `java.util.Properties.load` and prints each key with the
/// UTF-16 code units of its value in hex.
const LOAD: &str = r#"
import java.io.*;
import java.util.*;
public class Load {
  public static void main(String[] a) throws Exception {
    Properties p = new Properties();
    try (InputStream in = new FileInputStream(a[0])) { p.load(in); }
    for (String k : new TreeSet<>(p.stringPropertyNames())) {
      StringBuilder b = new StringBuilder(k).append('\t');
      for (char c : p.getProperty(k).toCharArray()) b.append(String.format("%04x ", (int) c));
      System.out.println(b.toString().trim());
    }
  }
}
"#;

#[test]
#[ignore = "needs java and javac: scripts/test.sh runs it when CI or KCL_REQUIRE_PREREQUISITES is set"]
fn java_properties_load_reads_back_what_was_written() {
    common::require_program("javac", "-version");
    common::require_program("java", "-version");
    let dir = temp_dir("props-load");
    std::fs::write(dir.join("Load.java"), LOAD).unwrap();
    let compiled = Command::new("javac")
        .args(["-nowarn", "Load.java"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(compiled.status.success(), "{}", text(&compiled).1);
    let values: [(&str, &str); 10] = [
        ("t.separators", "a=b:c#d!e f"),
        ("t.hash", "#not a comment"),
        ("t.bang", "!not a comment"),
        ("t.equals", "=starts with a separator"),
        ("t.colon", ":starts with a separator"),
        ("t.backslash", "back\\slash and trailing\\"),
        ("t.lines", "one\ntwo\r\nthree\rfour"),
        ("t.controls", "tab\tform\u{c}bell\u{7}"),
        ("t.unicode", "é ключ 🔑"),
        ("t.injection", "x\nexecutableName = /opt/evil"),
    ];
    let file = dir.join("app.properties");
    let mut command = kcl();
    command.args(BASE).args([
        "--worker-id",
        "  leading and trailing spaces  ",
        "--allow-unknown",
    ]);
    for (key, value) in values {
        command.arg("--set").arg(format!("{key}={value}"));
    }
    let output = command
        .arg("-o")
        .arg(&file)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output).1);
    let read = Command::new("java")
        .args(["-cp", ".", "Load"])
        .arg(&file)
        .current_dir(&dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&read);
    assert!(read.status.success(), "{stderr}");
    let hex = |value: &str| {
        value
            .encode_utf16()
            .map(|unit| format!("{unit:04x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut expected: Vec<String> = values
        .iter()
        .map(|(key, value)| format!("{key}\t{}", hex(value)))
        .collect();
    for (key, value) in [
        ("executableName", "sh"),
        ("workerId", "  leading and trailing spaces  "),
    ] {
        expected.push(format!("{key}\t{}", hex(value)));
    }
    for line in &expected {
        assert!(
            stdout.lines().any(|l| l == line),
            "Properties.load read something else than {line:?}:\n{stdout}"
        );
    }
    assert_eq!(
        stdout.lines().count(),
        expected.len() + 7,
        "no extra keys (the 7 others the writer adds): {stdout}"
    );
}

/// A properties file that `--check` passes with 0 warnings, running `executable`.
fn clean_file(dir: &Path, executable: &str, extra: &str) -> std::path::PathBuf {
    let file = dir.join("app.properties");
    std::fs::write(
        &file,
        format!(
            "executableName = {executable}\nstreamName = s\napplicationName = a\n\
             AwsCredentialsProvider = DefaultCredentialsProvider\nregionName = us-east-1\n\
             initialPositionInStream = TRIM_HORIZON\nretrievalMode = POLLING\nmetricsLevel = NONE\n\
             workerId = w\nshutdownGraceMillis = 30000\n{extra}"
        ),
    )
    .unwrap();
    file
}

fn check(file: &Path, dir: &Path) -> (String, String) {
    let output = run_kcl(&["properties", "--check", file.to_str().unwrap()], dir);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "warnings only: {stderr}");
    (stdout, stderr)
}

#[test]
fn check_warns_about_plain_http_endpoints_to_other_hosts() {
    let dir = temp_dir("props-http");
    let file = clean_file(
        &dir,
        "sh",
        "kinesisEndpoint = http://kinesis.internal.example.com:4567\n\
         dynamoDBEndpoint = http://127.0.0.1:4566/\n\
         cloudWatchEndpoint = HTTP://user@10.0.0.5\n\
         stsEndpoint = https://sts.internal.example.com\n\
         otherEndpoint = http://[::1]:4566\n\
         localEndpoint = http://localhost:4566\n",
    );
    let (stdout, stderr) = check(&file, &dir);
    assert!(
        stderr.contains(
            "warning: line 11: kinesisEndpoint = http://kinesis.internal.example.com:4567 is plain HTTP to kinesis.internal.example.com, which is not this machine"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "line 13: cloudWatchEndpoint = HTTP://user@10.0.0.5 is plain HTTP to 10.0.0.5"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("use https://"), "{stderr}");
    for quiet in [
        "dynamoDBEndpoint =",
        "stsEndpoint =",
        "otherEndpoint =",
        "localEndpoint =",
    ] {
        assert!(!stderr.contains(quiet), "{quiet}: {stderr}");
    }
    assert!(
        stdout.contains("0 errors, 6 warnings"),
        "2 plain HTTP, 4 unknown keys: {stdout}"
    );

    // The writer warns too (and still writes).
    let args = [
        BASE.as_slice(),
        &["--endpoint", "http://emulator.internal:4566"],
    ]
    .concat();
    let output = run_kcl(&args, &dir);
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("kinesisEndpoint = http://emulator.internal:4566 is plain HTTP")
            && stderr.contains("dynamoDBEndpoint = http://emulator.internal:4566 is plain HTTP"),
        "{stderr}"
    );

    // `kcl daemon` runs the same checks before anything else.
    let jars = dir.join("no-jars");
    std::fs::create_dir_all(&jars).unwrap();
    let output = run_kcl(
        &[
            "daemon",
            "--properties",
            file.to_str().unwrap(),
            "--jars",
            jars.to_str().unwrap(),
        ],
        &dir,
    );
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("kinesisEndpoint = http://kinesis.internal.example.com:4567 is plain HTTP"),
        "{stderr}"
    );
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn check_warns_about_a_writable_child_program_or_folder() {
    let dir = temp_dir("props-writable");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let program = bin.join("proc");
    std::fs::write(&program, "#!/bin/sh\n").unwrap();
    chmod(&dir, 0o755);
    chmod(&bin, 0o755);
    chmod(&program, 0o777);
    let file = clean_file(&dir, "./bin/proc --flag", "");
    let (stdout, stderr) = check(&file, &dir);
    assert!(
        stderr
            .contains("warning: line 1: the child program ./bin/proc is world-writable (mode 777)"),
        "{stderr}"
    );
    assert!(stderr.contains("chmod go-w"), "{stderr}");
    assert!(stdout.contains("0 errors, 1 warnings"), "{stdout}");

    chmod(&program, 0o775);
    let (_, stderr) = check(&file, &dir);
    assert!(stderr.contains("is group-writable (mode 775)"), "{stderr}");

    chmod(&program, 0o755);
    chmod(&bin, 0o777);
    let (_, stderr) = check(&file, &dir);
    assert!(
        stderr.contains(&format!(
            "the folder {} of the child program ./bin/proc is world-writable (mode 777)",
            bin.display()
        )),
        "{stderr}"
    );

    chmod(&bin, 0o755);
    let (stdout, stderr) = check(&file, &dir);
    assert!(stdout.contains("0 errors, 0 warnings"), "{stdout}{stderr}");

    // A program found on PATH is checked where it was found.
    let file = clean_file(&dir, "proc", "");
    chmod(&program, 0o757);
    let output = kcl()
        .args(["properties", "--check", file.to_str().unwrap()])
        .current_dir(&dir)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains(&format!(
            "the child program proc ({}) is world-writable",
            program.display()
        )),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn check_warns_when_the_daemon_would_split_a_path_with_spaces() {
    let dir = temp_dir("props-spaces");
    chmod(&dir, 0o755);
    let folder = dir.join("my app");
    std::fs::create_dir_all(&folder).unwrap();
    chmod(&folder, 0o755);
    for program in [dir.join("my"), folder.join("proc")] {
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        chmod(&program, 0o755);
    }
    let whole = format!("{}/my app/proc", dir.display());
    let file = clean_file(&dir, &whole, "");
    let (_, stderr) = check(&file, &dir);
    assert!(
        stderr.contains(&format!(
            "warning: line 1: the file {whole} exists, but the daemon splits executableName on spaces and would run {}/my with the arguments app/proc",
            dir.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("without spaces"), "{stderr}");

    let file = clean_file(&dir, "./my app/proc --verbose", "");
    let (_, stderr) = check(&file, &dir);
    assert!(
        stderr.contains(
            "the file ./my app/proc exists, but the daemon splits executableName on spaces and would run ./my with the arguments app/proc --verbose"
        ),
        "{stderr}"
    );

    let file = clean_file(&dir, "./my --verbose", "");
    let (stdout, stderr) = check(&file, &dir);
    assert!(stdout.contains("0 errors, 0 warnings"), "{stdout}{stderr}");
}

#[test]
fn check_warns_about_secrets_in_the_file() {
    let dir = temp_dir("props-secrets");
    let file = clean_file(
        &dir,
        "sh",
        "aws.secretAccessKey = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\
         dbPassword = hunter2-hunter2\n\
         AWS_SESSION_TOKEN = FwoGZXIvYXdzEXAMPLETOKEN\n\
         note = AKIAIOSFODNN7EXAMPLE\n",
    );
    let (stdout, stderr) = check(&file, &dir);
    for (line, key) in [
        (11, "aws.secretAccessKey"),
        (12, "dbPassword"),
        (13, "AWS_SESSION_TOKEN"),
    ] {
        assert!(
            stderr.contains(&format!(
                "warning: line {line}: {key} looks like a secret: a properties file should not hold one"
            )),
            "{key}: {stderr}"
        );
    }
    assert!(
        stderr.contains("warning: line 14: the value of note looks like an AWS access key id"),
        "{stderr}"
    );
    assert!(stderr.contains("AwsCredentialsProvider"), "{stderr}");
    for secret in [
        "wJalrXUtnFEMI",
        "hunter2",
        "FwoGZXIvYXdzEXAMPLETOKEN",
        "AKIAIOSFODNN7EXAMPLE",
    ] {
        assert!(
            !stderr.contains(secret),
            "the secret is not printed: {stderr}"
        );
    }
    assert!(
        stdout.contains("0 errors, 8 warnings"),
        "4 secrets, 4 unknown keys: {stdout}"
    );
}
