//! The `<app>-WorkerMetricStats` rows (`worker/metricstats/WorkerMetricStats.java`) and the
//! leader's rule for an active worker (`LeaseAssignmentManager`).

use std::collections::BTreeMap;

use super::{Fields, ItemError, WORKER_ID};
use crate::item::{Problem, decimal};
use crate::ops::{Action, Condition, Delete, Update, Write};
use crate::value::{AttributeValue, Item};

const LAST_UPDATE_TIME: &str = "lut";
const METRIC_STATS: &str = "sts";
const OPERATING_RANGE: &str = "opr";
/// The metric name that makes a row a "default metric" row, as if it had none.
const THROUGHPUT: &str = "THROUGHPUT";
/// Reports a worker may miss before the leader stops counting it as active.
const MISSED_REPORTS: u64 = 2;

/// One worker's row: `wid`, `lut` (epoch **seconds**), `sts` (metric name → its last values, −1
/// for a failed read), `opr` (metric name → `[max utilisation]`).
///
/// ```
/// use kcl_lease::WorkerMetricStats;
/// let row = WorkerMetricStats::default_metric("native-1", 1_700_000_000);
/// // Active while `lut` is within two reports (2 × 30 s by default) of the leader's clock.
/// assert!(row.is_active(1_700_000_060_000, 30_000));
/// assert!(!row.is_active(1_700_000_061_000, 30_000));
/// assert_eq!(WorkerMetricStats::decode(&row.encode()).unwrap(), row);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerMetricStats {
    /// `wid`: the worker id.
    pub worker_id: String,
    /// `lut`: the last report, epoch seconds.
    pub last_update_time_s: u64,
    /// `sts`: metric name → recent values (absent when the row has none).
    pub metric_stats: Option<BTreeMap<String, Vec<f64>>>,
    /// `opr`: metric name → operating range (`[max utilisation]`).
    pub operating_range: Option<BTreeMap<String, Vec<i64>>>,
    /// Any other attribute, preserved.
    pub other: Item,
}

impl WorkerMetricStats {
    /// The row Java's own workers write with no metrics configured: `wid`, `lut`, `sts: {}`,
    /// `opr: {}` (a "default metric" worker, balanced on lease throughput).
    pub fn default_metric(worker_id: impl Into<String>, now_s: u64) -> Self {
        WorkerMetricStats {
            worker_id: worker_id.into(),
            last_update_time_s: now_s,
            metric_stats: Some(BTreeMap::new()),
            operating_range: Some(BTreeMap::new()),
            other: Item::new(),
        }
    }

    /// Java's `isUsingDefaultWorkerMetric`: no metrics at all, or a `THROUGHPUT` one.
    pub fn is_using_default_metric(&self) -> bool {
        let no_stats = self.metric_stats.as_ref().is_none_or(BTreeMap::is_empty);
        let no_range = self.operating_range.as_ref().is_none_or(BTreeMap::is_empty);
        if no_stats && no_range {
            return true;
        }
        self.metric_stats
            .as_ref()
            .is_some_and(|stats| stats.contains_key(THROUGHPUT))
    }

    /// Java's `isAnyWorkerMetricFailing`: some metric's last value is −1 (never for a default
    /// metric row).
    pub fn is_any_metric_failing(&self) -> bool {
        if self.is_using_default_metric() {
            return false;
        }
        self.metric_stats
            .iter()
            .flatten()
            .any(|(_, values)| values.last() == Some(&-1.0))
    }

    /// The leader's rule (`LeaseAssignmentManager`): a worker is active when its `lut` is at
    /// least `(now − 2 × reporter frequency)` in whole seconds and no metric is failing. `now_ms`
    /// is the leader's wall clock in epoch milliseconds; `reporter_freq_ms` is
    /// `workerMetricsReporterFreqInMillis` (30 000 by default). Only active workers get leases.
    pub fn is_active(&self, now_ms: u64, reporter_freq_ms: u64) -> bool {
        let threshold_s =
            now_ms.saturating_sub(MISSED_REPORTS.saturating_mul(reporter_freq_ms)) / 1000;
        self.last_update_time_s >= threshold_s && !self.is_any_metric_failing()
    }

