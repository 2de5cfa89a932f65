//! Where things are: the repository, the installed cache (`KCL_E2E_CACHE`), the built binaries,
//! this run's folder, and the environment every started process gets. Read once from the
//! environment, as `scripts/e2e/settings.py` does; nothing here starts a process.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// The region every client and the daemon use (the emulators accept any).
pub const REGION: &str = "us-east-1";

/// The dummy access key and secret: the emulators ignore signatures, the SDKs insist on some.
pub const FAKE_KEY: &str = "kcl-e2e";

/// The JVM flags of the daemon unless `KCL_E2E_JAVA_OPTS` says otherwise: C1 only and a small
/// serial heap (faster start, less CPU on a 2-core machine), as the Python suite.
pub const DEFAULT_JAVA_OPTS: &str = "-Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1";

/// How many run folders are kept under `<cache>/rust-runs/` (the oldest are removed).
const RUNS_KEPT: usize = 20;

/// Paths and knobs of one run of the harness.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The repository (this crate's parent folder).
    pub repo: PathBuf,
    /// The installed cache: `KCL_E2E_CACHE`, else `<repo>/.e2e-cache` (`bash scripts/e2e.sh
    /// install` fills it).
    pub cache: PathBuf,
    /// Cargo's target folder: `CARGO_TARGET_DIR`, else `<repo>/target`.
    pub target: PathBuf,
    /// This run's folder, `<cache>/rust-runs/<epoch ms>-<pid>`: logs, worker folders, sinks.
    /// Kept after the run (the last 20 are).
    pub run_dir: PathBuf,
    /// The `java` program: `KCL_E2E_JAVA`, else `java` from `PATH`.
    pub java: String,
    /// The daemon's JVM flags: `KCL_E2E_JAVA_OPTS`, else [`DEFAULT_JAVA_OPTS`].
    pub java_opts: Vec<String>,
    /// The cargo profile whose examples run (the daemon's child, native_file_sink):
    /// `KCL_E2E_PROFILE`, `debug` (the default) or `release` (the benchmark's choice). The
    /// `kcl` tool, which only writes properties files, is always the debug build.
    pub profile: String,
}

