//! `tracing` to stderr, as text or as JSON lines: the daemon copies a child's stderr into its
//! own output.
//!
//! Two environment variables choose what [`init`] installs: `RUST_LOG`, the filter (default
//! `info`), and `KCL_LOG_FORMAT`, the format ([`Format::from_env_value`]). The choice is made by
//! [`Settings`], which builds the subscriber for any writer, so the tests need neither the
//! process's environment nor its global subscriber.

use std::io::IsTerminal;

use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::Registry;

/// The environment variable that chooses the log format.
pub(crate) const FORMAT_ENV: &str = "KCL_LOG_FORMAT";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `tracing-subscriber`'s default format, for people: `2026-01-01T00:00:00.000000Z  WARN
    /// shard{id=shardId-000000000001}: kcl_core::engine::batch: batch (…) attempt 1/3 failed: …
    /// sequence_number=… sub_sequence_number=0`.
    Text,
    /// One JSON object per line, for machines: the event's fields at the top level (`message`,
    /// `sequence_number`, …) next to `timestamp`, `level` and `target`; `span`, the innermost
    /// span (`{"name":"shard","id":"shardId-…"}` in a hook), and `spans`, every span from the
    /// outermost in (the shard's first, even when the hook opened its own).
    Json,
}

impl Format {
    /// The format a value of `KCL_LOG_FORMAT` asks for: `json`, or `text` when it is unset,
    /// empty or `text`; any other value is returned as the error (the caller logs as text and
    /// says so).
    pub(crate) fn from_env_value(value: Option<&str>) -> Result<Format, &str> {
        match value {
            None | Some("" | "text") => Ok(Format::Text),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(other),
        }
    }
}

/// What [`init`] installs, read from the values of `RUST_LOG` and `KCL_LOG_FORMAT`.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) format: Format,
    /// A value of `KCL_LOG_FORMAT` that names no format, to be logged once the subscriber is in
    /// place ([`announce`](Self::announce)).
    pub(crate) unknown_format: Option<String>,
    pub(crate) filter: Targets,
}

impl Settings {
    /// From the values of `RUST_LOG` (in its common forms, `debug` or `warn,kcl_core=debug`; a
    /// value that does not parse leaves the default, `info`) and `KCL_LOG_FORMAT`.
    pub(crate) fn from_values(rust_log: Option<&str>, log_format: Option<&str>) -> Settings {
        let filter = rust_log
            .and_then(|value| value.parse::<Targets>().ok())
            .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
        let (format, unknown_format) = match Format::from_env_value(log_format) {
            Ok(format) => (format, None),
            Err(unknown) => (Format::Text, Some(unknown.to_owned())),
        };
        Settings {
            format,
            unknown_format,
            filter,
        }
    }

    /// From this process's environment.
    fn from_env() -> Settings {
        let read =
            |name: &str| std::env::var_os(name).map(|value| value.to_string_lossy().into_owned());
        Settings::from_values(read("RUST_LOG").as_deref(), read(FORMAT_ENV).as_deref())
    }

