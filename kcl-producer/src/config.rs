//! The producer's settings, with the defaults of producer.md section 6 and the reason for each.

use std::time::Duration;

/// The producer's settings. Build with [`Producer::builder`](crate::Producer::builder).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// How long a record may wait for others to fill a call (100 ms, the KPL's).
    pub linger: Duration,
    /// The most bytes (data and partition keys) buffered, sent or not yet answered: `send` waits
    /// and `try_send` refuses past it (64 MiB).
    pub max_buffered_bytes: usize,
    /// The most records buffered (1,000,000).
    pub max_buffered_records: usize,
    /// The most `PutRecords` calls in flight at once (24).
    pub max_in_flight: usize,
    /// The first pause before a record is sent again (100 ms); it doubles per attempt, with
    /// jitter, up to `max_backoff`.
    pub initial_backoff: Duration,
    /// The longest pause between attempts (10 s).
    pub max_backoff: Duration,
    /// How long a record may stay undelivered before it fails (`None`: retried until delivered
    /// or the producer shuts down).
    pub record_ttl: Option<Duration>,
    /// How many calls may carry a record before it fails (`None`: no limit).
    pub max_attempts: Option<u32>,
    /// Whether records are packed into KPL aggregates (default: off).
    pub aggregation: crate::pack::Aggregation,
    /// Whether the records of each partition key are stored in the order they were taken
    /// (default: off; each key then has one entry out at a time).
    pub ordered: bool,
    /// Each shard's write limit, which the producer paces records to (default: none; records
    /// go out as fast as calls allow, and throttled ones are sent again).
    pub rate_limit: Option<crate::rates::ShardRate>,
    /// The seed of the jitter (a fixed seed makes tests repeatable).
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            linger: Duration::from_millis(100),
            max_buffered_bytes: 64 * 1024 * 1024,
            max_buffered_records: 1_000_000,
            max_in_flight: 24,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            record_ttl: None,
            max_attempts: None,
            aggregation: crate::pack::Aggregation::Off,
            ordered: false,
            rate_limit: None,
            seed: 0x6b63_6c2d_7072_6f64,
        }
    }
}

impl Config {
    /// The pause before attempt `attempt + 1`, for a record that failed `attempt` times: up to
    /// `initial_backoff * 2^(attempt - 1)` (at most `max_backoff`), at least half of it.
    pub(crate) fn backoff(&self, attempt: u32, random: &mut fastrand::Rng) -> Duration {
        let doubling = 1u32 << attempt.saturating_sub(1).min(20);
        let ceiling = self
            .initial_backoff
            .saturating_mul(doubling)
            .min(self.max_backoff);
        ceiling.mul_f64(0.5 + random.f64() / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_ceiling() {
        let config = Config::default();
        let mut random = fastrand::Rng::with_seed(1);
        for attempt in 1..40 {
            let ceiling = (Duration::from_millis(100) * (1 << (attempt - 1).min(20)))
                .min(Duration::from_secs(10));
            let waits: Vec<Duration> = (0..50)
                .map(|_| config.backoff(attempt, &mut random))
                .collect();
            assert!(
                waits.iter().all(|w| *w <= ceiling && *w >= ceiling / 2),
                "{attempt}"
            );
            assert!(waits.windows(2).any(|w| w[0] != w[1]), "jittered");
        }
    }
}
