//! `kcl daemon`: the command it builds (`--print-command`), its checks, and a run with a fake
//! `java` that records its arguments and reports the signals it gets. The real daemon runs in
//! the end-to-end suite.

mod common;
mod daemon_support;

use std::path::Path;
use std::process::Stdio;

use common::{kcl, require_program, require_real_jars, temp_dir, text};
use daemon_support::{
    PROPERTIES, daemon, daemon_with, daemon_without_paths, fake_java, pin_jars, setup, wait_ready,
};

/// The exit code of `kcl daemon` when it refuses to start the daemon.
const REFUSED: i32 = 125;

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
    let expected = format!(
        "{} -Xmx128m -cp {}/alpha-1.0.jar:{}/beta-1.0.jar software.amazon.kinesis.multilang.MultiLangDaemon --properties-file '{}' --log-configuration {}",
        setup.java.display(),
        jars.display(),
        jars.display(),
        setup.properties.canonicalize().unwrap().display(),
        log.display()
    );
    assert_eq!(stdout.trim(), expected);
    assert!(
        !setup.java_log.exists(),
        "java was only asked for its version"
    );
}

/// Without `--log-configuration`, the daemon gets the configuration kcl ships, written next to
/// the jars: the daemon's own, with the ERROR-level copy of every child stderr line turned off.
#[test]
fn without_a_log_configuration_the_shipped_one_is_written_next_to_the_jars() {
    let setup = setup("daemon-shipped-log");
    let jars = setup.jars.canonicalize().unwrap();
    let shipped = jars.join("kcl-logback.xml");
    for _ in 0..2 {
        let output = daemon(&setup).arg("--print-command").output().unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stdout
                .trim()
                .ends_with(&format!("--log-configuration {}", shipped.display())),
            "{stdout}"
        );
        let xml = std::fs::read_to_string(&shipped).unwrap();
        assert!(
            xml.contains(
                r#"<logger name="software.amazon.kinesis.multilang.DrainChildSTDERRTask" level="OFF"/>"#
            ),
            "{xml}"
        );
        assert!(xml.contains(r#"<root level="INFO">"#), "{xml}");
    }
    // Where it cannot be written, the daemon's bundled configuration is used, and kcl says so.
    std::fs::remove_file(&shipped).unwrap();
    std::fs::create_dir(&shipped).unwrap();
    let output = daemon(&setup).arg("--print-command").output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("the daemon's bundled logback configuration is used"),
        "{stderr}"
    );
    assert!(!stdout.contains("--log-configuration"), "{stdout}");
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
    wait_ready(&setup.java_log);
    daemon_support::send(libc::SIGTERM, child.id());
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
        [
            "--properties-file",
            setup.properties.canonicalize().unwrap().to_str().unwrap()
        ]
    );
    assert!(log.contains("got-term"), "SIGTERM reached java: {log}");
}

#[test]
fn refuses_old_java_missing_jars_and_broken_properties() {
    let setup = setup("daemon-refuse");
    let old = fake_java(&setup.dir, "java version \"1.7.0_80\"");
    let output = daemon_with(&setup, &old).output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(REFUSED));
    assert!(
        stderr.contains("is Java 7; the KCL 3 daemon needs Java 8 or newer"),
        "{stderr}"
    );

    let output = daemon_with(&setup, Path::new("/no/java")).output().unwrap();
    assert_eq!(output.status.code(), Some(REFUSED));
    assert!(text(&output).1.contains("cannot run /no/java -version"));

    std::fs::write(setup.jars.join("beta-1.0.jar"), "changed").unwrap();
    let output = daemon(&setup).arg("--print-command").output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(REFUSED));
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
    assert_eq!(output.status.code(), Some(REFUSED));
    assert!(text(&output).1.contains("missing: beta-1.0.jar"));

    std::fs::write(&setup.properties, "executableName = sh\n").unwrap();
    let output = daemon(&setup).arg("--print-command").output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(REFUSED));
    assert!(
        stderr.contains("error: applicationName is missing"),
        "{stderr}"
    );

    let output = kcl()
        .args(["daemon", "--properties", "/no/such.properties"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(REFUSED));
    assert!(text(&output).1.contains("kcl properties"));

    let help = kcl().args(["daemon", "--help"]).output().unwrap();
    assert!(
        text(&help)
            .0
            .contains("125    kcl did not start the daemon"),
        "the refusal code is documented in --help"
    );
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
    assert_eq!(
        classpath.len(),
        79,
        "the 79 jars, not the properties folder"
    );
    assert!(classpath.iter().all(|jar| Path::new(jar).is_file()));
    assert_eq!(
        words[3..],
        [
            "software.amazon.kinesis.multilang.MultiLangDaemon",
            "--properties-file",
            properties.canonicalize().unwrap().to_str().unwrap(),
            "--log-configuration",
            jars.canonicalize()
                .unwrap()
                .join("kcl-logback.xml")
                .to_str()
                .unwrap()
        ]
    );
}

