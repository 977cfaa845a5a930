//! Admission control per function: at most `concurrency` invocations in flight, a bounded
//! queue behind them, and a bounded wait. Overload answers 429 quickly instead of piling up
//! memory and latency for everyone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a request was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// The queue is full.
    QueueFull,
    /// Waited the maximum time without a free slot.
    WaitedTooLong,
}

/// The limiter of one function version.
#[derive(Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

impl Admission {
    /// `concurrency` in flight, up to `max_waiting` queued for at most `max_wait`.
    pub fn new(concurrency: u32, max_waiting: usize, max_wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1) as usize)),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    /// Waits for a slot, or says why not.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, Rejected> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok(permit);
        }
        let Some(_place) = QueuePlace::take(&self.waiting, self.max_waiting) else {
            return Err(Rejected::QueueFull);
        };
        // `_place` gives the queue place back however this future ends: a slot, a timeout,
        // or dropped while waiting (the client went away, a cron `Replace` or a run cancel
        // aborted the run). Without it every abandoned waiter would shrink the queue for good.
        let acquired =
            tokio::time::timeout(self.max_wait, Arc::clone(&self.permits).acquire_owned()).await;
        match acquired {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a timeout if it ever is.
            Ok(Err(_)) | Err(_) => Err(Rejected::WaitedTooLong),
        }
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Invocations in flight now.
    pub fn in_flight(&self, concurrency: u32) -> usize {
        (concurrency.max(1) as usize).saturating_sub(self.permits.available_permits())
    }
}

/// One place in the queue, given back on drop.
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    /// A place if fewer than `max` are taken.
    fn take(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| QueuePlace(waiting))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn overload_is_rejected_not_queued_forever() {
        let admission = Arc::new(Admission::new(1, 1, Duration::from_secs(1)));
        let first = admission.admit().await.expect("slot free");
        let waiter = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.admit().await })
        };
        tokio::task::yield_now().await;
        assert_eq!(admission.admit().await.err(), Some(Rejected::QueueFull));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            waiter.await.expect("join").err(),
            Some(Rejected::WaitedTooLong)
        );
        drop(first);
        assert!(admission.admit().await.is_ok());
    }

    #[tokio::test]
    async fn a_released_slot_admits_the_next_waiter() {
        let admission = Arc::new(Admission::new(1, 4, Duration::from_secs(5)));
        let first = admission.admit().await.expect("slot");
        let waiter = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.admit().await.is_ok() })
        };
        tokio::task::yield_now().await;
        drop(first);
        assert!(waiter.await.expect("join"));
    }

    #[tokio::test(start_paused = true)]
    async fn abandoned_waiters_give_their_queue_place_back() {
        let admission = Arc::new(Admission::new(1, 3, Duration::from_secs(60)));
        let busy = admission.admit().await.expect("slot free");
        // Fill the queue, then abandon every waiter (a client that went away, a cancelled
        // run: the future is dropped while it waits).
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let admission = Arc::clone(&admission);
                tokio::spawn(async move { admission.admit().await.map(drop) })
            })
            .collect();
        tokio::task::yield_now().await;
        assert_eq!(admission.admit().await.err(), Some(Rejected::QueueFull));
        for waiter in &waiters {
            waiter.abort();
        }
        for waiter in waiters {
            assert!(waiter.await.expect_err("aborted").is_cancelled());
        }
        // A new request gets a place in the queue (it waits), not a 429.
        let next = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.admit().await.map(drop) })
        };
        tokio::task::yield_now().await;
        assert!(
            !next.is_finished(),
            "the new request must wait in the queue"
        );
        drop(busy);
        assert_eq!(next.await.expect("join"), Ok(()));
    }
}
