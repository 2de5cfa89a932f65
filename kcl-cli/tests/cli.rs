//! Every command answers `--help`, and the binary reports errors as `error: ...`.

mod common;

use common::{kcl, text};

#[test]
fn every_command_has_help() {
    for (args, expected) in [
        (&["--help"][..], "Run, configure and launch"),
        (&["run", "--help"][..], "--checkpoint-error"),
        (&["properties", "--help"][..], "--retrieval-mode"),
        (&["jars", "--help"][..], "fetch"),
        (&["jars", "fetch", "--help"][..], "KCL_MAVEN_REPO"),
        (&["jars", "verify", "--help"][..], "--manifest"),
        (&["jars", "path", "--help"][..], "--classpath"),
        (&["daemon", "--help"][..], "--print-command"),
        (&["put", "--help"][..], "--period"),
        (&["produce", "--help"][..], "--shutdown-timeout"),
    ] {
        let output = kcl().args(args).output().unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert!(stdout.contains(expected), "{args:?}:\n{stdout}");
        assert!(stdout.contains("Usage: kcl"), "{args:?}:\n{stdout}");
    }
    let version = kcl().arg("--version").output().unwrap();
    assert_eq!(
        text(&version).0.trim(),
        concat!("kcl ", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_commands_and_flags_exit_2() {
    for args in [&["frobnicate"][..], &["run", "--bogus"][..], &[][..]] {
        let output = kcl().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(text(&output).1.contains("Usage:"));
    }
}
