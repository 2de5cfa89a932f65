//! The producer's metrics, under the KPL's names (so that dashboards built for the KPL read
//! them), and the native consumer engine's (`kcl-native`) under the Java KCL's names and
//! dimensions (`Operation`, `ShardId`), through one small sink trait: [`TracingSink`] (the default) writes each sample as a
//! `tracing` event, [`MemorySink`] keeps totals (for tests and a `stats`-like view), and any
//! exporter (CloudWatch, OpenTelemetry, Prometheus) is one `impl MetricsSink` away.
//!
//! ```
//! use kcl_producer::metrics::{MemorySink, Metric};
//! use kcl_producer::{Producer, Record};
//! use kcl_producer::api::StreamRef;
//! use kcl_producer::testing::FakeKinesis;
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let sink = MemorySink::default();
//! let producer = Producer::builder(FakeKinesis::new("s", 2), StreamRef::name("s"))
//!     .metrics(sink.clone())
//!     .build()
//!     .await
//!     .unwrap();
//! for n in 0..10 {
//!     let _ = producer.send(Record::new(format!("k{n}"), "hello")).await.unwrap();
//! }
//! producer.shutdown(Duration::from_secs(5)).await;
//! assert_eq!(sink.sum(Metric::UserRecordsReceived), 10.0);
//! assert_eq!(sink.sum(Metric::UserRecordsPut), 10.0);
//! assert_eq!(sink.sum(Metric::UserRecordsDataPut), 50.0);
//! # });
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A metric, named as the KPL names it (the producer's) or as the Java KCL 3.x names it (the
/// native consumer engine's, the variants from [`RecordsProcessed`](Metric::RecordsProcessed)
/// on; their operation is in [`Sample::operation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Metric {
    /// Records taken by `send` or `try_send` (count).
    UserRecordsReceived,
    /// Records held (taken and not yet answered) when a call leaves (count, a gauge).
    UserRecordsPending,
    /// Records delivered, per shard (count).
    UserRecordsPut,
    /// Bytes of data of the records delivered, per shard (bytes).
    UserRecordsDataPut,
    /// Kinesis records (entries: plain records or aggregates) stored, per shard (count).
    KinesisRecordsPut,
    /// Bytes of the Kinesis records stored, partition keys included, per shard (bytes).
    KinesisRecordsDataPut,
    /// Failures by error code: entries refused, calls that failed (count).
    ErrorsByCode,
    /// Every failure, whatever its code (count).
    AllErrors,
    /// Records failed because they outlived their time to live (count).
    UserRecordExpired,
    /// Attempts beyond the first, per delivered record (count).
    RetriesPerRecord,
    /// From a record's arrival to the call that delivered it (milliseconds).
    BufferingTime,
    /// From a call's departure to its answer (milliseconds).
    RequestTime,
    /// Records per Kinesis record stored, per shard (1 unless aggregated).
    UserRecordsPerKinesisRecord,
    /// Entries per `PutRecords` call (count).
    KinesisRecordsPerPutRecordsRequest,
    /// Records per `PutRecords` call (count).
    UserRecordsPerPutRecordsRequest,
    /// KCL, operation `ProcessTask`, per shard: user records handed to the processor in one
    /// batch (count; `lifecycle/ProcessTask.java` `RECORDS_PROCESSED_METRIC`).
    RecordsProcessed,
    /// KCL, `ProcessTask`, per shard: bytes of data of those records (`DATA_BYTES_PROCESSED_METRIC`).
    DataBytesProcessed,
    /// KCL, `ProcessTask`, per shard: `MillisBehindLatest` of the batch's `GetRecords` answer
    /// (`MILLIS_BEHIND_LATEST_METRIC`).
    MillisBehindLatest,
    /// KCL, `ProcessTask`, per shard: time in the processor's `processRecords`
    /// (`RECORD_PROCESSOR_PROCESS_RECORDS_METRIC` with `MetricsUtil.addLatency`'s `.Time`).
    RecordProcessorProcessRecordsTime,
    /// KCL, the operation's latency (`MetricsUtil.addSuccessAndLatency`: `Time`), per shard for
    /// `ProcessTask`.
    Time,
    /// KCL, whether the operation succeeded, 1 or 0 (`MetricsUtil.addSuccessAndLatency`:
    /// `Success`).
    Success,
    /// KCL, operation `RenewAllLeases`: leases this worker holds after a renewal round
    /// (`leases/dynamodb/DynamoDBLeaseRenewer.java`).
    CurrentLeases,
    /// KCL, `RenewAllLeases`: leases lost in a renewal round.
    LostLeases,
}

