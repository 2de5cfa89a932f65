//! Every path the expansion names, spelled once (Rocket's `exports.rs`, thiserror's `private`).
//!
//! Glue that only generated code calls goes through the hidden `::kcl::__private` module; the
//! other paths are documented `kcl` items (the types and traits users also write) or `core`/`std`.
//! All paths are absolute, so a user's own `kcl`, `core` or `std` items cannot shadow them.

use proc_macro2::{Ident, Punct, Spacing, Span, TokenStream};
use quote::{ToTokens, TokenStreamExt};

/// An absolute path such as `::kcl::__private::finish_batch`, by segment.
#[derive(Clone, Copy)]
pub(crate) struct Path(&'static [&'static str]);

impl Path {
    /// The path with every token at `span` (so a trait error on it points at the user's
    /// tokens).
    pub(crate) fn at(self, span: Span) -> TokenStream {
        let mut tokens = TokenStream::new();
        for segment in self.0 {
            let mut colon = Punct::new(':', Spacing::Joint);
            colon.set_span(span);
            tokens.append(colon);
            let mut colon = Punct::new(':', Spacing::Alone);
            colon.set_span(span);
            tokens.append(colon);
            tokens.append(Ident::new(segment, span));
        }
        tokens
    }
}

impl ToTokens for Path {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(self.at(Span::call_site()));
    }
}

// Generated-code glue, hidden from the docs (`kcl/src/lib.rs`, `mod __private`).

/// Applies a batch handler's output (`kcl::handler::finish_batch`).
pub(crate) const FINISH_BATCH: Path = Path(&["kcl", "__private", "finish_batch"]);
/// Calls a per-record handler once per record (`kcl::handler::for_each_record`).
pub(crate) const FOR_EACH_RECORD: Path = Path(&["kcl", "__private", "for_each_record"]);
/// Drives an `async` hook (`kcl::handler::block_on`, `tokio` feature).
pub(crate) const BLOCK_ON: Path = Path(&["kcl", "__private", "block_on"]);
/// Runs the runtime on the engine the command line asks for (`kcl::app::run`).
pub(crate) const APP_RUN: Path = Path(&["kcl", "__private", "app_run"]);

// Documented `kcl` items.

/// `kcl::RecordProcessor`.
pub(crate) const RECORD_PROCESSOR: Path = Path(&["kcl", "RecordProcessor"]);
/// `kcl::Batch`.
pub(crate) const BATCH: Path = Path(&["kcl", "Batch"]);
/// `kcl::Checkpointer`.
pub(crate) const CHECKPOINTER: Path = Path(&["kcl", "Checkpointer"]);
/// `kcl::Result`.
pub(crate) const RESULT: Path = Path(&["kcl", "Result"]);
/// `kcl::Initialize`.
pub(crate) const INITIALIZE: Path = Path(&["kcl", "Initialize"]);
/// `kcl::Failure`.
pub(crate) const FAILURE: Path = Path(&["kcl", "Failure"]);
/// `kcl::FromBatch`.
pub(crate) const FROM_BATCH: Path = Path(&["kcl", "FromBatch"]);
/// `kcl::FromRecord`.
pub(crate) const FROM_RECORD: Path = Path(&["kcl", "FromRecord"]);
/// `kcl::HandlerOutput::into_result`.
pub(crate) const INTO_RESULT: Path = Path(&["kcl", "HandlerOutput", "into_result"]);
/// `kcl::Runtime::new`.
pub(crate) const RUNTIME_NEW: Path = Path(&["kcl", "Runtime", "new"]);
/// `kcl::CheckpointStrategy`.
pub(crate) const CHECKPOINT_STRATEGY: Path = Path(&["kcl", "CheckpointStrategy"]);
/// `kcl::FailurePolicy`.
pub(crate) const FAILURE_POLICY: Path = Path(&["kcl", "FailurePolicy"]);

// `core` and `std`.

/// `core::result::Result::Ok`.
pub(crate) const OK: Path = Path(&["core", "result", "Result", "Ok"]);
/// `core::option::Option::Some`.
pub(crate) const SOME: Path = Path(&["core", "option", "Option", "Some"]);
/// `core::option::Option::None`.
pub(crate) const NONE: Path = Path(&["core", "option", "Option", "None"]);
/// `core::time::Duration::from_secs`.
pub(crate) const DURATION_FROM_SECS: Path = Path(&["core", "time", "Duration", "from_secs"]);
/// `core::clone::Clone::clone`.
pub(crate) const CLONE: Path = Path(&["core", "clone", "Clone", "clone"]);
/// `core::unreachable` (the macro).
pub(crate) const UNREACHABLE: Path = Path(&["core", "unreachable"]);
/// `std::process::ExitCode`.
pub(crate) const EXIT_CODE: Path = Path(&["std", "process", "ExitCode"]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_absolute_and_hidden_glue_is_under_private() {
        assert_eq!(
            FINISH_BATCH.to_token_stream().to_string(),
            ":: kcl :: __private :: finish_batch"
        );
        assert_eq!(RESULT.to_token_stream().to_string(), ":: kcl :: Result");
    }
}
