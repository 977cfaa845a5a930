//! Async calls through SQS (cluster mode). A receive count past the attempt limit, or a
//! message that is not a call, goes to the dead-letter queue of the queue's `RedrivePolicy`
//! (sent there, then deleted here: the platform decides when a call failed for good, not the
//! queue's `maxReceiveCount`, so the two limits cannot disagree). A queue without a
//! dead-letter queue keeps such a call, invisible for 12 hours, rather than lose it.

use std::time::Duration;

use faas_runtime::sqs::client::{Clients, Queue};

use super::queue::{AsyncCall, AsyncQueue, Delivery, QueueError, QueueFuture};

/// SQS's longest visibility timeout: where a call waits when it has nowhere else to go.
const PARKED: Duration = Duration::from_secs(12 * 3600);

/// An SQS queue of async calls.
pub struct SqsQueue {
    queue: Queue,
    dead_letters: Option<Queue>,
}

impl SqsQueue {
    /// Opens the queue at `url` (checking it is readable) and finds its dead-letter queue.
    pub async fn open(clients: &Clients, url: &str) -> Result<Self, QueueError> {
        let queue = clients
            .queue(url, None)
            .await
            .map_err(|e| QueueError(e.to_string()))?;
        queue
            .visibility_timeout()
            .await
            .map_err(|e| QueueError(e.to_string()))?;
        let dead_letters = queue
            .dead_letter_queue()
            .await
            .map_err(|e| QueueError(e.to_string()))?;
        match &dead_letters {
            Some(dlq) => {
                tracing::info!(queue = %url, dead_letters = %dlq.url(), "async calls: queue ready")
            }
            None => tracing::warn!(
                queue = %url,
                "async calls: the queue has no RedrivePolicy; calls that fail every attempt \
                 stay in it (invisible for 12 h) instead of moving to a dead-letter queue"
            ),
        }
        Ok(SqsQueue {
            queue,
            dead_letters,
        })
    }

    fn fail(e: impl std::fmt::Display) -> QueueError {
        QueueError(e.to_string())
    }
}

impl AsyncQueue for SqsQueue {
    fn send(&self, call: &AsyncCall) -> QueueFuture<'_, ()> {
        let body = call.encode();
        Box::pin(async move {
            self.queue.send(body).await.map_err(Self::fail)?;
            Ok(())
        })
    }

    fn receive(&self, max: usize, wait: Duration) -> QueueFuture<'_, Vec<Delivery>> {
        Box::pin(async move {
            let messages = self.queue.receive(max, wait).await.map_err(Self::fail)?;
            Ok(messages
                .into_iter()
                .map(|m| Delivery {
                    call: AsyncCall::decode(&m.body),
                    attempt: m
                        .attributes
                        .get("ApproximateReceiveCount")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1),
                    handle: m.receipt_handle,
                    raw: m.body,
                })
                .collect())
        })
    }

    fn complete<'a>(&'a self, delivery: &'a Delivery) -> QueueFuture<'a, ()> {
        Box::pin(async move {
            let failed = self
                .queue
                .delete(&[delivery.handle.as_str()])
                .await
                .map_err(Self::fail)?;
            match failed.first() {
                Some(f) => Err(QueueError(format!("{}: {}", f.code, f.message))),
                None => Ok(()),
            }
        })
    }

    fn retry<'a>(&'a self, delivery: &'a Delivery, delay: Duration) -> QueueFuture<'a, ()> {
        Box::pin(async move {
            // SQS counts whole seconds.
            let delay = Duration::from_secs(delay.as_secs_f64().ceil() as u64);
            let failed = self
                .queue
                .set_visibility(&[delivery.handle.as_str()], delay)
                .await
                .map_err(Self::fail)?;
            match failed.first() {
                Some(f) => Err(QueueError(format!("{}: {}", f.code, f.message))),
                None => Ok(()),
            }
        })
    }

    fn dead_letter<'a>(&'a self, delivery: &'a Delivery, reason: &'a str) -> QueueFuture<'a, ()> {
        Box::pin(async move {
            let Some(dlq) = &self.dead_letters else {
                tracing::error!(%reason, "async call failed for good; no dead-letter queue: kept in the queue for 12 h");
                return self.retry(delivery, PARKED).await;
            };
            dlq.send(delivery.raw.clone()).await.map_err(Self::fail)?;
            self.complete(delivery).await
        })
    }

    fn describe(&self) -> String {
        format!("sqs {}", self.queue.url())
    }
}
