//! The platform's one exponential backoff rule: the first wait, doubled per further failure,
//! never above a cap. Used by everything that retries: cron runs (with jitter on top), async
//! calls, SQS sources, function processes restarting.

use std::time::Duration;

/// The wait after the `failures`-th consecutive failure (1-based; 0 counts as 1): `first`
/// doubled `failures - 1` times, capped at `max`. Saturates instead of overflowing.
pub fn exponential(first: Duration, failures: u32, max: Duration) -> Duration {
    let doubling = 2u32.saturating_pow(failures.saturating_sub(1));
    first.saturating_mul(doubling).min(max)
}

/// [`exponential`] as state, for a loop retrying something local or of our own (an SQS
/// source, a function's process): the waits grow with each failure and start again from the
/// first after a success. No jitter: nothing else retries against the same thing in step.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    current: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            current: first,
            failures: 0,
        }
    }

    /// Records a failure; returns how long to wait before the next attempt.
    pub fn fail(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.current = exponential(self.first, self.failures, self.max);
        self.current
    }

    /// The wait the last failure asked for.
    pub fn current(&self) -> Duration {
        self.current
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether the waits have reached the cap.
    pub fn at_max(&self) -> bool {
        self.current == self.max
    }

    /// Success: the next failure waits the first wait again.
    pub fn reset(&mut self) {
        self.current = self.first;
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let waits: Vec<u64> = (0..9).map(|_| b.fail().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(b.at_max());
        assert_eq!(b.failures(), 9);
        b.reset();
        assert_eq!(b.fail(), Duration::from_secs(1));
    }

    #[test]
    fn the_rule_saturates_instead_of_overflowing() {
        let cap = Duration::from_secs(3600);
        assert_eq!(
            exponential(Duration::from_secs(5), 0, cap),
            Duration::from_secs(5)
        );
        assert_eq!(
            exponential(Duration::from_secs(5), 3, cap),
            Duration::from_secs(20)
        );
        assert_eq!(exponential(Duration::from_secs(5), 40, cap), cap);
        assert_eq!(
            exponential(Duration::MAX, u32::MAX, Duration::MAX),
            Duration::MAX
        );
    }
}