impl Metric {
    /// The KPL's name for it.
    ///
    /// ```
    /// assert_eq!(kcl_producer::metrics::Metric::RequestTime.name(), "RequestTime");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Metric::UserRecordsReceived => "UserRecordsReceived",
            Metric::UserRecordsPending => "UserRecordsPending",
            Metric::UserRecordsPut => "UserRecordsPut",
            Metric::UserRecordsDataPut => "UserRecordsDataPut",
            Metric::KinesisRecordsPut => "KinesisRecordsPut",
            Metric::KinesisRecordsDataPut => "KinesisRecordsDataPut",
            Metric::ErrorsByCode => "ErrorsByCode",
            Metric::AllErrors => "AllErrors",
            Metric::UserRecordExpired => "UserRecordExpired",
            Metric::RetriesPerRecord => "RetriesPerRecord",
            Metric::BufferingTime => "BufferingTime",
            Metric::RequestTime => "RequestTime",
            Metric::UserRecordsPerKinesisRecord => "UserRecordsPerKinesisRecord",
            Metric::KinesisRecordsPerPutRecordsRequest => "KinesisRecordsPerPutRecordsRequest",
            Metric::UserRecordsPerPutRecordsRequest => "UserRecordsPerPutRecordsRequest",
            Metric::RecordsProcessed => "RecordsProcessed",
            Metric::DataBytesProcessed => "DataBytesProcessed",
            Metric::MillisBehindLatest => "MillisBehindLatest",
            Metric::RecordProcessorProcessRecordsTime => "RecordProcessor.processRecords.Time",
            Metric::Time => "Time",
            Metric::Success => "Success",
            Metric::CurrentLeases => "CurrentLeases",
            Metric::LostLeases => "LostLeases",
        }
    }

    /// Its unit, as CloudWatch names units.
    ///
    /// ```
    /// use kcl_producer::metrics::{Metric, Unit};
    /// assert_eq!(Metric::BufferingTime.unit(), Unit::Milliseconds);
    /// ```
    pub fn unit(self) -> Unit {
        match self {
            Metric::UserRecordsDataPut
            | Metric::KinesisRecordsDataPut
            | Metric::DataBytesProcessed => Unit::Bytes,
            Metric::BufferingTime
            | Metric::RequestTime
            | Metric::MillisBehindLatest
            | Metric::RecordProcessorProcessRecordsTime
            | Metric::Time => Unit::Milliseconds,
            _ => Unit::Count,
        }
    }
}

/// The unit of a [`Metric`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Bytes.
    Bytes,
    /// Milliseconds.
    Milliseconds,
}

impl Unit {
    /// CloudWatch's name for it.
    ///
    /// ```
    /// assert_eq!(kcl_producer::metrics::Unit::Bytes.name(), "Bytes");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One observation, with the KPL's dimensions.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Sample<'a> {
    /// What was observed.
    pub metric: Metric,
    /// Its value, in the metric's unit.
    pub value: f64,
    /// The stream (name or ARN).
    pub stream: &'a str,
    /// The shard, where one is known.
    pub shard_id: Option<&'a str>,
    /// The error code, for [`Metric::ErrorsByCode`].
    pub error_code: Option<&'a str>,
    /// The KCL's `Operation` dimension (`ProcessTask`, `RenewAllLeases`), for the KCL's
    /// metrics.
    pub operation: Option<&'a str>,
}

impl<'a> Sample<'a> {
    /// A sample of `metric` for `stream`, with no shard and no error code.
    ///
    /// ```
    /// use kcl_producer::metrics::{Metric, Sample};
    /// let sample = Sample::new(Metric::AllErrors, 1.0, "orders").shard("shardId-000000000000");
    /// assert_eq!(sample.shard_id, Some("shardId-000000000000"));
    /// ```
    pub fn new(metric: Metric, value: f64, stream: &'a str) -> Self {
        Sample {
            metric,
            value,
            stream,
            shard_id: None,
            error_code: None,
            operation: None,
        }
    }

    /// The same sample, for the KCL operation `operation`.
    ///
    /// ```
    /// use kcl_producer::metrics::{Metric, Sample};
    /// let sample = Sample::new(Metric::RecordsProcessed, 3.0, "orders").operation("ProcessTask");
    /// assert_eq!(sample.operation, Some("ProcessTask"));
    /// ```
    pub fn operation(mut self, operation: &'a str) -> Self {
        self.operation = Some(operation);
        self
    }

