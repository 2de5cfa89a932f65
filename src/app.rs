//! One binary, two engines: [`run`] reads the command line and runs the same processor either
//! as a MultiLangDaemon child (no arguments: what the daemon starts) or on the native engine
//! (`native PROPERTIES_FILE`, feature `native`). `#[kcl::main]` expands to a call of [`run`].
//!
//! The command line ([`Mode::from_args`]):
//!
//! | arguments | what runs |
//! |---|---|
//! | none, or anything not below | the MultiLangDaemon child on stdin/stdout ([`run_main_with`](crate::run_main_with)), exactly as before: the arguments are left to your code |
//! | `native FILE`, `native --properties FILE` (`-p FILE`, `--properties=FILE`), then any arguments | the native engine (`kcl::native`), configured by the daemon's properties file `FILE`; the arguments after it are left to your code |
//! | `--help` or `-h` alone, `native --help` | this usage, on stdout; exit code 0 |
//!
//! A `native` command line that is wrong (no file, an unknown option before it) exits with code 2
//! and a message on stderr. Without the feature `native`, `native ...` exits with code 2 and says
//! which cargo feature to enable. On the native engine, a properties file that cannot be used
//! exits with code 2; a run that fails (a shard's failure policy `exit`, a second signal, ...)
//! with code 1; SIGINT or SIGTERM stops it gracefully (final checkpoints, then the leases
//! released), and that exits with code 0.
//!
//! `build` makes the [`Runtime`] of one shard. Under the daemon, each shard is a process of its
//! own and `build` is called once, after the process is [prepared](crate::prepare). On the
//! native engine, every shard lease runs in this process, and `build` is called once per shard
//! it starts processing, on that shard's own OS thread (the processor need not be `Send`).
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     // `my-app` under the daemon; `my-app native app.properties` without Java.
//!     kcl::app::run(|| {
//!         kcl::Runtime::new(kcl::from_fn(|batch, _| {
//!             tracing::info!(records = batch.len(), "batch");
//!             Ok(())
//!         }))
//!     })
//! }
//! ```

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::ExitCode;

use kcl_core::{RecordProcessor, Runtime};

/// Exit code of a command line that is wrong, of a properties file the native engine cannot
/// use, and of `native` in a binary built without the feature.
pub const USAGE_EXIT_CODE: u8 = 2;

/// The feature this binary's `kcl` was built with, for the native engine (`true`: `native ...`
/// runs it).
pub const NATIVE_ENABLED: bool = cfg!(feature = "native");

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Run as a MultiLangDaemon child on stdin/stdout.
    Child,
    /// Run on the native engine with this properties file.
    Native {
        /// The MultiLangDaemon's properties file.
        properties: PathBuf,
    },
    /// Print the usage.
    Help,
}

/// A `native` command line that is wrong: what to print before the usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl Mode {
    /// Reads the arguments after the program's name (see the [module](self) documentation).
    ///
    /// ```
    /// use kcl::app::Mode;
    /// let mode = |args: &[&str]| Mode::from_args(args.iter().map(Into::into));
    /// assert_eq!(mode(&[]), Ok(Mode::Child));
    /// assert_eq!(mode(&["--my-own-flag"]), Ok(Mode::Child)); // left to your code, as before
    /// assert_eq!(mode(&["native", "app.properties"]), Ok(Mode::Native { properties: "app.properties".into() }));
    /// assert_eq!(mode(&["native", "--properties", "a.properties", "x"]), Ok(Mode::Native { properties: "a.properties".into() }));
    /// assert_eq!(mode(&["--help"]), Ok(Mode::Help));
    /// assert!(mode(&["native"]).is_err());
    /// assert!(mode(&["native", "--check", "a.properties"]).is_err());
    /// ```
    pub fn from_args<I>(args: I) -> Result<Mode, UsageError>
    where
        I: IntoIterator<Item = OsString>,
    {
        let args: Vec<OsString> = args.into_iter().collect();
        match args.first().map(OsString::as_os_str) {
            Some(first) if first == "native" => native_args(&args[1..]),
            Some(first) if args.len() == 1 && (first == "--help" || first == "-h") => {
                Ok(Mode::Help)
            }
            _ => Ok(Mode::Child),
        }
    }
}

/// `native`'s arguments: the properties file, then whatever the application reads itself.
fn native_args(args: &[OsString]) -> Result<Mode, UsageError> {
    let Some(first) = args.first() else {
        return Err(UsageError("`native` needs the properties file".into()));
    };
    let native = |path: &OsStr| {
        if path.is_empty() {
            Err(UsageError("the properties file's name is empty".into()))
        } else {
            Ok(Mode::Native {
                properties: PathBuf::from(path),
            })
        }
    };
    let text = first.to_string_lossy();
    match text.as_ref() {
        "--help" | "-h" => Ok(Mode::Help),
        "--properties" | "-p" => match args.get(1) {
            Some(path) => native(path),
            None => Err(UsageError(format!("{text} needs the properties file"))),
        },
        _ => {
            if let Some(path) = text.strip_prefix("--properties=") {
                native(OsStr::new(path))
            } else if text.starts_with('-') && text != "-" {
                Err(UsageError(format!(
                    "unknown option {text} of `native` (the tool checks files: `kcl native --properties FILE --check`)"
                )))
            } else {
                native(first)
            }
        }
    }
}

