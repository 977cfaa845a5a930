//! Exponential backoff without jitter, for retrying something local or of our own (an SQS
//! source, a function's process): the first wait, doubling up to a cap, back to the first
//! after a reset. (Cron retries use `schedule::plan::retry_backoff`, which adds jitter
//! because many runs may retry against the same service at once.)

use std::time::Duration;

/// Waits between attempts.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
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
        if self.failures > 0 {
            self.current = (self.current * 2).min(self.max);
        }
        self.failures += 1;
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
}
