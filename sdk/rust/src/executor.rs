//! A minimal executor for async handlers.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs `future` to completion on the current thread and returns its output.
///
/// The future is polled with a no-op waker, again and again, until it is ready. This suits
/// futures that only compute or await other such futures (they finish on the first poll or
/// after a few `Pending`s from cooperative yields). There is no reactor: a future waiting on
/// I/O, a timer or a wake-up from elsewhere never completes, and this function keeps polling it,
/// using CPU, until the platform's timeout ends the request.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::block_on;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Returns `Pending` a few times before completing, like a cooperative yield.
    struct YieldTimes(u32);

    impl Future for YieldTimes {
        type Output = &'static str;
        fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
            if self.0 == 0 {
                Poll::Ready("done")
            } else {
                self.0 -= 1;
                Poll::Pending
            }
        }
    }

    #[test]
    fn runs_ready_and_yielding_futures() {
        assert_eq!(block_on(async { 40 + 2 }), 42);
        assert_eq!(block_on(YieldTimes(3)), "done");
        assert_eq!(block_on(async { YieldTimes(2).await.len() }), 4);
    }
}
