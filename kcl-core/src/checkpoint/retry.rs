//! How long to wait before retrying a checkpoint the daemon could not store yet.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Bounded exponential backoff with jitter for retryable checkpoint errors.
///
/// Attempt `n` (from 1) that fails with a retryable error waits a random duration between half and
/// all of `min(initial * 2^(n-1), max)` before the next one; after `max_attempts` the error is
/// returned.
///
/// ```
/// use std::time::Duration;
/// let policy = kcl_core::RetryPolicy::default();
/// assert_eq!(policy.max_attempts, 6);
/// let wait = policy.backoff(3);
/// assert!(wait >= Duration::from_millis(400) && wait <= Duration::from_millis(800));
/// assert_eq!(kcl_core::RetryPolicy::immediate(3).backoff(2), Duration::ZERO);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Upper bound of the first wait.
    pub initial_backoff: Duration,
    /// Upper bound of any wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// `attempts` tries with no wait between them (for tests).
    ///
    /// At least one attempt is always made:
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = kcl_core::RetryPolicy::immediate(0);
    /// assert_eq!(policy.max_attempts, 1);
    /// assert_eq!(policy.backoff(1), Duration::ZERO);
    /// ```
    pub fn immediate(attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: attempts.max(1),
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        }
    }

    /// How long to wait after failed attempt `attempt` (1-based).
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = kcl_core::RetryPolicy {
    ///     max_attempts: 10,
    ///     initial_backoff: Duration::from_millis(100),
    ///     max_backoff: Duration::from_secs(1),
    /// };
    /// let first = policy.backoff(1);
    /// assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
    /// let late = policy.backoff(9); // 100ms * 2^8 is capped at 1s
    /// assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1));
    /// ```
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        let half = ceiling / 2;
        let spread = (ceiling - half).as_nanos() as u64;
        if spread == 0 {
            return ceiling;
        }
        half + Duration::from_nanos(random_u64() % (spread + 1))
    }
}

fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    hasher.finish()
}
