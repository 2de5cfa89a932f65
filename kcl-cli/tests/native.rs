//! `kcl native`: the properties file checked as the native engine reads it (`--check`), and the
//! application's binary (`executableName`) run with `native FILE`, its exit code passed on and
//! SIGTERM/SIGINT forwarded. The binary here is a shell script that records its arguments and
//! the signals it gets.
// kill(2) on the `kcl` processes the tests start.
#![allow(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{kcl, run_kcl, temp_dir, text};

/// A polling application; `executable` is its `executableName` line, if any.
fn properties(dir: &Path, executable: Option<&str>, extra: &str) -> PathBuf {
    let mut text = String::new();
    if let Some(executable) = executable {
        text.push_str(&format!("executableName = {executable}\n"));
    }
    text.push_str("streamName = orders\napplicationName = orders-app\nretrievalMode = POLLING\n");
    text.push_str(extra);
    let path = dir.join("app.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// An executable script `name` in `dir`: it writes its arguments, one a line, to `args.txt`,
/// then runs `body`.
fn stub(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let args = dir.join("args.txt");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{}'\n{body}\n",
            args.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

fn recorded_args(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("args.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_missing_properties_flag_is_a_usage_error() {
    let dir = temp_dir("native-usage");
    let output = run_kcl(&["native"], &dir);
    assert_eq!(output.status.code(), Some(2));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("--properties"), "{stderr}");

    let output = run_kcl(
        &[
            "native",
            "--properties",
            "a.properties",
            "--check",
            "--print-command",
        ],
        &dir,
    );
    assert_eq!(output.status.code(), Some(2), "{:?}", text(&output));
}

#[test]
fn a_missing_file_is_refused_before_anything_runs() {
    let dir = temp_dir("native-missing");
    let output = run_kcl(&["native", "--properties", "nope.properties"], &dir);
    assert_eq!(output.status.code(), Some(125));
    let (_, stderr) = text(&output);
    assert!(stderr.contains("nope.properties: no such file"), "{stderr}");
    let output = run_kcl(
        &["native", "--properties", "nope.properties", "--check"],
        &dir,
    );
    assert_eq!(output.status.code(), Some(2), "{:?}", text(&output));
}

#[test]
fn check_reports_what_the_native_engine_does_with_the_file() {
    let dir = temp_dir("native-check");
    let program = stub(&dir, "app", "exit 0");
    let path = properties(
        &dir,
        Some("./app"),
        "AwsCredentialsProvider = ProfileCredentialsProvider\nfailoverTimeMillis = 0\n",
    );
    let output = run_kcl(
        &["native", "--properties", "app.properties", "--check"],
        &dir,
    );
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // The summary, with the command it would run (the file's canonical path).
    let canonical = path.canonicalize().unwrap();
    assert!(
        stdout.contains("native engine: 0 errors, 2 warnings"),
        "{stdout}"
    );
    assert!(
        stdout.contains("application orders-app, stream orders"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "kcl native runs: ./app native {}",
            canonical.display()
        )),
        "{stdout}"
    );
    // kcl-native's own findings, with their lines: credentials other than the default chain
    // are not used (line 5), `failoverTimeMillis = 0` has no effect in a Java int (line 6);
    // no workerId is a note. Its note that the engine starts no child is left out: `kcl
    // native` does start executableName.
    assert!(
        stderr.contains("warning: line 5: AwsCredentialsProvider"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: line 6: failoverTimeMillis"),
        "{stderr}"
    );
    assert!(stderr.contains("note: no workerId"), "{stderr}");
    assert!(!stderr.contains("no child program"), "{stderr}");
    // Nothing ran.
    assert!(!dir.join("args.txt").exists());
    assert!(program.exists());
}

#[test]
fn check_refuses_what_the_native_engine_refuses() {
    let dir = temp_dir("native-check-errors");
    stub(&dir, "app", "exit 0");
    // Enhanced fan-out: the native engine polls only.
    std::fs::write(
        dir.join("fanout.properties"),
        "executableName = ./app\nstreamName = s\napplicationName = a\nretrievalMode = FANOUT\n",
    )
    .unwrap();
    let output = run_kcl(&["native", "-p", "fanout.properties", "--check"], &dir);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("retrievalMode"), "{stderr}");
    assert!(
        stderr.contains("the native engine cannot run with this file"),
        "{stderr}"
    );
    // Running it is refused the same way, as kcl's own failure.
    let output = run_kcl(&["native", "-p", "fanout.properties"], &dir);
    assert_eq!(output.status.code(), Some(125), "{:?}", text(&output));
    assert!(!dir.join("args.txt").exists());

    // No executableName, or a program that is not there.
    properties(&dir, None, "");
    let output = run_kcl(&["native", "-p", "app.properties", "--check"], &dir);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("1 error"), "{stdout}");
    assert!(stderr.contains("no executableName"), "{stderr}");
    properties(&dir, Some("./not-built-yet"), "");
    let output = run_kcl(&["native", "-p", "app.properties", "--check"], &dir);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("./not-built-yet does not exist"),
        "{stderr}"
    );
}