    /// Reads a row.
    pub fn decode(item: &Item) -> Result<WorkerMetricStats, ItemError> {
        let fields = Fields::new(item, WORKER_ID);
        let worker_id = fields.required_s(WORKER_ID)?.to_owned();
        let last_update_time_s = fields
            .n(LAST_UPDATE_TIME, "epoch seconds")?
            .ok_or_else(|| fields.error(LAST_UPDATE_TIME, Problem::Missing))?;
        Ok(WorkerMetricStats {
            worker_id,
            last_update_time_s,
            metric_stats: number_lists(&fields, METRIC_STATS)?,
            operating_range: number_lists(&fields, OPERATING_RANGE)?,
            other: fields.other(&[WORKER_ID, LAST_UPDATE_TIME, METRIC_STATS, OPERATING_RANGE]),
        })
    }

    /// Writes the row (non-finite metric values as −1, a failed read).
    pub fn encode(&self) -> Item {
        let mut item = self.other.clone();
        item.insert(WORKER_ID.into(), AttributeValue::s(&self.worker_id));
        item.extend(self.reported());
        item
    }

    /// `lut`, `sts`, `opr` as written (the ones present).
    fn reported(&self) -> Item {
        let mut item = Item::new();
        item.insert(
            LAST_UPDATE_TIME.into(),
            AttributeValue::n(self.last_update_time_s),
        );
        if let Some(stats) = &self.metric_stats {
            item.insert(
                METRIC_STATS.into(),
                lists(stats, |v| decimal(*v).unwrap_or_else(|| "-1".into())),
            );
        }
        if let Some(range) = &self.operating_range {
            item.insert(OPERATING_RANGE.into(), lists(range, i64::to_string));
        }
        item
    }
}

fn lists<T>(map: &BTreeMap<String, Vec<T>>, text: impl Fn(&T) -> String) -> AttributeValue {
    AttributeValue::M(
        map.iter()
            .map(|(name, values)| {
                let list = values.iter().map(|v| AttributeValue::N(text(v))).collect();
                (name.clone(), AttributeValue::L(list))
            })
            .collect(),
    )
}

fn number_lists<T: std::str::FromStr>(
    fields: &Fields<'_>,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<T>>>, ItemError> {
    let wrong = |found: &AttributeValue| {
        fields.error(
            name,
            Problem::WrongType {
                expected: "M of L of N",
                found: found.type_name(),
            },
        )
    };
    let Some(value) = fields.get(name) else {
        return Ok(None);
    };
    let AttributeValue::M(map) = value else {
        return Err(wrong(value));
    };
    let mut result = BTreeMap::new();
    for (metric, list) in map {
        let AttributeValue::L(values) = list else {
            return Err(wrong(list));
        };
        let numbers = values
            .iter()
            .map(|value| match value {
                AttributeValue::N(text) => text.parse().map_err(|_| {
                    fields.error(
                        name,
                        Problem::Invalid {
                            value: text.clone(),
                            expected: "a number",
                        },
                    )
                }),
                other => Err(wrong(other)),
            })
            .collect::<Result<_, _>>()?;
        result.insert(metric.clone(), numbers);
    }
    Ok(Some(result))
}

/// The worker's report: an unconditional `UpdateItem` of `lut` and whichever of `sts`/`opr` the
/// row has (Java's enhanced-client update that ignores nulls).
pub fn report(stats: &WorkerMetricStats) -> Write {
    let actions = stats
        .reported()
        .into_iter()
        .map(|(name, value)| Action::Put(name, value))
        .collect();
    Write {
        key: stats.worker_id.clone(),
        condition: Condition::default(),
        update: Update::Actions(actions),
    }
}

