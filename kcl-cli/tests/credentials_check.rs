//! `kcl daemon` checks the credentials before it starts a JVM (which takes 40 s to fail on bad
//! ones): one line per service, exit 125 with what was tried when there are none. Offline:
//! each run has a cleared environment, an empty HOME, and instance metadata off (or pointed at a
//! local socket that never answers). The check runs before the Java check, so these runs use a
//! java that does not exist: "cannot run" in the output means the check passed.

mod common;
mod daemon_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use common::{temp_dir, text};
use daemon_support::{PROPERTIES, Setup, daemon_without_paths, setup};

/// The exit code of `kcl daemon` when it refuses to start the daemon.
const REFUSED: i32 = 125;

/// What `kcl daemon` says when the credentials check passed and it went on to Java.
const WENT_ON_TO_JAVA: &str = "cannot run /nonexistent/java -version";

/// A setup whose properties are `PROPERTIES` plus `extra` lines (a later line wins).
fn setup_with(name: &str, extra: &str) -> Setup {
    let setup = setup(name);
    std::fs::write(&setup.properties, format!("{PROPERTIES}{extra}")).unwrap();
    setup
}

/// `kcl daemon` on the setup with a java that does not exist, in a cleared environment: PATH,
/// an empty HOME, instance metadata off, and `env`.
fn daemon(setup: &Setup, env: &[(&str, &str)]) -> Command {
    daemon_with_java(setup, Path::new("/nonexistent/java"), env)
}

/// [`daemon`] with this java.
fn daemon_with_java(setup: &Setup, java: &Path, env: &[(&str, &str)]) -> Command {
    let home = setup.dir.join("empty-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut command = daemon_without_paths(setup, java);
    command
        .arg("--properties")
        .arg(&setup.properties)
        .arg("--jars")
        .arg(&setup.jars)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn run(mut command: Command) -> (Output, String) {
    let output = command.output().unwrap();
    let (_, stderr) = text(&output);
    (output, stderr)
}

/// A shared credentials file with profile `dev`.
fn credentials_file(dir: &Path) -> PathBuf {
    let path = dir.join("credentials");
    std::fs::write(
        &path,
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n\
         [dev]\naws_access_key_id = AKIDDEVPROFILE\naws_secret_access_key = dev-secret\n",
    )
    .unwrap();
    path
}

#[test]
fn environment_variables_are_named_with_the_key_prefix_never_the_secret() {
    let setup = setup("cred-env");
    let (output, stderr) = run(daemon(
        &setup,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT1"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
        ],
    ));
    assert_eq!(output.status.code(), Some(REFUSED), "{stderr}");
    for service in ["Kinesis", "DynamoDB"] {
        assert!(
            stderr.contains(&format!(
                "kcl daemon: credentials for {service}: environment variables (AKIA…, does not expire)"
            )),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("kcl daemon: credentials for CloudWatch: not used: metricsLevel = NONE"),
        "{stderr}"
    );
    assert!(!stderr.contains("very-secret-value"), "{stderr}");
    assert!(!stderr.contains("AKIAENVIRONMENT1"), "{stderr}");
    assert!(stderr.contains(WENT_ON_TO_JAVA), "{stderr}");
}

#[test]
fn a_profile_is_named_with_its_file() {
    let setup = setup("cred-profile");
    let file = credentials_file(&setup.dir);
    let (output, stderr) = run(daemon(
        &setup,
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
            ("AWS_PROFILE", "dev"),
        ],
    ));
    assert_eq!(output.status.code(), Some(REFUSED), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "kcl daemon: credentials for Kinesis: profile dev in {} (AKID…, does not expire)",
            file.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("dev-secret"), "{stderr}");
    assert!(stderr.contains(WENT_ON_TO_JAVA), "{stderr}");
}

/// `ProfileCredentialsProvider|NAME` checks that profile, whatever AWS_PROFILE says; a service
/// with its own key is checked with it.
#[test]
fn the_daemon_grammar_names_the_profile_and_each_service_its_own_provider() {
    let setup = setup_with(
        "cred-grammar",
        "AwsCredentialsProvider = ProfileCredentialsProvider|dev\n\
         AwsCredentialsProviderDynamoDB = EnvironmentVariableCredentialsProvider\n",
    );
    let file = credentials_file(&setup.dir);
    let (output, stderr) = run(daemon(
        &setup,
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
            ("AWS_PROFILE", "default"),
        ],
    ));
    assert_eq!(output.status.code(), Some(REFUSED), "{stderr}");
    assert!(
        stderr.contains("error: no credentials for DynamoDB (AwsCredentialsProviderDynamoDB = EnvironmentVariableCredentialsProvider)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains(WENT_ON_TO_JAVA), "{stderr}");

    // With the environment variables, DynamoDB has them and Kinesis has profile dev.
    let (output, stderr) = run(daemon(
        &setup,
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
            ("AWS_PROFILE", "default"),
            ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT1"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ],
    ));
    assert_eq!(output.status.code(), Some(REFUSED), "{stderr}");
    assert!(
        stderr.contains("credentials for Kinesis: profile dev in"),
        "{stderr}"
    );
    assert!(
        stderr.contains("credentials for DynamoDB: environment variables (AKIA…"),
        "{stderr}"
    );
    assert!(stderr.contains(WENT_ON_TO_JAVA), "{stderr}");
}

/// The no-credentials error, with the time it took (reported, not asserted).
fn assert_no_credentials(setup: &Setup, env: &[(&str, &str)], what: &str) {
    let started = Instant::now();
    let (output, stderr) = run(daemon(setup, env));
    eprintln!(
        "no credentials ({what}): exit {:?} after {:?}",
        output.status.code(),
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(REFUSED), "{stderr}");
    assert!(
        stderr.contains("error: no credentials for Kinesis and DynamoDB (AwsCredentialsProvider = DefaultCredentialsProvider); tried, in order:"),
        "{stderr}"
    );
    for tried in [
        "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        "profile default (AWS_PROFILE unset) in ",
        "web identity token file (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN)",
        "ECS/container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "EC2 instance metadata",
    ] {
        assert!(
            stderr.contains(&format!("\n  {tried}")),
            "{tried}: {stderr}"
        );
    }
    assert!(
        stderr.contains("hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"),
        "{stderr}"
    );
    assert!(stderr.contains("--no-credentials-check"), "{stderr}");
    assert!(!stderr.contains(WENT_ON_TO_JAVA), "{stderr}");
}

#[test]
fn no_credentials_exit_125_with_what_was_tried() {
    let setup = setup_with(
        "cred-none",
        "kinesisEndpoint = https://kinesis.us-east-1.amazonaws.com\n",
    );
    assert_no_credentials(&setup, &[], "instance metadata off");

    // Instance metadata on, at a socket that accepts and never answers: the SDK's own timeout
    // ends it.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    assert_no_credentials(
        &setup,
        &[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint),
        ],
        "instance metadata silent",
    );
    drop(silent);

    // --no-credentials-check goes on to Java.
    let mut command = daemon(&setup, &[]);
    command.arg("--no-credentials-check");
    let (output, stderr) = run(command);
    assert_eq!(output.status.code(), Some(REFUSED), "{stderr}");
    assert!(!stderr.contains("credentials for"), "{stderr}");
    assert!(stderr.contains(WENT_ON_TO_JAVA), "{stderr}");
}

