//! Calls into user code. A panic that escapes the runtime ends the process without a status, and
//! the daemon then exits with every shard of the worker, so everything user code can run is run
//! under `catch_unwind`: the hook itself, and also the `Display` and `Drop` of what it returns
//! (its error, a panic's payload).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, Result};

/// The message of a caught panic (no user code runs: only downcasts).
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Drops a value whose `Drop` may be user code; a panic there is logged, its payload leaked.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        tracing::error!(
            "dropping a value from user code panicked: {}",
            panic_message(&*payload)
        );
        std::mem::forget(payload);
    }
}

/// How a hook's error reads in the log: `failed at record S/N: cause` or `returned an error: cause`.
/// Runs the error's `Display`, so call it under `catch_unwind`.
pub(crate) fn describe(error: &Error) -> String {
    match error.record() {
        Some(record) => format!("failed at record {record}: {error}"),
        None => format!("returned an error: {error}"),
    }
}

/// The cause of a caught panic, for the log; the payload is dropped safely.
pub(crate) fn describe_panic(payload: Box<dyn Any + Send>) -> String {
    let message = format!("panicked: {}", panic_message(&*payload));
    drop_quietly(payload);
    message
}

/// Calls a hook; `None` when it succeeded, else how it failed. Its error is described and
/// dropped under `catch_unwind` too.
pub(crate) fn call_hook(hook: impl FnOnce() -> Result<()>) -> Option<String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| match hook() {
        Ok(()) => None,
        Err(error) => {
            let cause = describe(&error);
            drop(error);
            Some(cause)
        }
    }));
    outcome.unwrap_or_else(|payload| Some(describe_panic(payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Treacherous;

    impl std::fmt::Display for Treacherous {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("Display of the user's error panicked")
        }
    }
    impl std::fmt::Debug for Treacherous {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Treacherous")
        }
    }
    impl std::error::Error for Treacherous {}

    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("Drop panicked")
        }
    }

    #[test]
    fn a_panicking_display_of_the_hooks_error_is_caught() {
        let cause = call_hook(|| Err(Treacherous.into()));
        assert_eq!(
            cause.as_deref(),
            Some("panicked: Display of the user's error panicked")
        );
    }

    #[test]
    fn a_panic_payload_whose_drop_panics_is_caught() {
        let cause = call_hook(|| std::panic::panic_any(PanicsOnDrop));
        assert_eq!(cause.as_deref(), Some("panicked: non-string panic payload"));
    }

    #[test]
    fn drop_quietly_catches_a_panicking_drop() {
        drop_quietly(PanicsOnDrop);
    }
}
