//! The flags of `kcl jars` and its subcommands.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `kcl jars`.
#[derive(Debug, Args)]
pub(crate) struct JarsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: JarsCommand,
}

/// Where the jar list comes from and where the jars live.
#[derive(Debug, Args, Clone)]
pub(crate) struct JarSet {
    /// The KCL release whose pinned jar list to use.
    #[arg(long, value_name = "VERSION", default_value = super::DEFAULT_RELEASE)]
    pub release: String,

    /// Use this manifest file instead (lines `group:artifact:version sha256`).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// The jar folder [default: $KCL_JARS_DIR, else ~/.cache/kcl/jars/<release>].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `kcl jars` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum JarsCommand {
    /// Download the jars (Maven repository layout), or copy them from a folder, checking each
    /// SHA-256; jars already present and valid are kept.
    Fetch(FetchArgs),
    /// Check a jar folder against the pinned list: missing, extra and mismatched jars.
    Verify(VerifyArgs),
    /// Print the jar folder, or the classpath.
    Path(PathArgs),
}

/// `kcl jars fetch`.
#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    /// Jar list and folder.
    #[command(flatten)]
    pub set: JarSet,

    /// Maven repository base URL; `https://user:password@host/...` or KCL_MAVEN_USERNAME /
    /// KCL_MAVEN_PASSWORD for a private one (the password is never printed).
    #[arg(long, value_name = "URL", env = "KCL_MAVEN_REPO", hide_env_values = true, default_value = super::DEFAULT_REPO)]
    pub repo: String,

    /// Send the repository password over plain http:// to another machine than this one
    /// (refused by default: anyone on the network path could read it).
    #[arg(long)]
    pub allow_insecure_auth: bool,

    /// The largest jar accepted when the manifest pins no size (bytes, or with K, M, G).
    // 64 MiB by default: the largest jar of KCL 3.1.3 is about 3 MiB.
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = super::parse_size)]
    pub max_jar_size: u64,

    /// Copy the jars from this folder (e.g. amazon_kclpy/jars of an installed kclpy) instead of
    /// downloading.
    #[arg(long, value_name = "DIR", conflicts_with = "offline")]
    pub from: Option<PathBuf>,

    /// Do not download: only check what is in the folder.
    #[arg(long)]
    pub offline: bool,

    /// Attempts per jar after the first, on network errors and 5xx answers.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,

    /// Seconds before a download attempt gives up.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `kcl jars verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Jar list and folder.
    #[command(flatten)]
    pub set: JarSet,

    /// The folder to check (same as --dir).
    #[arg(value_name = "DIR")]
    pub folder: Option<PathBuf>,
}

/// `kcl jars path`.
#[derive(Debug, Args)]
pub(crate) struct PathArgs {
    /// Jar list and folder.
    #[command(flatten)]
    pub set: JarSet,

    /// Print the classpath (the jars of the list, `:`-separated) instead of the folder, once
    /// every jar has its pinned SHA-256.
    #[arg(long)]
    pub classpath: bool,

    /// With --classpath: check only that the jars are there, not their SHA-256.
    #[arg(long, requires = "classpath")]
    pub no_verify: bool,
}