/// The leader's deletion of a stale row: conditioned on `lut` still being the value it saw and
/// the row existing (a worker that came back in between keeps its row).
pub fn delete_stale(stats: &WorkerMetricStats) -> Delete {
    Delete {
        key: stats.worker_id.clone(),
        condition: Condition::default()
            .equals(
                LAST_UPDATE_TIME,
                AttributeValue::n(stats.last_update_time_s),
            )
            .exists(WORKER_ID),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{apply, apply_delete};

    fn with_stats(stats: &[(&str, &[f64])], range: &[(&str, i64)]) -> WorkerMetricStats {
        WorkerMetricStats {
            worker_id: "w".into(),
            last_update_time_s: 100,
            metric_stats: Some(
                stats
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_vec()))
                    .collect(),
            ),
            operating_range: Some(
                range
                    .iter()
                    .map(|(k, v)| (k.to_string(), vec![*v]))
                    .collect(),
            ),
            other: Item::new(),
        }
    }

    #[test]
    fn activity() {
        let cpu_ok = with_stats(&[("CPU", &[10.0, 20.5])], &[("CPU", 100)]);
        assert!(!cpu_ok.is_using_default_metric());
        assert!(cpu_ok.is_active(160_000, 30_000));
        assert!(cpu_ok.is_active(160_999, 30_000)); // whole seconds
        assert!(!cpu_ok.is_active(161_000, 30_000));
        let failing = with_stats(&[("CPU", &[10.0, -1.0])], &[("CPU", 100)]);
        assert!(failing.is_any_metric_failing());
        assert!(!failing.is_active(100_000, 30_000));
        let throughput = with_stats(&[("THROUGHPUT", &[-1.0])], &[]);
        assert!(throughput.is_using_default_metric());
        assert!(!throughput.is_any_metric_failing());
        let bare = WorkerMetricStats {
            metric_stats: None,
            operating_range: None,
            ..cpu_ok.clone()
        };
        assert!(bare.is_using_default_metric());
        assert!(bare.is_active(0, 30_000));
    }

    #[test]
    fn round_trips_and_writes() {
        let mut row = with_stats(&[("CPU", &[10.0, 20.5, -1.0])], &[("CPU", 100)]);
        row.other.insert(
            "entityType".into(),
            AttributeValue::s("WORKER_METRIC_STATS"),
        );
        let item = row.encode();
        assert_eq!(
            item["sts"],
            AttributeValue::M(Item::from([(
                "CPU".to_string(),
                AttributeValue::L(vec![
                    AttributeValue::n(10),
                    AttributeValue::N("20.5".into()),
                    AttributeValue::n(-1)
                ])
            )]))
        );
        assert_eq!(WorkerMetricStats::decode(&item).unwrap(), row);
        let write = report(&row);
        let stored = apply(
            (WORKER_ID, &write.key),
            &write.condition,
            &write.update,
            None,
        )
        .unwrap();
        assert_eq!(stored["lut"], AttributeValue::n(100));
        assert_eq!(stored["wid"], AttributeValue::s("w"));
        let stale = delete_stale(&row);
        assert!(apply_delete(&stale.condition, Some(&stored)).is_ok());
        let mut newer = stored.clone();
        newer.insert("lut".into(), AttributeValue::n(101));
        assert!(apply_delete(&stale.condition, Some(&newer)).is_err());
    }

    #[test]
    fn bad_rows_are_refused() {
        let good = WorkerMetricStats::default_metric("w", 5).encode();
        for (name, value) in [
            ("lut", AttributeValue::s("5")),
            ("sts", AttributeValue::L(vec![])),
            (
                "sts",
                AttributeValue::M(Item::from([("CPU".to_string(), AttributeValue::n(1))])),
            ),
            (
                "opr",
                AttributeValue::M(Item::from([(
                    "CPU".to_string(),
                    AttributeValue::L(vec![AttributeValue::N("1.5".into())]),
                )])),
            ),
            (
                "opr",
                AttributeValue::M(Item::from([(
                    "CPU".to_string(),
                    AttributeValue::L(vec![AttributeValue::s("1")]),
                )])),
            ),
        ] {
            let mut bad = good.clone();
            bad.insert(name.into(), value);
            assert!(WorkerMetricStats::decode(&bad).is_err(), "{name}");
        }
        let mut bad = good;
        bad.remove("lut");
        assert_eq!(
            WorkerMetricStats::decode(&bad).unwrap_err().to_string(),
            "item w: attribute lut: missing"
        );
    }
}
