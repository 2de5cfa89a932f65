//! The one harness of the facade's integration tests: running a runtime in-process on given
//! input while capturing its `tracing` log ([`run_capturing`]), transcripts of daemon and child
//! lines ([`transcript`]), the daemon's side of the wire as test data ([`wire`]) and the
//! daemon's own reading of a child's line ([`child_line`]).
#![allow(dead_code)] // each test binary uses a part

pub mod child_line;
pub mod transcript;
pub mod wire;

use std::io::Write;
use std::sync::{Arc, Mutex};

use kcl::{RecordProcessor, Runtime};
use serde_json::{Value, json};

/// Log lines captured from `tracing`.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a run wrote and logged.
pub struct Captures {
    pub result: std::io::Result<()>,
    /// The protocol lines, as JSON values.
    pub lines: Vec<Value>,
    /// Everything logged at DEBUG and above, without colours.
    pub log: String,
}

impl Captures {
    /// The captured log line containing every one of `needles`.
    #[track_caller]
    pub fn logged(&self, needles: &[&str]) -> &str {
        logged(&self.log, needles)
    }
}

/// The line of `log` containing every one of `needles`; panics showing the log if none does.
#[track_caller]
pub fn logged<'a>(log: &'a str, needles: &[&str]) -> &'a str {
    log.lines()
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| panic!("no log line contains {needles:?}; log:\n{log}"))
}

/// Runs `runtime` on `input` with a `tracing` subscriber that captures the log.
pub fn run_capturing<P: RecordProcessor>(runtime: Runtime<P>, input: &[u8]) -> Captures {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let mut output = Vec::new();
    let result =
        tracing::subscriber::with_default(subscriber, || runtime.run_on(input, &mut output));
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    Captures {
        result,
        lines: protocol_lines(&output),
        log,
    }
}

/// The non-empty lines a runtime wrote, each parsed as JSON.
pub fn protocol_lines(output: &[u8]) -> Vec<Value> {
    std::str::from_utf8(output)
        .unwrap()
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `{"action":"status","responseFor":action}`.
pub fn status(action: &str) -> Value {
    json!({"action":"status","responseFor":action})
}

/// Lines joined with `\n` after each.
pub fn input(lines: &[&str]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}