    /// The subscriber these settings describe, writing each line to `writer` (colours only in
    /// the text format, and only if `ansi`).
    pub(crate) fn subscriber<W>(
        &self,
        writer: W,
        ansi: bool,
    ) -> impl tracing::Subscriber + Send + Sync + use<W>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        type Boxed = Box<dyn Layer<Registry> + Send + Sync>;
        let layer = tracing_subscriber::fmt::layer().with_writer(writer);
        let layer: Boxed = match self.format {
            Format::Text => Box::new(layer.with_ansi(ansi)),
            Format::Json => Box::new(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(true),
            ),
        };
        tracing_subscriber::registry()
            .with(layer)
            .with(self.filter.clone())
    }

    /// Logs what the settings could not honour; call it with the subscriber in place.
    pub(crate) fn announce(&self) {
        if let Some(unknown) = &self.unknown_format {
            tracing::warn!(
                kcl_log_format = unknown.as_str(),
                "{FORMAT_ENV}={unknown:?} is neither `json` nor `text`: logging as text"
            );
        }
    }
}

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG` (targets and levels,
/// e.g. `debug` or `warn,kcl_core=debug`; default `info`), unless the program installed one
/// already. Nothing is written to stdout, which belongs to the daemon.
///
/// `KCL_LOG_FORMAT` chooses the format:
///
/// - `text`, empty or unset: one line per event, for people; colours only when stderr is a
///   terminal. The runtime wraps every hook in a `shard{id=…}` span, so each event names its
///   shard.
/// - `json`: one JSON object per line (`tracing-subscriber`'s JSON format): `timestamp`, `level`,
///   `target`, the event's fields at the top level (`message` and the others), `span` (the
///   innermost span) and `spans` (every span, the outermost first). Events about a record or a
///   checkpoint carry `sequence_number` (a string: sequence numbers exceed 64 bits) and
///   `sub_sequence_number`.
/// - anything else: text, after a warning that names the value.
///
/// Rust's panic hook is not a subscriber: when a hook panics, its message is printed as text
/// (the runtime then logs the panic as an event in the chosen format).
///
/// The same event in both formats (shortened):
///
/// ```text
/// 2026-01-01T00:00:00.000000Z ERROR shard{id=shardId-000000000001}: kcl_core::engine::dispatch: batch (…) failed: … sequence_number=4966…0002 sub_sequence_number=0
/// {"timestamp":"2026-01-01T00:00:00.000000Z","level":"ERROR","message":"batch (…) failed: …","sequence_number":"4966…0002","sub_sequence_number":0,"target":"kcl_core::engine::dispatch","span":{"id":"shardId-000000000001","name":"shard"},"spans":[{"id":"shardId-000000000001","name":"shard"}]}
/// ```
///
/// ```
/// // With KCL_LOG_FORMAT=json in the environment, one JSON object per line.
/// kcl_core::init_logging();
/// tracing::info!(answer = 42, "this goes to stderr");
/// ```
pub fn init() {
    use tracing_subscriber::util::SubscriberInitExt as _;
    let settings = Settings::from_env();
    let subscriber = settings.subscriber(std::io::stderr, std::io::stderr().is_terminal());
    if subscriber.try_init().is_ok() {
        settings.announce();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use crate::testing::TestDaemon;
    use crate::{Error, FailurePolicy, from_fn};

    /// A writer that keeps what the subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(str::to_owned).collect()
        }
    }

    /// Runs `body` with the subscriber `settings` describe; the lines it wrote.
    fn capture(settings: &Settings, body: impl FnOnce()) -> Vec<String> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = settings.subscriber(move || writer.clone(), false);
        tracing::subscriber::with_default(subscriber, || {
            settings.announce();
            body();
        });
        captured.lines()
    }

    /// A shard whose handler fails on the record `poison` (one retry, no wait), then the
    /// failure policy: the lines logged, and the poison record's sequence number.
    fn failing_record(policy: FailurePolicy, settings: &Settings) -> (Vec<String>, String) {
        let processor = from_fn(|batch, _| {
            for record in batch {
                if record.data() == b"poison" {
                    return Err(Error::msg("cannot parse").at_record(record.position().clone()));
                }
            }
            Ok(())
        });
        let policy = policy
            .attempts(2)
            .backoff(std::time::Duration::ZERO, std::time::Duration::ZERO);
        let mut daemon = TestDaemon::with_failure_policy(processor, policy);
        let mut poison = String::new();
        let lines = capture(settings, || {
            daemon.initialize("shardId-000000000001");
            let records = vec![
                daemon.next_record("a"),
                daemon.next_record("poison"),
                daemon.next_record("c"),
            ];
            poison = records[1].sequence_number().as_str().to_owned();
            daemon.process_records(records, None);
        });
        (lines, poison)
    }

    fn json(lines: &[String]) -> Vec<serde_json::Value> {
        assert!(!lines.is_empty(), "nothing logged");
        lines
            .iter()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// The JSON events whose message contains `text`.
    fn events<'a>(events: &'a [serde_json::Value], text: &str) -> Vec<&'a serde_json::Value> {
        events
            .iter()
            .filter(|event| event["message"].as_str().is_some_and(|m| m.contains(text)))
            .collect()
    }

    fn assert_names_the_record(event: &serde_json::Value, poison: &str) {
        let shard = serde_json::json!({"id": "shardId-000000000001", "name": "shard"});
        assert_eq!(event["span"], shard, "{event}");
        assert_eq!(event["spans"], serde_json::json!([shard]), "{event}");
        assert_eq!(event["sequence_number"], poison, "{event}");
        assert_eq!(event["sub_sequence_number"], 0, "{event}");
        assert_eq!(
            event["target"].as_str().map(|t| t.starts_with("kcl_core")),
            Some(true)
        );
        assert!(event["timestamp"].is_string(), "{event}");
    }

    #[test]
    fn the_format_comes_from_the_value_of_kcl_log_format() {
        assert_eq!(Format::from_env_value(None), Ok(Format::Text));
        assert_eq!(Format::from_env_value(Some("")), Ok(Format::Text));
        assert_eq!(Format::from_env_value(Some("text")), Ok(Format::Text));
        assert_eq!(Format::from_env_value(Some("json")), Ok(Format::Json));
        assert_eq!(Format::from_env_value(Some("JSON ")), Err("JSON "));
        assert_eq!(Format::from_env_value(Some("yaml")), Err("yaml"));
    }

    #[test]
    fn rust_log_filters_and_defaults_to_info() {
        let settings = Settings::from_values(None, Some("json"));
        let lines = capture(&settings, || {
            tracing::debug!("hidden");
            tracing::info!("shown");
        });
        assert_eq!(events(&json(&lines), "shown").len(), 1);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let settings = Settings::from_values(Some("warn"), Some("json"));
        assert!(capture(&settings, || tracing::info!("hidden")).is_empty());
        let settings = Settings::from_values(Some("debug"), None);
        assert_eq!(capture(&settings, || tracing::debug!("shown")).len(), 1);
        let settings = Settings::from_values(Some("=not a filter="), None);
        let lines = capture(&settings, || {
            tracing::debug!("hidden");
            tracing::info!("shown");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
    }

    #[test]
    fn json_events_about_a_failed_record_carry_the_shard_and_the_sequence_number() {
        let settings = Settings::from_values(Some("info"), Some("json"));
        let (lines, poison) = failing_record(FailurePolicy::stop(), &settings);
        let events_ = json(&lines);
        let retry = events(&events_, "attempt 1/2 failed");
        assert_eq!(retry.len(), 1, "{lines:#?}");
        assert_names_the_record(retry[0], &poison);
        assert_eq!(retry[0]["level"], "WARN");
        let failed = events(&events_, ") failed: handler");
        assert_eq!(failed.len(), 1, "{lines:#?}");
        assert_names_the_record(failed[0], &poison);
        assert_eq!(failed[0]["level"], "ERROR");
    }

    #[test]
    fn json_events_about_a_skipped_record_carry_the_shard_and_the_sequence_number() {
        let settings = Settings::from_values(Some("info"), Some("json"));
        let (lines, poison) = failing_record(FailurePolicy::skip(), &settings);
        let events_ = json(&lines);
        let skipped = events(&events_, "skipping record");
        assert_eq!(skipped.len(), 1, "{lines:#?}");
        assert_names_the_record(skipped[0], &poison);
        assert_eq!(skipped[0]["level"], "ERROR");
    }

    #[test]
    fn json_events_about_checkpoints_carry_the_sequence_number() {
        let settings = Settings::from_values(Some("info"), Some("json"));
        let mut daemon = TestDaemon::new(from_fn(|batch, checkpointer| {
            let last = batch.last().unwrap().sequence_number().as_str();
            let refused = checkpointer.checkpoint_raw(last, Some(u64::MAX));
            assert_eq!(refused, Err(crate::CheckpointError::IllegalArgument));
            Ok(())
        }));
        let mut last = String::new();
        let lines = capture(&settings, || {
            daemon.initialize("shardId-000000000001");
            let records = vec![daemon.next_record("a"), daemon.next_record("b")];
            last = records[1].sequence_number().as_str().to_owned();
            // Every attempt of the runtime's checkpoint after the batch is throttled.
            daemon.fail_next_checkpoints(["ThrottlingException"; 6]);
            daemon.process_records(records, None);
            daemon.send_line(
                r#"{"action":"checkpoint","sequenceNumber":"777","subSequenceNumber":3,"error":null}"#,
            );
        });
        let events_ = json(&lines);
        let refused = events(&events_, "refusing to checkpoint");
        assert_eq!(refused.len(), 1, "{lines:#?}");
        assert_eq!(refused[0]["sequence_number"], last.as_str());
        assert_eq!(refused[0]["sub_sequence_number"], u64::MAX);
        let retried = events(&events_, "checkpoint attempt 5/6 failed");
        assert_eq!(retried.len(), 1, "{lines:#?}");
        let failed = events(&events_, "; the next one covers these records");
        assert_eq!(failed.len(), 1, "{lines:#?}");
        for event in [retried[0], failed[0]] {
            assert_names_the_record(event, &last);
        }
        let stray = events(&events_, "ignoring a checkpoint reply");
        assert_eq!(stray.len(), 1, "{lines:#?}");
        assert_eq!(stray[0]["sequence_number"], "777");
        assert_eq!(stray[0]["sub_sequence_number"], 3);
    }

    /// Asks to checkpoint at every record, and at shutdown once the hook returns.
    struct AsksToCheckpoint;

    impl crate::RecordProcessor for AsksToCheckpoint {
        fn process_records(
            &mut self,
            batch: &crate::Batch,
            checkpointer: &mut crate::Checkpointer<'_>,
        ) -> crate::Result<()> {
            crate::handler::for_each_record(batch, checkpointer, |_: Vec<u8>, _: &mut _| {
                crate::Checkpoint::Now
            })
        }

        fn shutdown_requested(
            &mut self,
            checkpointer: &mut crate::Checkpointer<'_>,
        ) -> crate::Result<()> {
            checkpointer.request_checkpoint();
            Ok(())
        }
    }

    #[test]
    fn json_events_about_checkpoints_a_hook_asked_for_carry_the_sequence_number() {
        let settings = Settings::from_values(Some("info"), Some("json"));
        let strategy = crate::CheckpointStrategy::Manual;
        let mut daemon = TestDaemon::with_strategy(AsksToCheckpoint, strategy);
        let mut numbers = Vec::new();
        let lines = capture(&settings, || {
            daemon.initialize("shardId-000000000001");
            let records = vec![daemon.next_record("a"), daemon.next_record("b")];
            numbers = records
                .iter()
                .map(|r| r.sequence_number().as_str().to_owned())
                .collect();
            daemon.fail_next_checkpoints(["InvalidStateException"; 3]);
            daemon.process_records(records, None);
            daemon.shutdown_requested();
        });
        let events_ = json(&lines);
        let asked = events(&events_, "asked by the handler failed");
        assert_eq!(asked.len(), 2, "{lines:#?}");
        for (event, number) in asked.into_iter().zip(&numbers) {
            assert_names_the_record(event, number);
        }
        let requested = events(&events_, "the checkpoint the hook asked for failed");
        assert_eq!(requested.len(), 1, "{lines:#?}");
        assert_names_the_record(requested[0], &numbers[1]);
    }

    #[test]
    fn text_stays_the_default_and_names_the_shard_in_its_span() {
        let settings = Settings::from_values(Some("info"), None);
        let (lines, poison) = failing_record(FailurePolicy::stop(), &settings);
        assert!(
            lines
                .iter()
                .all(|line| serde_json::from_str::<serde_json::Value>(line).is_err())
        );
        let failed: Vec<_> = lines
            .iter()
            .filter(|l| l.contains(") failed: handler"))
            .collect();
        assert_eq!(failed.len(), 1, "{lines:#?}");
        assert!(
            failed[0].contains(" ERROR shard{id=shardId-000000000001}: "),
            "{}",
            failed[0]
        );
        assert!(
            failed[0].contains(&format!("sequence_number={poison}")),
            "{}",
            failed[0]
        );
        assert!(
            !failed[0].contains('\u{1b}'),
            "no colours unless asked: {}",
            failed[0]
        );
    }

    #[test]
    fn an_unknown_format_logs_text_and_a_warning_naming_the_value() {
        let settings = Settings::from_values(None, Some("yaml"));
        assert_eq!(settings.format, Format::Text);
        let lines = capture(&settings, || tracing::info!("after"));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains(" WARN ") && lines[0].contains("KCL_LOG_FORMAT=\"yaml\""),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains(" INFO ") && lines[1].ends_with("after"),
            "{}",
            lines[1]
        );
        let settings = Settings::from_values(None, Some("json"));
        let lines = capture(&settings, || tracing::info!("after"));
        assert_eq!(lines.len(), 1, "a known format is not announced: {lines:?}");
    }
}
