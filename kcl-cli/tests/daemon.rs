//! `kcl daemon`: the command it builds (`--print-command`), its checks, and a run with a fake
//! `java` that records its arguments and reports the signals it gets. The real daemon runs in
//! the end-to-end suite.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{kcl, require_program, require_real_jars, temp_dir, text};

const PROPERTIES: &str = "executableName = sh\nstreamName = s\napplicationName = a\n\
AwsCredentialsProvider = DefaultCredentialsProvider\nretrievalMode = POLLING\nmetricsLevel = NONE\n\
shutdownGraceMillis = 30000\nworkerId = w\nregionName = us-east-1\ninitialPositionInStream = TRIM_HORIZON\n";

struct Setup {
    dir: PathBuf,
    manifest: PathBuf,
    jars: PathBuf,
    properties: PathBuf,
    java: PathBuf,
    java_log: PathBuf,
}

/// A fake `java`: answers `-version` with `version`, otherwise logs its arguments and waits for
/// a signal (TERM → exit 42, INT → exit 43).
fn fake_java(dir: &Path, version: &str) -> PathBuf {
    let path = dir.join(format!("java-{}", version.replace(['.', '"', ' '], "_")));
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = \"-version\" ]; then echo '{version}' >&2; exit 0; fi\n\
         log=\"$KCL_FAKE_JAVA_LOG\"\n\
         for a in \"$@\"; do printf '%s\\n' \"$a\" >> \"$log\"; done\n\
         trap 'echo got-term >> \"$log\"; exit 42' TERM\n\
         trap 'echo got-int >> \"$log\"; exit 43' INT\n\
         echo ready >> \"$log\"\n\
         while true; do sleep 0.05; done\n"
    );
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

fn setup(name: &str) -> Setup {
    let dir = temp_dir(name);
    let jars = dir.join("jars");
    std::fs::create_dir_all(&jars).unwrap();
    let mut manifest = String::new();
    for (artifact, content) in [("alpha", "a"), ("beta", "b")] {
        std::fs::write(jars.join(format!("{artifact}-1.0.jar")), content).unwrap();
        manifest.push_str(&format!(
            "org.example:{artifact}:1.0 {}\n",
            common::sha256(content.as_bytes())
        ));
    }
    let manifest_path = dir.join("manifest.txt");
    std::fs::write(&manifest_path, manifest).unwrap();
    let props_dir = dir.join("my props");
    std::fs::create_dir_all(&props_dir).unwrap();
    let properties = props_dir.join("app.properties");
    std::fs::write(&properties, PROPERTIES).unwrap();
    let java = fake_java(&dir, "openjdk version \"17.0.9\" 2023-10-17");
    Setup {
        java_log: dir.join("java.log"),
        dir,
        manifest: manifest_path,
        jars,
        properties,
        java,
    }
}

fn daemon(setup: &Setup) -> std::process::Command {
    daemon_with(setup, &setup.java)
}

fn daemon_with(setup: &Setup, java: &Path) -> std::process::Command {
    let mut command = kcl();
    command
        .arg("daemon")
        .arg("--properties")
        .arg(&setup.properties)
        .arg("--manifest")
        .arg(&setup.manifest)
        .arg("--jars")
        .arg(&setup.jars)
        .arg("--java")
        .arg(java)
        .env("KCL_FAKE_JAVA_LOG", &setup.java_log)
        .current_dir(&setup.dir);
    command
}

