//! The command line of a `#[kcl::main]` binary (`kcl::app::run`), on a built example
//! (`word_count`): `--help`, a wrong `native` command line, and `native` without the feature
//! (`cargo test`) or with it (`cargo test --features native`: a file the native engine cannot
//! use). Without arguments the binary is a daemon child, as `tests/child_process.rs` checks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Builds `word_count` with this test's features (once per run) and returns its path.
fn word_count() -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _lock = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let mut command = Command::new(env!("CARGO"));
    command.args([
        "build",
        "--quiet",
        "--example",
        "word_count",
        "--manifest-path",
        manifest,
    ]);
    if cfg!(feature = "native") {
        command.args(["--features", "native"]);
    }
    assert!(command.status().expect("cargo runs").success());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("debug").join("examples").join("word_count")
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `word_count ARGS` with stdin closed and no `RUST_LOG`.
fn run(args: &[&str]) -> Output {
    let output = Command::new(word_count())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("word_count runs");
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kcl-app-modes-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn help_lists_both_engines_on_stdout() {
    let out = run(&["--help"]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(
        out.stdout.contains("word_count native PROPERTIES_FILE"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("MultiLangDaemon"), "{}", out.stdout);
    assert_eq!(
        out.stdout.contains("built without the native engine"),
        !cfg!(feature = "native"),
        "{}",
        out.stdout
    );
    assert_eq!(run(&["native", "--help"]).stdout, out.stdout);
}

#[test]
fn a_wrong_native_command_line_exits_2_with_the_usage_on_stderr() {
    for args in [
        &["native"][..],
        &["native", "--properties"],
        &["native", "--check", "app.properties"],
    ] {
        let out = run(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}: stdout must stay empty");
        assert!(out.stderr.contains("Usage:"), "{args:?}: {}", out.stderr);
    }
    assert!(
        run(&["native"])
            .stderr
            .contains("needs the properties file")
    );
    assert!(
        run(&["native", "--check", "a"])
            .stderr
            .contains("unknown option --check")
    );
}

#[cfg(not(feature = "native"))]
#[test]
fn native_without_the_feature_says_which_feature_to_enable() {
    let dir = temp_dir("no-feature");
    let file = write(
        &dir,
        "app.properties",
        "streamName = s\napplicationName = a\nretrievalMode = POLLING\n",
    );
    let out = run(&["native", &file]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("built without the native engine, so `native` cannot run"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("features = [\"native\"]"),
        "{}",
        out.stderr
    );
}

#[cfg(feature = "native")]
#[test]
fn native_with_a_file_it_cannot_use_exits_2_naming_the_file_and_the_key() {
    let dir = temp_dir("bad-file");
    let missing = dir.join("missing.properties").display().to_string();
    let out = run(&["native", &missing]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("missing.properties"), "{}", out.stderr);

    // Enhanced fan-out (no retrievalMode): the native engine polls only, so it refuses.
    let fanout = write(
        &dir,
        "fanout.properties",
        "streamName = s\napplicationName = a\n",
    );
    let out = run(&["native", "--properties", &fanout]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("retrievalMode"), "{}", out.stderr);
    assert_eq!(out.stdout, "");
}