#[test]
fn runs_the_executable_with_native_and_the_file_and_passes_its_exit_code_on() {
    let dir = temp_dir("native-run");
    stub(
        &dir,
        "app",
        "echo 'app: on stdout'; echo 'app: on stderr' >&2; exit 7",
    );
    let path = properties(&dir, Some("./app"), "");
    let output = run_kcl(&["native", "--properties", "app.properties"], &dir);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    let canonical = path.canonicalize().unwrap().display().to_string();
    assert_eq!(recorded_args(&dir), ["native", canonical.as_str()]);
    // The program's output is its own: stdout is not the daemon's protocol here.
    assert_eq!(stdout, "app: on stdout\n");
    assert!(stderr.contains("app: on stderr"), "{stderr}");
    assert!(
        stderr.contains("kcl native: application orders-app, stream orders"),
        "{stderr}"
    );

    // executableName's own words first (a wrapper), then `native FILE`.
    properties(&dir, Some("sh  ./app"), "");
    let output = run_kcl(&["native", "--properties", "app.properties"], &dir);
    assert_eq!(output.status.code(), Some(7), "{:?}", text(&output));
    assert_eq!(recorded_args(&dir), ["native", canonical.as_str()]);

    // --print-command runs nothing.
    std::fs::remove_file(dir.join("args.txt")).unwrap();
    let output = run_kcl(
        &[
            "native",
            "--properties",
            "app.properties",
            "--print-command",
        ],
        &dir,
    );
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout.trim(), format!("sh ./app native {canonical}"));
    assert!(!dir.join("args.txt").exists());
}

/// Starts `kcl native` on a stub that records the signals it gets and exits 3 on SIGTERM and 4
/// on SIGINT; returns once the stub runs.
#[cfg(unix)]
fn start_trapping(dir: &Path) -> Child {
    let log = dir.join("signals.txt");
    let ready = dir.join("ready");
    stub(
        dir,
        "app",
        &format!(
            "trap 'echo TERM >> {log}; exit 3' TERM\ntrap 'echo INT >> {log}; exit 4' INT\ntouch {ready}\nwhile :; do sleep 0.05; done",
            log = log.display(),
            ready = ready.display()
        ),
    );
    properties(dir, Some("./app"), "");
    let child = kcl()
        .args(["native", "--properties", "app.properties"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the stub did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[cfg(unix)]
fn wait(mut child: Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kcl native did not exit after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_reach_the_program_once_and_its_exit_code_is_kcls() {
    for (signal, name, code) in [(libc::SIGTERM, "TERM", 3), (libc::SIGINT, "INT", 4)] {
        let dir = temp_dir("native-signals");
        let child = start_trapping(&dir);
        // SAFETY: kill(2) on our own child with a valid signal number.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(wait(child), Some(code), "{name}");
        let log = std::fs::read_to_string(dir.join("signals.txt")).unwrap();
        assert_eq!(log, format!("{name}\n"), "{name}: forwarded once");
    }
}