/// A scratch folder `shared/` holding the properties file and what an attacker could plant next
/// to it: a class with the daemon's name and a logging configuration.
fn plant_next_to_the_properties(setup: &daemon_support::Setup) -> std::path::PathBuf {
    let shared = setup.dir.join("shared");
    let package = shared.join("software/amazon/kinesis/multilang");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(package.join("MultiLangDaemon.class"), "planted").unwrap();
    std::fs::write(shared.join("logback-test.xml"), "<configuration/>").unwrap();
    std::fs::write(shared.join("app.properties"), PROPERTIES).unwrap();
    shared
}

#[test]
fn the_properties_folder_is_not_on_the_classpath_and_the_file_is_passed_canonical() {
    let setup = setup("daemon-props-folder");
    let shared = plant_next_to_the_properties(&setup);
    let print = |properties: &str, cwd: &Path| {
        let output = daemon_without_paths(&setup, &setup.java)
            .args(["--print-command", "--properties", properties])
            .arg("--jars")
            .arg(&setup.jars)
            .current_dir(cwd)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stderr}");
        stdout.trim().to_string()
    };
    let jars = setup.jars.canonicalize().unwrap();
    let canonical = shared.join("app.properties").canonicalize().unwrap();
    let expected = format!(
        "{} -cp {}/alpha-1.0.jar:{}/beta-1.0.jar software.amazon.kinesis.multilang.MultiLangDaemon --properties-file {} --log-configuration {}/kcl-logback.xml",
        setup.java.display(),
        jars.display(),
        jars.display(),
        canonical.display(),
        jars.display()
    );
    // A relative path in a subfolder, a bare name (its folder is `.`), and a path through `..`.
    assert_eq!(print("shared/app.properties", &setup.dir), expected);
    assert_eq!(print("app.properties", &shared), expected);
    assert_eq!(print("../shared/./app.properties", &setup.jars), expected);
}

#[test]
#[ignore = "needs java and javac: scripts/test.sh runs it when CI or KCL_REQUIRE_PREREQUISITES is set"]
fn a_class_planted_next_to_the_properties_does_not_run() {
    require_program("java", "-version");
    require_program("javac", "-version");
    let setup = setup("daemon-planted");
    // A jar set of one real (empty) jar: it lacks the main class, so only a planted one could run.
    // (a zip's end-of-central-directory record: signature, then 18 zero bytes).
    let empty_jar = [b"PK\x05\x06".as_slice(), &[0; 18]].concat();
    let jars = setup.dir.join("real-jars");
    let manifest = setup.dir.join("real-manifest.txt");
    std::fs::write(&manifest, pin_jars(&jars, &[("thing", &empty_jar)])).unwrap();
    let shared = plant_next_to_the_properties(&setup);
    let source = setup
        .dir
        .join("src/software/amazon/kinesis/multilang/MultiLangDaemon.java");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    std::fs::write(
        &source,
        "package software.amazon.kinesis.multilang;\n\
         public class MultiLangDaemon { public static void main(String[] a) {\n\
         System.out.println(\"PLANTED CLASS RAN\"); } }\n",
    )
    .unwrap();
    let compiled = std::process::Command::new("javac")
        .arg("-d")
        .arg(&shared)
        .arg(&source)
        .status()
        .unwrap();
    assert!(compiled.success(), "javac");
    let output = kcl()
        .args([
            "daemon",
            "--properties",
            "shared/app.properties",
            "--java",
            "java",
        ])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--jars")
        .arg(&jars)
        // The credentials check before start finds these.
        .env("AWS_ACCESS_KEY_ID", "AKIDKCLTEST")
        .env("AWS_SECRET_ACCESS_KEY", "kcl-test")
        .current_dir(&setup.dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(!stdout.contains("PLANTED"), "{stdout}");
    assert!(
        stderr.contains("kcl daemon: Java") && stderr.contains("MultiLangDaemon"),
        "java started and found no main class: {stderr}"
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "java's own exit code: {stderr}"
    );
}

#[test]
fn refuses_classpath_entries_holding_the_path_separator() {
    let setup = setup("daemon-colon");
    // A folder `cp/a:b` holding a valid jar set: java would read `cp/a` and `b/...` instead.
    let colon = setup.dir.join("cp").join("a:b");
    let manifest = pin_jars(&colon, &[("alpha", b"a"), ("beta", b"b")]);
    std::fs::write(&setup.manifest, manifest).unwrap();
    std::fs::create_dir_all(setup.dir.join("cp/a")).unwrap();
    let output = daemon_without_paths(&setup, &setup.java)
        .arg("--properties")
        .arg(&setup.properties)
        .arg("--jars")
        .arg("cp/a:b")
        .arg("--print-command")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(REFUSED), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let named = colon.canonicalize().unwrap();
    assert!(
        stderr.contains(&format!(
            "error: the jar folder {} contains ':'",
            named.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");

    let extra = setup.dir.join("x:y");
    std::fs::create_dir_all(&extra).unwrap();
    let output = daemon(&setup)
        .arg("--classpath")
        .arg("x:y")
        .arg("--print-command")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(REFUSED), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: the --classpath entry {} contains ':'",
            extra.canonicalize().unwrap().display()
        )),
        "{stderr}"
    );
    assert!(!setup.java_log.exists(), "java never ran");
}
