//! The entry points of a native worker: [`run`] (async) and [`run_blocking`] on DynamoDB and
//! Kinesis from a [`NativeConfig`], [`run_with`] on any lease store and Kinesis reader, and
//! [`load_config`] to read the MultiLangDaemon's properties file.
//!
//! [`run`] does what a Java KCL worker does at start: it builds the AWS clients from the
//! configuration (region, `kinesisEndpoint`, `dynamoDBEndpoint`; an endpoint on this machine's
//! loopback gets dummy credentials, as `kcl put` gives an emulator), creates whatever is
//! missing of the three tables (`kcl_lease::dynamo::tables::create_tables`) and the
//! `Migration3.0` item of a KCL 3.x application, then runs a [`Supervisor`] until SIGINT or
//! SIGTERM (a graceful stop; a second signal stops at once).
//!
//! ```no_run
//! use kcl_native::{ShardInfo, processors};
//!
//! fn main() -> Result<(), kcl_native::RunError> {
//!     let config = kcl_native::load_config("app.properties")?;
//!     kcl_native::run_blocking(config, processors(|_: &ShardInfo| {
//!         kcl_core::from_fn(|batch, _| {
//!             tracing::info!(records = batch.len(), "batch");
//!             Ok(())
//!         })
//!     }))
//! }
//! ```

#[cfg(feature = "aws")]
mod clients;
#[cfg(feature = "aws")]
pub mod credentials;

use std::path::Path;
use std::sync::Arc;

use kcl_lease::LeaseStore;
use kcl_properties::Properties;

use crate::config::{Level, NativeConfig};
use crate::factory::ShardHandlers;
use crate::kinesis::KinesisReader;
use crate::supervisor::{RunError, Supervisor};

/// Reads the MultiLangDaemon's properties file at `path` as the native engine's configuration
/// ([`NativeConfig::from_properties`]); each warning about a key the native engine reads
/// differently from the daemon is logged (notes at DEBUG).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("kcl-native-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("app.properties");
/// std::fs::write(&path, "streamName = s\napplicationName = a\nretrievalMode = POLLING\n").unwrap();
/// let config = kcl_native::load_config(&path).unwrap();
/// assert_eq!(config.table_name(), "a");
/// assert!(kcl_native::load_config(dir.join("missing.properties")).is_err());
/// ```
pub fn load_config(path: impl AsRef<Path>) -> Result<NativeConfig, RunError> {
    let path = path.as_ref();
    let properties = Properties::load(path).map_err(|e| RunError::Config(e.to_string()))?;
    let (config, warnings) = NativeConfig::from_properties(&properties)
        .map_err(|e| RunError::Config(format!("{}: {e}", path.display())))?;
    for warning in warnings {
        match warning.level {
            Level::Warning => tracing::warn!(file = %path.display(), "{warning}"),
            Level::Note => tracing::debug!(file = %path.display(), "{warning}"),
        }
    }
    Ok(config)
}

/// Runs a worker on `store` and `reader` until SIGINT or SIGTERM (a graceful stop: final
/// checkpoints, then every lease evicted; a second signal stops at once), or until it fails.
/// A [`Supervisor`] with the signals wired to its [`Stopper`](crate::Stopper).
pub async fn run_with<S, K, F>(
    store: Arc<S>,
    reader: K,
    config: NativeConfig,
    factory: F,
) -> Result<(), RunError>
where
    S: LeaseStore + Send + Sync + 'static,
    K: KinesisReader + Clone,
    F: ShardHandlers,
{
    let supervisor = Supervisor::new(store, reader, config, factory);
    supervisor.stopper().on_signals();
    supervisor.run().await
}

/// Runs a worker on DynamoDB and Kinesis as `config` says (see the [module](self)
/// documentation), until SIGINT or SIGTERM, or a failure. Call it on a multi-thread tokio
/// runtime, or use [`run_blocking`]. Logs go to stderr through `tracing`
/// ([`kcl_core::init_logging`] is installed unless the program has a subscriber).
#[cfg(feature = "aws")]
pub async fn run<F: ShardHandlers>(config: NativeConfig, factory: F) -> Result<(), RunError> {
    run_with_metrics(config, factory, crate::metrics::NoMetrics).await
}

/// [`run`], sending the worker's metrics under the Java KCL's names ([`crate::metrics`]) to
/// `metrics`, e.g. a [`TracingSink`](crate::metrics::TracingSink) or your own
/// [`MetricsSink`](crate::metrics::MetricsSink) that forwards them to CloudWatch.
///
/// ```no_run
/// use kcl_native::metrics::TracingSink;
/// use kcl_native::{ShardInfo, processors};
///
/// # async fn doc() -> Result<(), kcl_native::RunError> {
/// let config = kcl_native::load_config("app.properties")?;
/// let factory = processors(|_: &ShardInfo| kcl_core::from_fn(|_, _| Ok(())));
/// kcl_native::run_with_metrics(config, factory, TracingSink).await
/// # }
/// ```
#[cfg(feature = "aws")]
pub async fn run_with_metrics<F, M>(
    config: NativeConfig,
    factory: F,
    metrics: M,
) -> Result<(), RunError>
where
    F: ShardHandlers,
    M: crate::metrics::MetricsSink,
{
    kcl_core::init_logging();
    let (store, reader) = clients::prepare(&config).await?;
    let supervisor = Supervisor::new(Arc::new(store), reader, config, factory).metrics(metrics);
    supervisor.stopper().on_signals();
    supervisor.run().await
}

/// [`run`] on a multi-thread tokio runtime of its own; returns when the worker stopped.
#[cfg(feature = "aws")]
pub fn run_blocking<F: ShardHandlers>(config: NativeConfig, factory: F) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kcl-native")
        .build()
        .map_err(RunError::Runtime)?;
    let result = runtime.block_on(run(config, factory));
    // Shard threads still in a hook past the grace must not hold the process.
    runtime.shutdown_background();
    result
}