#[test]
fn loopback_endpoints_get_dummy_credentials_and_nothing_is_looked_up() {
    // A profile that exists nowhere: a lookup would fail.
    let setup = setup_with(
        "cred-loopback",
        "kinesisEndpoint = http://localhost:4567\ndynamoDBEndpoint = http://127.0.0.1:8000\n\
         AwsCredentialsProvider = ProfileCredentialsProvider|nowhere\n",
    );
    let (output, stderr) = run(daemon(&setup, &[]));
    assert_eq!(output.status.code(), Some(REFUSED), "{stderr}");
    assert!(
        stderr.contains("kcl daemon: credentials for Kinesis: dummy credentials: endpoint http://localhost:4567 (kinesisEndpoint) is on this machine"),
        "{stderr}"
    );
    assert!(
        stderr.contains("kcl daemon: credentials for DynamoDB: dummy credentials: endpoint http://127.0.0.1:8000 (dynamoDBEndpoint) is on this machine"),
        "{stderr}"
    );
    assert!(!stderr.contains("tried"), "{stderr}");
    assert!(stderr.contains(WENT_ON_TO_JAVA), "{stderr}");
}

#[test]
fn a_v1_class_is_refused_naming_default_credentials_provider() {
    let setup = setup_with(
        "cred-v1",
        "AwsCredentialsProvider = DefaultAWSCredentialsProviderChain\n",
    );
    let (output, stderr) = run(daemon(
        &setup,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT1"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ],
    ));
    assert_eq!(output.status.code(), Some(REFUSED), "{stderr}");
    assert!(
        stderr.contains("DefaultAWSCredentialsProviderChain"),
        "{stderr}"
    );
    assert!(stderr.contains("DefaultCredentialsProvider"), "{stderr}");
    assert!(!stderr.contains(WENT_ON_TO_JAVA), "{stderr}");
}

#[test]
fn print_command_needs_no_credentials() {
    let setup = setup("cred-print");
    // The setup's fake java answers `-version`.
    let mut command = daemon_with_java(&setup, &setup.java, &[]);
    command.arg("--print-command");
    let output = command.output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("software.amazon.kinesis.multilang.MultiLangDaemon"),
        "{stdout}"
    );
    assert!(!stderr.contains("credentials"), "{stderr}");
}

#[test]
fn the_native_engine_is_checked_before_it_starts() {
    let dir = temp_dir("cred-native");
    let properties = dir.join("app.properties");
    std::fs::write(
        &properties,
        format!("{PROPERTIES}kinesisEndpoint = https://kinesis.us-east-1.amazonaws.com\n"),
    )
    .unwrap();
    let run_native = |env: &[(&str, &str)]| {
        let mut command = common::kcl();
        command
            .args(["daemon", "--native", "--properties"])
            .arg(&properties)
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &dir)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(env.iter().copied());
        run(command)
    };
    let (output, stderr) = run_native(&[]);
    assert_eq!(output.status.code(), Some(REFUSED), "{stderr}");
    assert!(
        stderr.contains("error: no credentials for Kinesis and DynamoDB (the AWS SDK's default chain); tried, in order:"),
        "{stderr}"
    );
    assert!(!stderr.contains("one child per lease"), "{stderr}");
}
