//! Waiting for a condition with a deadline, never a fixed sleep: a deadline that passes is not
//! an error by itself, the caller gets the last value and its check says what was seen.

use std::time::{Duration, Instant};

/// Calls `probe` every `interval` until `done` holds for its value or `deadline` passes;
/// returns the last value.
pub fn poll<T>(
    deadline: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> T,
    mut done: impl FnMut(&T) -> bool,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        let value = probe();
        if done(&value) || Instant::now() >= end {
            return value;
        }
        std::thread::sleep(interval);
    }
}

/// Milliseconds since the epoch (the clock of the sinks' `events.tsv`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_until_done_or_the_deadline() {
        let mut n = 0;
        let last = poll(
            Duration::from_secs(5),
            Duration::ZERO,
            || {
                n += 1;
                n
            },
            |&v| v == 3,
        );
        assert_eq!(last, 3);
        let last = poll(Duration::ZERO, Duration::ZERO, || 7, |_| false);
        assert_eq!(last, 7);
        assert!(now_ms() > 1_600_000_000_000);
    }
}