#[test]
fn print_command_shows_the_classpath_main_class_and_arguments() {
    let setup = setup("daemon-print");
    let log = setup.dir.join("logback.xml");
    std::fs::write(&log, "<configuration/>").unwrap();
    let output = daemon(&setup)
        .arg("--log-configuration")
        .arg(&log)
        .args(["--java-opt", "-Xmx128m", "--print-command"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let jars = setup.jars.canonicalize().unwrap();
    let props_dir = setup.properties.parent().unwrap().canonicalize().unwrap();
    let expected = format!(
        "{} -Xmx128m -cp '{}/alpha-1.0.jar:{}/beta-1.0.jar:{}' software.amazon.kinesis.multilang.MultiLangDaemon --properties-file '{}' --log-configuration {}",
        setup.java.display(),
        jars.display(),
        jars.display(),
        props_dir.display(),
        setup.properties.display(),
        log.display()
    );
    assert_eq!(stdout.trim(), expected);
    assert!(
        !setup.java_log.exists(),
        "java was only asked for its version"
    );
}

#[test]
fn runs_java_forwards_sigterm_and_returns_its_exit_code() {
    let setup = setup("daemon-run");
    let child = daemon(&setup)
        .args(["--java-opt", "-Dkcl.test=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(&setup.java_log)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "java did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(42),
        "the daemon's exit code: {stderr}"
    );
    assert!(stderr.contains("kcl daemon: Java 17, 2 jars"), "{stderr}");
    let log = std::fs::read_to_string(&setup.java_log).unwrap();
    let args: Vec<&str> = log.lines().collect();
    assert_eq!(args[0], "-Dkcl.test=1");
    assert_eq!(args[1], "-cp");
    assert_eq!(args[3], "software.amazon.kinesis.multilang.MultiLangDaemon");
    assert_eq!(
        args[4..6],
        ["--properties-file", setup.properties.to_str().unwrap()]
    );
    assert!(log.contains("got-term"), "SIGTERM reached java: {log}");
}

#[test]
fn refuses_old_java_missing_jars_and_broken_properties() {
    let setup = setup("daemon-refuse");
    let old = fake_java(&setup.dir, "java version \"1.7.0_80\"");
    let output = daemon_with(&setup, &old).output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("is Java 7; the KCL 3 daemon needs Java 8 or newer"),
        "{stderr}"
    );

    let output = daemon_with(&setup, Path::new("/no/java")).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("cannot run /no/java -version"));

    std::fs::write(setup.jars.join("beta-1.0.jar"), "changed").unwrap();
    let output = daemon(&setup).arg("--print-command").output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("SHA-256 mismatch: beta-1.0.jar"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: run `kcl jars fetch --dir"),
        "{stderr}"
    );
    let output = daemon(&setup)
        .args(["--print-command", "--no-verify"])
        .output()
        .unwrap();
    assert!(output.status.success(), "--no-verify checks presence only");
    std::fs::remove_file(setup.jars.join("beta-1.0.jar")).unwrap();
    let output = daemon(&setup)
        .args(["--print-command", "--no-verify"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("missing: beta-1.0.jar"));

    std::fs::write(&setup.properties, "executableName = sh\n").unwrap();
    let output = daemon(&setup).arg("--print-command").output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("error: applicationName is missing"),
        "{stderr}"
    );

    let output = kcl()
        .args(["daemon", "--properties", "/no/such.properties"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("kcl properties"));
}

#[test]
#[ignore = "needs java and the KCL 3.1.3 jars (KCL_TEST_JARS_DIR, .e2e-cache or PyPI): scripts/test.sh runs it when CI or KCL_REQUIRE_PREREQUISITES is set"]
fn print_command_with_the_real_jars_and_java() {
    let jars = require_real_jars();
    require_program("java", "-version");
    let dir = temp_dir("daemon-real");
    let properties = dir.join("app.properties");
    std::fs::write(&properties, PROPERTIES).unwrap();
    let output = kcl()
        .args([
            "daemon",
            "--properties",
            "app.properties",
            "--java",
            "java",
            "--print-command",
            "--jars",
        ])
        .arg(&jars)
        .current_dir(&dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(words[0], "java");
    assert_eq!(words[1], "-cp");
    let classpath: Vec<&str> = words[2].trim_matches('\'').split(':').collect();
    assert_eq!(classpath.len(), 80, "79 jars and the properties folder");
    assert!(classpath[..79].iter().all(|jar| Path::new(jar).is_file()));
    assert_eq!(classpath[79], dir.canonicalize().unwrap().to_str().unwrap());
    assert_eq!(
        words[3..],
        [
            "software.amazon.kinesis.multilang.MultiLangDaemon",
            "--properties-file",
            "app.properties"
        ]
    );
}