    /// The same sample, for `shard_id`.
    pub fn shard(mut self, shard_id: &'a str) -> Self {
        self.shard_id = Some(shard_id);
        self
    }

    /// The same sample, for `error_code`.
    pub fn error_code(mut self, code: &'a str) -> Self {
        self.error_code = Some(code);
        self
    }
}

/// Where the producer's samples go. Called on the producer's task for every sample: it must be
/// quick and must not block (aggregate in memory, export from another task).
///
/// ```
/// use kcl_producer::metrics::{MetricsSink, Sample};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// /// Counts the errors, and nothing else.
/// #[derive(Default)]
/// struct Errors(AtomicU64);
///
/// impl MetricsSink for Errors {
///     fn record(&self, sample: &Sample<'_>) {
///         if sample.metric == kcl_producer::metrics::Metric::AllErrors {
///             self.0.fetch_add(sample.value as u64, Ordering::Relaxed);
///         }
///     }
/// }
/// ```
pub trait MetricsSink: Send + Sync + 'static {
    /// Takes one sample.
    fn record(&self, sample: &Sample<'_>);
}

/// The default sink: each sample is a `tracing` event at the TRACE level with the target
/// `kcl_producer::metrics` and the fields `metric`, `value`, `unit`, `stream`, `shard_id`,
/// `error_code` and `operation`. Nearly free while that level is off.
///
/// ```
/// use kcl_producer::metrics::{Metric, MetricsSink, Sample, TracingSink};
/// TracingSink.record(&Sample::new(Metric::UserRecordsPut, 1.0, "orders"));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingSink;

impl MetricsSink for TracingSink {
    fn record(&self, sample: &Sample<'_>) {
        tracing::trace!(
            target: "kcl_producer::metrics",
            metric = sample.metric.name(),
            value = sample.value,
            unit = sample.metric.unit().name(),
            stream = sample.stream,
            shard_id = sample.shard_id,
            error_code = sample.error_code,
            operation = sample.operation,
        );
    }
}

/// Totals, counts and maxima per metric, shard and error code, kept in memory. Clones share
/// their totals.
///
/// ```
/// use kcl_producer::metrics::{MemorySink, Metric, MetricsSink, Sample};
/// let sink = MemorySink::default();
/// sink.record(&Sample::new(Metric::ErrorsByCode, 1.0, "s").error_code("InternalFailure"));
/// sink.record(&Sample::new(Metric::ErrorsByCode, 1.0, "s").error_code("InternalFailure"));
/// assert_eq!(sink.sum_by_code(Metric::ErrorsByCode, "InternalFailure"), 2.0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    totals: Arc<Mutex<HashMap<Key, Total>>>,
}

type Key = (Metric, Option<String>, Option<String>);

/// What [`MemorySink`] keeps of one series.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Total {
    /// The sum of the values.
    pub sum: f64,
    /// How many samples.
    pub count: u64,
    /// The largest value.
    pub max: f64,
}

impl MetricsSink for MemorySink {
    fn record(&self, sample: &Sample<'_>) {
        let key = (
            sample.metric,
            sample.shard_id.map(str::to_owned),
            sample.error_code.map(str::to_owned),
        );
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let total = totals.entry(key).or_default();
        total.sum += sample.value;
        total.count += 1;
        total.max = total.max.max(sample.value);
    }
}

impl MemorySink {
    fn fold(&self, keep: impl Fn(&Key) -> bool) -> Total {
        let totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        totals
            .iter()
            .filter(|(key, _)| keep(key))
            .fold(Total::default(), |mut all, (_, total)| {
                all.sum += total.sum;
                all.count += total.count;
                all.max = all.max.max(total.max);
                all
            })
    }

    /// The sum of `metric` over every shard and code.
    pub fn sum(&self, metric: Metric) -> f64 {
        self.total(metric).sum
    }

    /// Sum, count and maximum of `metric` over every shard and code.
    pub fn total(&self, metric: Metric) -> Total {
        self.fold(|key| key.0 == metric)
    }

    /// The sum of `metric` for `shard_id`.
    pub fn sum_by_shard(&self, metric: Metric, shard_id: &str) -> f64 {
        self.fold(|key| key.0 == metric && key.1.as_deref() == Some(shard_id))
            .sum
    }

    /// The sum of `metric` for the error code `code`.
    pub fn sum_by_code(&self, metric: Metric, code: &str) -> f64 {
        self.fold(|key| key.0 == metric && key.2.as_deref() == Some(code))
            .sum
    }
}
