//! The native engine's metrics, under the Java KCL 3.x's names and dimensions, through the
//! project's one small sink trait, [`MetricsSink`] (the producer's, `kcl_producer::metrics`,
//! re-exported here with its [`MemorySink`] and [`TracingSink`]):
//!
//! | metric | `Operation` | per shard | when (Java source) |
//! |---|---|---|---|
//! | `RecordsProcessed`, `DataBytesProcessed`, `MillisBehindLatest`, `RecordProcessor.processRecords.Time`, `Time`, `Success` | `ProcessTask` | yes | each batch handed to the processor (`lifecycle/ProcessTask.java`) |
//! | `CurrentLeases`, `LostLeases` | `RenewAllLeases` | no | each renewal round (`leases/dynamodb/DynamoDBLeaseRenewer.java`) |
//!
//! The default is [`NoMetrics`]; give a sink to [`Supervisor::metrics`](crate::Supervisor::metrics).
//!
//! ```
//! use kcl_native::metrics::{MemorySink, Metric, Metrics};
//! let sink = MemorySink::default();
//! let metrics = Metrics::new(sink.clone(), "orders");
//! metrics.record(Metric::RecordsProcessed, 3.0, "ProcessTask", Some("shardId-000000000000"));
//! assert_eq!(sink.sum_by_shard(Metric::RecordsProcessed, "shardId-000000000000"), 3.0);
//! ```

use std::sync::Arc;

pub use kcl_producer::metrics::{MemorySink, Metric, MetricsSink, Sample, TracingSink, Unit};

/// The `ProcessTask` operation (`ProcessTask.PROCESS_TASK_OPERATION`).
pub const PROCESS_TASK: &str = "ProcessTask";
/// The `RenewAllLeases` operation (`DynamoDBLeaseRenewer.RENEW_ALL_LEASES_DIMENSION`).
pub const RENEW_ALL_LEASES: &str = "RenewAllLeases";

/// A sink that drops every sample (the default).
///
/// ```
/// use kcl_native::metrics::{Metric, MetricsSink, NoMetrics, Sample};
/// NoMetrics.record(&Sample::new(Metric::Time, 1.0, "s"));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMetrics;

impl MetricsSink for NoMetrics {
    fn record(&self, _: &Sample<'_>) {}
}

/// A sink and the stream its samples are about. Clones share the sink.
#[derive(Clone)]
pub struct Metrics {
    sink: Arc<dyn MetricsSink>,
    stream: Arc<str>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(NoMetrics, "")
    }
}

impl Metrics {
    /// Samples about `stream` go to `sink`.
    pub fn new(sink: impl MetricsSink, stream: impl Into<String>) -> Self {
        Metrics::shared(Arc::new(sink), stream)
    }

    /// Samples about `stream` go to the shared `sink`.
    pub fn shared(sink: Arc<dyn MetricsSink>, stream: impl Into<String>) -> Self {
        Metrics {
            sink,
            stream: Arc::from(stream.into()),
        }
    }

    /// Records one sample of `metric` for `operation`, for `shard` when given.
    pub fn record(&self, metric: Metric, value: f64, operation: &str, shard: Option<&str>) {
        let sample = Sample::new(metric, value, &self.stream).operation(operation);
        let sample = match shard {
            Some(shard) => sample.shard(shard),
            None => sample,
        };
        self.sink.record(&sample);
    }
}
