//! Async calls through SQS (cluster mode). A receive count past the attempt limit, or a
//! message that is not a call, goes to the dead-letter queue of the queue's `RedrivePolicy`
//! (sent there, then deleted here: the platform decides when a call failed for good, not the
//! queue's `maxReceiveCount`, so the two limits cannot disagree). A queue without a
//! dead-letter queue is refused at start: a call that failed every attempt would have
//! nowhere to go but away.

use std::time::Duration;

use faas_sqs::client::{Clients, Queue};

use super::queue::{
    AsyncCall, AsyncQueue, DeadLetter, Delivery, QueueError, QueueFuture, Selection, Settled,
};

/// A queue's approximate depth as `/system/async` shows it; `null` when it cannot be read.
async fn depth(queue: &Queue) -> serde_json::Value {
    match queue.depth().await {
        Ok((visible, in_flight)) => serde_json::json!({"visible": visible, "inFlight": in_flight}),
        Err(err) => {
            tracing::warn!(queue = %queue.url(), error = %err, "async calls: cannot read the queue's depth");
            serde_json::Value::Null
        }
    }
}

/// Most dead letters one replay or discard goes through.
const MAX_SETTLED: usize = 1000;

impl SqsQueue {
    /// Goes through the dead-letter queue: each message `which` selects is sent back to the
    /// queue (`replay`, a new message: its receive count starts over) and then deleted from
    /// the dead letters, or only deleted; the others are made visible again at once
    /// ([`faas_sqs::redrive::move_messages`]: copied before deleted, so never lost).
    async fn settle(&self, which: &Selection, replay: bool) -> Result<Settled, QueueError> {
        let selected = |message: &faas_sqs::event::Message| {
            let call = AsyncCall::decode(&message.body).ok();
            which.takes(
                call.as_ref()
                    .map(|c| (c.call_id.as_str(), c.function.as_str())),
            )
        };
        let to = replay.then_some(&self.queue);
        let count = faas_sqs::redrive::move_messages(&self.dead_letters, to, selected, MAX_SETTLED)
            .await
            .map_err(|e| QueueError(e.to_string()))?;
        Ok(Settled { count })
    }
}

/// An SQS queue of async calls.
pub struct SqsQueue {
    queue: Queue,
    dead_letters: Queue,
    visibility: Duration,
}

impl SqsQueue {
    /// Opens the queue at `url` (checking it is readable) and finds its dead-letter queue;
    /// a queue without one is refused, naming the fix.
    pub async fn open(clients: &Clients, url: &str) -> Result<Self, QueueError> {
        let queue = clients
            .queue(url, None)
            .await
            .map_err(|e| QueueError(e.to_string()))?;
        let visibility = queue
            .visibility_timeout()
            .await
            .map_err(|e| QueueError(e.to_string()))?;
        let dead_letters = queue
            .dead_letter_queue()
            .await
            .map_err(|e| QueueError(e.to_string()))?
            .ok_or_else(|| {
                QueueError(format!(
                    "{url} has no RedrivePolicy: async calls need a dead-letter queue for the \
                     calls that fail every attempt (set RedrivePolicy.deadLetterTargetArn)"
                ))
            })?;
        tracing::info!(queue = %url, dead_letters = %dead_letters.url(), visibility = ?visibility, "async calls: queue ready");
        Ok(SqsQueue {
            queue,
            dead_letters,
            visibility: visibility.max(Duration::from_secs(2)),
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

    fn lease(&self) -> Duration {
        self.visibility
    }

    fn extend<'a>(&'a self, delivery: &'a Delivery, by: Duration) -> QueueFuture<'a, ()> {
        self.retry(delivery, by)
    }

    fn dead_letter<'a>(&'a self, delivery: &'a Delivery, reason: &'a str) -> QueueFuture<'a, ()> {
        Box::pin(async move {
            tracing::warn!(%reason, dead_letters = %self.dead_letters.url(), "async call failed for good");
            self.dead_letters
                .send(delivery.raw.clone())
                .await
                .map_err(Self::fail)?;
            self.complete(delivery).await
        })
    }

    fn inspect(&self) -> QueueFuture<'_, serde_json::Value> {
        // The dead letters are peeked (visibility 0: nobody else waits for them because of
        // this read): a sample of up to 10, as SQS picks them, with the counts beside.
        Box::pin(async move {
            let sample: Vec<DeadLetter> = match self.dead_letters.peek(10).await {
                Ok(messages) => messages
                    .iter()
                    .map(|m| DeadLetter::of(&m.body, None, String::new(), ("", "")))
                    .collect(),
                Err(err) => {
                    tracing::warn!(queue = %self.dead_letters.url(), error = %err, "async calls: cannot peek at the dead letters");
                    Vec::new()
                }
            };
            Ok(serde_json::json!({
                "kind": "sqs",
                "queue": self.queue.url(),
                "messages": depth(&self.queue).await,
                "deadLetterQueue": self.dead_letters.url(),
                "deadLetterMessages": depth(&self.dead_letters).await,
                "deadLetters": sample,
                "visibilityTimeoutSeconds": self.visibility.as_secs(),
            }))
        })
    }

    fn replay<'a>(&'a self, which: &'a Selection) -> QueueFuture<'a, Settled> {
        Box::pin(self.settle(which, true))
    }

    fn discard<'a>(&'a self, which: &'a Selection) -> QueueFuture<'a, Settled> {
        Box::pin(self.settle(which, false))
    }

    fn describe(&self) -> String {
        format!("sqs {}", self.queue.url())
    }
}
