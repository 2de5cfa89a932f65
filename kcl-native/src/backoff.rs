//! Pauses after a throttled or failed call: exponential, capped, jittered.

use std::time::Duration;

/// Exponential backoff: the `n`-th pause in a row (from 1) is drawn between half and all of
/// `min(max, initial × 2^(n−1))`, so that workers throttled together do not retry together.
///
/// ```
/// use std::time::Duration;
/// use kcl_native::Backoff;
/// let backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
/// let mut random = fastrand::Rng::with_seed(1);
/// let third = backoff.pause(3, &mut random);
/// assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
/// assert!(backoff.pause(30, &mut random) <= Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first pause.
    pub initial: Duration,
    /// The ceiling of every pause.
    pub max: Duration,
}

impl Default for Backoff {
    /// 500 ms, doubling up to 10 s.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The pause after the `attempt`-th failure in a row (1 for the first).
    pub fn pause(&self, attempt: u32, random: &mut fastrand::Rng) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let ceiling = self
            .initial
            .saturating_mul(1 << doublings)
            .min(self.max)
            .max(self.initial.min(self.max));
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(random.u64(0..=spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_stay_in_their_half() {
        let backoff = Backoff::default();
        let mut random = fastrand::Rng::with_seed(7);
        for attempt in 1..40 {
            let ceiling = (Duration::from_millis(500) * 2u32.pow(attempt.min(6) - 1))
                .min(Duration::from_secs(10));
            for _ in 0..20 {
                let pause = backoff.pause(attempt, &mut random);
                assert!(
                    pause >= ceiling / 2 && pause <= ceiling,
                    "{attempt}: {pause:?}"
                );
            }
        }
    }
}
