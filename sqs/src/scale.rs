//! How many batches a trigger keeps in flight, as Lambda's SQS poller scales: it starts at
//! one and adds one each time a full batch (there is a backlog) was handled successfully, up
//! to `maxConcurrency`, so it grows as fast as the function proves it keeps up and no faster;
//! it gives one back when a receive comes back short (the backlog is gone), and halves when
//! the function fails or throttles a batch, so a struggling function is not handed more work
//! at once. Never below one.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The current number of batches allowed in flight.
#[derive(Debug)]
pub struct Scale {
    target: AtomicUsize,
    max: usize,
}

impl Scale {
    /// One batch at first, at most `max`.
    pub fn new(max: usize) -> Self {
        Scale {
            target: AtomicUsize::new(1),
            max: max.max(1),
        }
    }

    /// Batches allowed in flight now.
    pub fn target(&self) -> usize {
        self.target.load(Ordering::SeqCst)
    }

    /// A receive gathered `got` messages for batches of `batch_size`: short, one fewer.
    pub fn received(&self, got: usize, batch_size: usize) {
        if got < batch_size {
            self.update(|t| t.saturating_sub(1));
        }
    }

    /// A batch of `count` messages was handled: a full one means a backlog the function keeps
    /// up with, one more.
    pub fn succeeded(&self, count: usize, batch_size: usize) {
        if count >= batch_size {
            self.update(|t| t + 1);
        }
    }

    /// The function failed or throttled a batch: half as many.
    pub fn failed(&self) {
        self.update(|t| t / 2);
    }

    fn update(&self, next: impl Fn(usize) -> usize) {
        let max = self.max;
        let _ = self
            .target
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(next(t).clamp(1, max))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_adds_a_batch_at_a_time_up_to_the_limit_and_failures_halve() {
        let scale = Scale::new(5);
        assert_eq!(scale.target(), 1, "one batch at first");
        scale.received(10, 10);
        assert_eq!(scale.target(), 1, "a full receive alone proves nothing");
        for want in [2, 3, 4, 5, 5] {
            scale.succeeded(10, 10);
            assert_eq!(scale.target(), want);
        }
        scale.succeeded(4, 10);
        assert_eq!(scale.target(), 5, "a short batch adds nothing");
        scale.failed();
        assert_eq!(scale.target(), 2);
        scale.received(3, 10);
        assert_eq!(scale.target(), 1, "a short receive gives one back");
        scale.received(0, 10);
        scale.failed();
        assert_eq!(scale.target(), 1, "never below one");
        let one = Scale::new(1);
        one.succeeded(10, 10);
        assert_eq!(one.target(), 1, "maxConcurrency 1 is one");
        assert_eq!(Scale::new(0).target(), 1);
    }
}