impl Settings {
    /// The settings from the environment, with the cache checked (kinesis-local, its TLS
    /// certificate and moto_server must be installed) and a fresh run folder made.
    pub fn from_env() -> Result<Settings> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("kcl-e2e sits in the repository")
            .to_path_buf();
        let cache = match std::env::var_os("KCL_E2E_CACHE") {
            Some(path) if !path.is_empty() => absolute(&repo, PathBuf::from(path)),
            _ => repo.join(".e2e-cache"),
        };
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(path) if !path.is_empty() => absolute(&repo, PathBuf::from(path)),
            _ => repo.join("target"),
        };
        let java_opts = std::env::var("KCL_E2E_JAVA_OPTS")
            .ok()
            .filter(|opts| !opts.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_JAVA_OPTS.to_owned());
        let profile = match std::env::var("KCL_E2E_PROFILE") {
            Ok(p) if p == "release" || p == "debug" => p,
            Ok(p) if !p.is_empty() => {
                return Err(Error::msg(format!(
                    "KCL_E2E_PROFILE={p:?}: it must be `debug` or `release`"
                )));
            }
            _ => "debug".to_owned(),
        };
        let settings = Settings {
            run_dir: PathBuf::new(),
            profile,
            java: std::env::var("KCL_E2E_JAVA").unwrap_or_else(|_| "java".to_owned()),
            java_opts: java_opts.split_whitespace().map(str::to_owned).collect(),
            repo,
            cache,
            target,
        };
        for (what, path) in [
            ("kinesis-local", settings.node_package().join("main.js")),
            (
                "kinesis-local's TLS certificate",
                settings.node_package().join("server.json"),
            ),
            ("moto_server", settings.moto_server()),
        ] {
            if !path.is_file() {
                return Err(Error::missing(
                    format!("{what}: {} does not exist", path.display()),
                    "run `bash scripts/e2e.sh install` (or set KCL_E2E_CACHE to an installed cache)",
                ));
            }
        }
        settings.with_run_dir()
    }

    fn with_run_dir(mut self) -> Result<Settings> {
        let runs = self.cache.join("rust-runs");
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        self.run_dir = runs.join(format!("{millis}-{}", std::process::id()));
        std::fs::create_dir_all(&self.run_dir)
            .map_err(|e| Error::io(format!("creating {}", self.run_dir.display()), e))?;
        prune(&runs, &self.run_dir);
        Ok(self)
    }

    /// The kinesis-local npm package in the cache.
    pub fn node_package(&self) -> PathBuf {
        self.cache.join("node/node_modules/kinesis-local")
    }

    /// `node` on `PATH` (the emulator's runtime, and the aws-kcl children's).
    pub fn node(&self) -> Result<PathBuf> {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join("node"))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                Error::missing(
                    "node is not on PATH",
                    "install node (scripts/e2e.sh installs it)",
                )
            })
    }

    /// moto_server in the cache's Python environment.
    pub fn moto_server(&self) -> PathBuf {
        self.cache.join("venv/bin/moto_server")
    }

    /// The preload that makes kinesis-local listen on 127.0.0.1 only.
    pub fn loopback_preload(&self) -> PathBuf {
        self.repo.join("scripts/e2e/loopback.js")
    }

    /// The KCL jars of the kclpy-ext wheel in the cache's Python environment
    /// (`venv/lib/python*/site-packages/amazon_kclpy/jars`).
    pub fn jars(&self) -> Result<PathBuf> {
        let lib = self.cache.join("venv/lib");
        let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path().join("site-packages/amazon_kclpy/jars"))
                .find(|dir| dir.is_dir())
        });
        found.ok_or_else(|| {
            Error::missing(
                format!(
                    "the KCL jars: no {}/python*/site-packages/amazon_kclpy/jars",
                    lib.display()
                ),
                "run `bash scripts/e2e.sh install`",
            )
        })
    }

    /// The `kcl` tool (`cargo build -p kcl-cli`; scripts/e2e.sh builds it).
    pub fn kcl(&self) -> Result<PathBuf> {
        self.built(self.target.join("debug/kcl"), "cargo build -p kcl-cli")
    }

    /// The kcl tool of the examples' profile, as `kcl daemon --native` runs a worker (the
    /// release build when `KCL_E2E_PROFILE=release`, the benchmark's).
    pub fn kcl_engine(&self) -> Result<PathBuf> {
        self.built(
            self.target.join(&self.profile).join("kcl"),
            &format!("cargo build{} -p kcl-cli", self.release_flag()),
        )
    }

    /// A built example of [`Settings::profile`] (`cargo build [--release] --example NAME`;
    /// scripts/e2e.sh builds the sinks).
    pub fn example(&self, name: &str) -> Result<PathBuf> {
        self.built(
            self.target.join(&self.profile).join("examples").join(name),
            &format!("cargo build{} --example {name}", self.release_flag()),
        )
    }

    /// A built example of the feature `native` and of [`Settings::profile`] (`cargo build
    /// [--release] --example NAME --features native`; scripts/e2e.sh builds native_file_sink).
    pub fn native_example(&self, name: &str) -> Result<PathBuf> {
        self.built(
            self.target.join(&self.profile).join("examples").join(name),
            &format!(
                "cargo build{} --example {name} --features native",
                self.release_flag()
            ),
        )
    }

    fn release_flag(&self) -> &'static str {
        if self.profile == "release" {
            " --release"
        } else {
            ""
        }
    }

    fn built(&self, path: PathBuf, command: &str) -> Result<PathBuf> {
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::missing(
                format!("{} is not built", path.display()),
                format!(
                    "run `{command}` (with CARGO_TARGET_DIR={}; scripts/e2e.sh builds it)",
                    self.target.display()
                ),
            ))
        }
    }

    /// The environment of the emulators, the daemon and its children: this process's, with the
    /// dummy credentials and the region, `RUST_LOG=info` unless set, and never a profile or a
    /// session token (no real account by accident).
    pub fn process_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(key, _)| {
                !matches!(
                    key.as_str(),
                    "AWS_PROFILE"
                        | "AWS_SESSION_TOKEN"
                        | "AWS_SECURITY_TOKEN"
                        | "AWS_ACCESS_KEY_ID"
                        | "AWS_SECRET_ACCESS_KEY"
                        | "AWS_REGION"
                        | "AWS_DEFAULT_REGION"
                )
            })
            .collect();
        for (key, value) in [
            ("AWS_ACCESS_KEY_ID", FAKE_KEY),
            ("AWS_SECRET_ACCESS_KEY", FAKE_KEY),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
        ] {
            env.push((key.to_owned(), value.to_owned()));
        }
        if std::env::var_os("RUST_LOG").is_none() {
            env.push(("RUST_LOG".to_owned(), "info".to_owned()));
        }
        env
    }
}

fn absolute(repo: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        repo.join(path)
    }
}

/// Removes the oldest run folders beyond [`RUNS_KEPT`] (never `current`).
fn prune(runs: &Path, current: &Path) {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return;
    };
    let mut folders: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .collect();
    folders.sort();
    let excess = folders.len().saturating_sub(RUNS_KEPT);
    for (_, folder) in folders.into_iter().take(excess) {
        if folder != current {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}