/// The usage, for a program named `program`.
///
/// ```
/// let usage = kcl::app::usage("orders");
/// assert!(usage.contains("orders native PROPERTIES_FILE"));
/// ```
pub fn usage(program: &str) -> String {
    let feature = if NATIVE_ENABLED {
        ""
    } else {
        "\n  (this binary was built without the native engine: enable the `kcl` crate's cargo feature `native`)"
    };
    format!(
        "\
A Kinesis record processor (kcl), for either engine.

Usage:
  {program}
      Run as a child of the Java KCL MultiLangDaemon, which starts it (executableName in the
      daemon's properties file): stdin and stdout carry the daemon's protocol.
  {program} native PROPERTIES_FILE [ARGS...]
  {program} native --properties PROPERTIES_FILE [ARGS...]
      Run without Java: the native engine reads the stream and keeps the leases in the KCL 3.x
      lease table itself, configured by the daemon's own properties file. SIGINT/SIGTERM stop
      it gracefully (final checkpoints, leases released); a second signal stops at once.{feature}
  {program} --help
      This text.

Logs go to stderr (RUST_LOG, default info). Check a properties file for the native engine with
`kcl native --properties PROPERTIES_FILE --check`.
"
    )
}

/// Runs the processor `build` makes on the engine the process's command line asks for (see the
/// [module](self) documentation) and returns the exit code. What `#[kcl::main]` expands to.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     kcl::app::run(|| kcl::Runtime::new(kcl::from_fn(|_, _| Ok(()))))
/// }
/// ```
pub fn run<P, B>(build: B) -> ExitCode
where
    P: RecordProcessor,
    B: Fn() -> Runtime<P> + Send + Sync + 'static,
{
    let mut args = std::env::args_os();
    let program = args
        .next()
        .map(|name| {
            PathBuf::from(name)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "app".into());
    run_with_args(&program, args, build)
}

/// [`run`] with the command line given: `program` names the binary in messages, `args` are the
/// arguments after it.
///
/// ```
/// use std::process::ExitCode;
/// // A wrong `native` command line: exit code 2, nothing run.
/// let code = kcl::app::run_with_args("orders", ["native".into()], || {
///     kcl::Runtime::new(kcl::from_fn(|_, _| Ok(())))
/// });
/// assert_eq!(code, ExitCode::from(kcl::app::USAGE_EXIT_CODE));
/// ```
pub fn run_with_args<P, B, I>(program: &str, args: I, build: B) -> ExitCode
where
    P: RecordProcessor,
    B: Fn() -> Runtime<P> + Send + Sync + 'static,
    I: IntoIterator<Item = OsString>,
{
    match Mode::from_args(args) {
        Ok(Mode::Child) => kcl_core::run_main_with(build),
        Ok(Mode::Help) => {
            print!("{}", usage(program));
            ExitCode::SUCCESS
        }
        Ok(Mode::Native { properties }) => native(program, &properties, build),
        Err(error) => {
            eprintln!("{program}: {error}\n");
            eprint!("{}", usage(program));
            ExitCode::from(USAGE_EXIT_CODE)
        }
    }
}

/// `native FILE`: the native engine, with `build` as every shard's factory.
#[cfg(feature = "native")]
fn native<P, B>(program: &str, properties: &std::path::Path, build: B) -> ExitCode
where
    P: RecordProcessor,
    B: Fn() -> Runtime<P> + Send + Sync + 'static,
{
    kcl_core::init_logging();
    let config = match kcl_native::load_config(properties) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("{program}: {error}");
            return ExitCode::from(USAGE_EXIT_CODE);
        }
    };
    tracing::info!(
        properties = %properties.display(),
        application = config.application_name(),
        stream = config.stream_name(),
        worker = config.worker_id(),
        "starting the native engine"
    );
    match kcl_native::run_blocking(config, move |_: &kcl_native::ShardInfo| build()) {
        Ok(()) => {
            tracing::info!("the native engine stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!("{program}: the native engine failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `native FILE` without the feature: says which feature to enable.
#[cfg(not(feature = "native"))]
fn native<P, B>(program: &str, _properties: &std::path::Path, _build: B) -> ExitCode
where
    P: RecordProcessor,
    B: Fn() -> Runtime<P> + Send + Sync + 'static,
{
    eprintln!(
        "{program}: error: this binary was built without the native engine, so `native` cannot run; \
         enable the `kcl` crate's cargo feature `native` (in Cargo.toml: \
         kcl = {{ version = \"{version}\", features = [\"native\"] }}) and build it again. \
         Without arguments it runs as a MultiLangDaemon child.",
        version = env!("CARGO_PKG_VERSION"),
    );
    ExitCode::from(USAGE_EXIT_CODE)
}
