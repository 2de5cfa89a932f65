//! Files `kcl` rewrites atomically (the `kcl run` checkpoint file, `kcl properties -o FILE`):
//! new ones are private (0600), a replaced file keeps its mode, and a symbolic link planted at a
//! temporary file's name is not written through.
#![cfg(unix)]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{kcl, run_kcl, scripted_child, temp_dir, text};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `kcl run --checkpoints cp.json ARGS -- scripted_child good` in `dir`.
fn scripted_run(dir: &Path, args: &[&str]) -> Command {
    let mut command = kcl();
    command
        .args(["run", "--checkpoints", "cp.json"])
        .args(args)
        .arg("--")
        .arg(scripted_child())
        .arg("good")
        .current_dir(dir);
    command
}

fn run_lines(dir: &Path, count: usize, fresh: bool) {
    let input = dir.join("input.txt");
    let text_in: String = (1..=count).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, text_in).unwrap();
    let mut args = vec!["--input", input.to_str().unwrap()];
    if fresh {
        args.push("--fresh");
    }
    let output = scripted_run(dir, &args)
        .stdin(Stdio::null())
        .output()
        .expect("kcl runs");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
}

#[test]
fn a_new_checkpoint_file_is_private_and_a_rewritten_one_keeps_its_mode() {
    let dir = temp_dir("mode-run");
    let checkpoints = dir.join("cp.json");
    run_lines(&dir, 5, true);
    assert_eq!(mode(&checkpoints), 0o600, "a new checkpoint file is 0600");
    set_mode(&checkpoints, 0o640);
    run_lines(&dir, 10, false);
    assert!(
        std::fs::read_to_string(&checkpoints)
            .unwrap()
            .contains(&kcl_cli::run::sequence_number(9)),
        "the second run rewrote the file"
    );
    assert_eq!(mode(&checkpoints), 0o640, "the mode survives a rewrite");
    set_mode(&checkpoints, 0o600);
    run_lines(&dir, 12, true);
    assert_eq!(
        mode(&checkpoints),
        0o600,
        "and 0600 stays 0600 with --fresh"
    );
}

#[test]
fn properties_written_with_force_keep_the_mode_of_the_file_they_replace() {
    let dir = temp_dir("mode-props");
    let file = dir.join("app.properties");
    let args = [
        "properties",
        "--stream",
        "words",
        "--application",
        "words-app",
        "--executable",
        "sh",
        "-o",
        "app.properties",
        "--force",
    ];
    let output = run_kcl(&args, &dir);
    assert!(output.status.success(), "{}", text(&output).1);
    assert_eq!(mode(&file), 0o600, "a new properties file is 0600");
    for wanted in [0o600, 0o644] {
        set_mode(&file, wanted);
        let output = run_kcl(&args, &dir);
        assert!(output.status.success(), "{}", text(&output).1);
        assert_eq!(mode(&file), wanted, "kept after -o FILE --force");
    }
}

#[test]
fn a_symlink_planted_at_a_temporary_name_is_not_written_through() {
    let dir = temp_dir("planted");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    // The run reads stdin, so its pid is known before it writes the checkpoint file; every
    // name the writer picks first (`.cp.json.tmp-PID-N`) is planted as a link to the victim.
    let mut child = scripted_run(&dir, &["--batch-size", "2", "--linger-ms", "20"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcl runs");
    let pid = child.id();
    let planted: Vec<_> = (0..64)
        .map(|n| dir.join(format!(".cp.json.tmp-{pid}-{n}")))
        .collect();
    for link in &planted {
        std::os::unix::fs::symlink(&victim, link).unwrap();
    }
    let mut stdin = child.stdin.take().unwrap();
    for i in 1..=6 {
        writeln!(stdin, "line {i}").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let checkpoints = dir.join("cp.json");
    let meta = std::fs::symlink_metadata(&checkpoints).unwrap();
    assert!(meta.file_type().is_file(), "cp.json is a regular file");
    assert!(
        std::fs::read_to_string(&checkpoints)
            .unwrap()
            .contains(&kcl_cli::run::sequence_number(5))
    );
    for link in &planted {
        assert!(
            std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()),
            "someone else's file is left alone: {}",
            link.display()
        );
    }
}
