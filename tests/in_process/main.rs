//! The facade's in-process tests, one test binary (each file in `tests/` is a separately linked
//! binary, so the topics are modules here rather than files there):
//!
//! - [`transcripts`]: exact daemon lines in, exact child lines out (docs/protocol.md §7), by topic;
//! - [`robustness`]: the catalogue of bad inputs and misbehaving user code;
//! - [`strict_lines`]: lines that are not quite what Jackson writes, on both parsing paths;
//! - [`failure_policies`] and [`failure_kinds`]: what a failed handler call leads to;
//! - [`test_daemon`]: `kcl::testing::TestDaemon`, and the examples' processors driven by it;
//! - [`properties`]: properties of checkpointing under random runs (proptest).
//!
//! The harness they share is `tests/support` (the child-process tests use it too). Not here: the
//! child-process tests (`tests/child_process.rs`, they build and run the examples) and the
//! compile-fail tests (`tests/ui.rs`).

#[path = "../support/mod.rs"]
mod support;

// The examples' processors, compiled into this binary.
#[cfg(feature = "tokio")]
#[path = "../../examples/async_enrich.rs"]
#[allow(dead_code)]
mod async_enrich;
#[path = "../../examples/byte_count.rs"]
#[allow(dead_code)]
mod byte_count;
#[path = "../../examples/clicks.rs"]
#[allow(dead_code)]
mod clicks;
#[path = "../../examples/orders.rs"]
#[allow(dead_code)]
mod orders;
#[path = "../../examples/word_count.rs"]
#[allow(dead_code)]
mod word_count;

mod failure_kinds;
mod failure_policies;
mod properties;
mod robustness;
mod strict_lines;
mod test_daemon;
mod transcripts;
