//! One batch from receive to settlement: delivered to the function as a Lambda SQS event,
//! kept invisible while the function works on it, then deleted (what succeeded) or left for
//! redelivery (what failed), or released at once if the process is stopping.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request};
use tokio::sync::watch;
use tokio::time::Instant;

use super::client::Queue;
use super::event::{Message, Source, lambda_event};
use super::poller::{Phase, Shared, reached};
use super::settle::settle;
use super::trigger::TriggerConfig;
use faas_invoke::CallContext;
use faas_invoke::read_bounded;

/// Largest function answer read for `batchItemFailures` (10,000 ids fit well within it); a
/// longer one fails the batch, as malformed.
const MAX_RESPONSE: usize = 1024 * 1024;
/// Slack given to the executor to enforce the function timeout before the poller's backstop.
const BACKSTOP_SLACK: Duration = Duration::from_secs(5);
/// How long past the function timeout (and batch window) visibility is still extended:
/// Lambda's own margin for a batch in flight.
const EXTENSION_MARGIN: Duration = Duration::from_secs(30);
/// Attempts to delete messages SQS failed to delete for a reason of its own.
const DELETE_ATTEMPTS: u32 = 3;
/// The first wait before a throttled batch (429: the function's concurrency limit) is
/// delivered again, doubled up to [`THROTTLE_WAIT_MAX`].
const THROTTLE_WAIT_FIRST: Duration = Duration::from_millis(100);
const THROTTLE_WAIT_MAX: Duration = Duration::from_secs(2);

/// Messages received together and settled together.
pub(crate) struct Batch {
    pub messages: Vec<Message>,
    /// Sum of the bodies, against Lambda's 6 MB event limit.
    pub bytes: usize,
    /// When the batch window closes (its first message plus `batchWindow`).
    pub window_ends: Instant,
    /// The queue's visibility timeout.
    visibility: Duration,
    /// When visibility was last set (the first receive, then each extension) and to what.
    set_at: Instant,
    set_to: Duration,
    /// No extension past this: by then the function has timed out.
    extend_until: Instant,
    /// A throttled batch is delivered again until this (its first receive plus the queue's
    /// visibility timeout), as Lambda retries throttled invocations within the visibility
    /// window instead of failing the batch.
    retry_throttled_until: Instant,
}

impl Batch {
    pub fn new(config: &TriggerConfig, visibility: Duration) -> Batch {
        let now = Instant::now();
        Batch {
            messages: Vec::new(),
            bytes: 0,
            window_ends: now + config.batch_window,
            visibility,
            set_at: now,
            set_to: visibility,
            extend_until: now + config.batch_window + config.function_timeout + EXTENSION_MARGIN,
            retry_throttled_until: now + visibility,
        }
    }

    pub fn add(&mut self, messages: Vec<Message>) {
        self.bytes += messages.iter().map(|m| m.body.len()).sum::<usize>();
        self.messages.extend(messages);
    }

    /// When visibility must next be extended: halfway through the current one, so a slow
    /// SQS call still lands in time. Far away once extending has stopped.
    pub fn keep_alive_due(&self) -> Instant {
        if self.set_at >= self.extend_until {
            return self.extend_until + Duration::from_secs(86_400);
        }
        let half = (self.set_to / 2).max(Duration::from_millis(500));
        (self.set_at + half).min(self.extend_until)
    }

    fn handles(&self, indexes: impl IntoIterator<Item = usize>) -> Vec<&str> {
        indexes
            .into_iter()
            .filter_map(|i| self.messages.get(i))
            .map(|m| m.receipt_handle.as_str())
            .collect()
    }
}

/// Extends the visibility of every message of `batch` by the queue's visibility timeout (at
/// least 2 s, so a tiny one still outlasts the half-way tick).
pub(crate) async fn keep_invisible(shared: &Shared, queue: &Queue, batch: &mut Batch) {
    let now = Instant::now();
    batch.set_at = now;
    if now >= batch.extend_until {
        return;
    }
    let extension = batch.visibility.max(Duration::from_secs(2));
    batch.set_to = extension;
    let handles = batch.handles(0..batch.messages.len());
    match queue.set_visibility(&handles, extension).await {
        Ok(failures) if failures.is_empty() => {}
        Ok(failures) => tracing::warn!(
            function = %shared.config.function,
            queue = %shared.config.queue_url,
            failed = failures.len(),
            first = %failures[0].message,
            "sqs: could not extend the visibility of some messages; they may be delivered again"
        ),
        Err(err) => {
            shared.metrics.errors.inc();
            tracing::warn!(function = %shared.config.function, error = %err, "sqs: visibility extension failed");
        }
    }
}

/// Counts a batch in flight until dropped, whatever ends it.
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.metrics.in_flight.dec();
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
        self.0.settled.notify_waiters();
    }
}

/// Delivers `batch` and settles it. The caller counted it in flight.
pub(crate) async fn run(
    shared: Arc<Shared>,
    queue: Queue,
    source: Arc<Source>,
    mut batch: Batch,
    mut phase: watch::Receiver<Phase>,
) {
    let _in_flight = InFlight(Arc::clone(&shared));
    let count = batch.messages.len();
    shared.metrics.batch_size.observe(count as f64);
    if let Some(age) = oldest_age(&batch.messages) {
        shared.metrics.oldest_age.set(age.as_secs_f64());
    }
    shared.status.batch_received(count);

    let event = Bytes::from(lambda_event(&source, &batch.messages));
    // Boxed so that it can be dropped (cancelling the call) before the messages are released.
    let mut call = Box::pin(deliver_until_admitted(
        &shared,
        event,
        batch.retry_throttled_until,
    ));
    let answer = loop {
        tokio::select! {
            answer = &mut call => break Some(answer),
            () = reached(&mut phase, Phase::Release) => break None,
            () = tokio::time::sleep_until(batch.keep_alive_due()) => {
                keep_invisible(&shared, &queue, &mut batch).await;
            }
        }
    };
    let Some((status, body)) = answer else {
        // The grace period is over: stop the call and hand the messages back at once.
        drop(call);
        release(&shared, &queue, &batch).await;
        return;
    };
    let settlement = settle(
        &batch.messages,
        shared.config.queue.fifo,
        shared.config.report_batch_item_failures,
        status,
        &body,
    );
    let deleted = delete(&shared, &queue, &batch, &settlement.delete).await;
    let kept = settlement.keep.len();
    shared.metrics.deleted.inc_by(deleted as u64);
    shared.metrics.failed.inc_by(kept as u64);
    shared.status.update(|s| {
        s.deleted += deleted as u64;
        s.failed += kept as u64;
        if let Some(reason) = &settlement.reason {
            s.last_failure = Some(format!("{kept} of {count} kept for redelivery: {reason}"));
        }
    });
    // A struggling function is handed fewer batches at once; one keeping up with a backlog,
    // more.
    if settlement.reason.is_some() || status == 429 {
        shared.scale.failed();
    } else {
        shared.scale.succeeded(count, shared.config.batch_size);
    }
    if let Some(reason) = settlement.reason {
        tracing::warn!(
            function = %shared.config.function,
            queue = %shared.config.queue_url,
            batch = count,
            kept,
            %reason,
            "sqs: messages left for redelivery"
        );
    }
}

/// [`deliver`], again after a wait while the function answers 429 (its concurrency limit is
/// reached) and `until` allows another attempt; the last answer.
async fn deliver_until_admitted(shared: &Shared, event: Bytes, until: Instant) -> (u16, Bytes) {
    let mut wait = THROTTLE_WAIT_FIRST;
    loop {
        let answer = deliver(shared, event.clone()).await;
        if answer.0 != 429 || Instant::now() + wait >= until {
            return answer;
        }
        shared.status.update(|s| s.throttled += 1);
        tracing::debug!(function = %shared.config.function, queue = %shared.config.queue_url, ?wait, "sqs: batch throttled; delivering it again");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(THROTTLE_WAIT_MAX);
    }
}

/// Calls the function with `event`; its status and (bounded) answer. A body that broke off
/// counts as a failed call.
async fn deliver(shared: &Shared, event: Bytes) -> (u16, Bytes) {
    let config = &shared.config;
    let mut request = Request::new(event);
    *request.method_mut() = http::Method::POST;
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        faas_api::contract::TRIGGER_HEADER,
        HeaderValue::from_static(faas_api::contract::TRIGGER_SQS),
    );
    let ctx = CallContext::new(shared.next_call_id(), &*config.function);
    let call = async {
        let response = shared.target.call(&config.function, request, ctx).await;
        let status = response.status().as_u16();
        let body = read_bounded(response.into_body(), MAX_RESPONSE).await;
        if body.error.is_some() {
            return (502, Bytes::new());
        }
        (status, body.kept)
    };
    // The executor enforces the function timeout (504); this is the backstop behind it.
    tokio::time::timeout(config.function_timeout + BACKSTOP_SLACK, call)
        .await
        .unwrap_or((504, Bytes::new()))
}

/// Deletes the messages at `indexes`, retrying those SQS failed for a reason of its own. The
/// number deleted; the rest will be delivered again (at least once, never lost).
async fn delete(shared: &Shared, queue: &Queue, batch: &Batch, indexes: &[usize]) -> usize {
    let mut pending = batch.handles(indexes.iter().copied());
    let wanted = pending.len();
    let mut deleted = 0;
    let mut wait = Duration::from_millis(200);
    for attempt in 1..=DELETE_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        match queue.delete(&pending).await {
            Ok(failures) => {
                deleted += pending.len() - failures.len();
                let mut retry = Vec::new();
                for failure in &failures {
                    if failure.sender_fault {
                        // An expired receipt handle: the message was already redelivered.
                        tracing::warn!(
                            function = %shared.config.function,
                            code = %failure.code,
                            message = %failure.message,
                            "sqs: message not deleted; it will be delivered again"
                        );
                    } else if let Some(handle) = pending.get(failure.index) {
                        retry.push(*handle);
                    }
                }
                pending = retry;
            }
            Err(err) => {
                shared.metrics.errors.inc();
                tracing::warn!(function = %shared.config.function, attempt, error = %err, "sqs: delete failed");
            }
        }
        if !pending.is_empty() && attempt < DELETE_ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    if deleted < wanted {
        tracing::warn!(
            function = %shared.config.function,
            queue = %shared.config.queue_url,
            not_deleted = wanted - deleted,
            "sqs: processed messages could not be deleted; they will be delivered again"
        );
    }
    deleted
}

/// Makes every message of `batch` visible again now (shutdown), so another consumer takes it
/// without waiting out the visibility timeout.
pub(crate) async fn release(shared: &Shared, queue: &Queue, batch: &Batch) {
    let handles = batch.handles(0..batch.messages.len());
    let released = match queue.set_visibility(&handles, Duration::ZERO).await {
        Ok(failures) => handles.len() - failures.len(),
        Err(err) => {
            shared.metrics.errors.inc();
            tracing::warn!(function = %shared.config.function, error = %err, "sqs: could not release messages; they return after their visibility timeout");
            0
        }
    };
    shared.metrics.released.inc_by(released as u64);
    shared.status.update(|s| s.released += released as u64);
    tracing::info!(
        function = %shared.config.function,
        queue = %shared.config.queue_url,
        released,
        "sqs: released unfinished messages"
    );
}

/// Now minus the earliest `SentTimestamp` of `messages`.
fn oldest_age(messages: &[Message]) -> Option<Duration> {
    let oldest = messages
        .iter()
        .filter_map(|m| m.attributes.get("SentTimestamp")?.parse::<u64>().ok())
        .min()?;
    let now = jiff::Timestamp::now().as_millisecond().max(0) as u64;
    Some(Duration::from_millis(now.saturating_sub(oldest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(window: u64, timeout: u64) -> TriggerConfig {
        TriggerConfig {
            function: "f".into(),
            queue_url: "http://127.0.0.1:1/123456789012/q".into(),
            queue: faas_api::sqs::QueueUrl::parse("http://127.0.0.1:1/123456789012/q")
                .expect("url"),
            batch_size: 10,
            batch_window: Duration::from_secs(window),
            max_concurrency: 1,
            report_batch_item_failures: false,
            enabled: true,
            filters: Vec::new(),
            function_timeout: Duration::from_secs(timeout),
            long_poll: Duration::from_secs(20),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn visibility_is_extended_half_way_and_only_up_to_the_function_timeout() {
        let start = Instant::now();
        let mut batch = Batch::new(&config(5, 60), Duration::from_secs(30));
        // First extension half-way through the queue's visibility timeout.
        assert_eq!(batch.keep_alive_due() - start, Duration::from_secs(15));
        assert_eq!(batch.window_ends - start, Duration::from_secs(5));
        // Extending stops at window + timeout + 30 s = 95 s.
        tokio::time::advance(Duration::from_secs(90)).await;
        batch.set_at = Instant::now();
        assert_eq!(batch.keep_alive_due() - start, Duration::from_secs(95));
        tokio::time::advance(Duration::from_secs(5)).await;
        batch.set_at = Instant::now();
        assert!(batch.keep_alive_due() - start > Duration::from_secs(3600));
    }

    #[tokio::test(start_paused = true)]
    async fn tiny_visibility_timeouts_are_extended_often_enough() {
        let start = Instant::now();
        let batch = Batch::new(&config(0, 10), Duration::from_secs(1));
        // Never less than half a second between extensions, always before the lapse.
        assert_eq!(batch.keep_alive_due() - start, Duration::from_millis(500));
        let batch = Batch::new(&config(0, 10), Duration::ZERO);
        assert_eq!(batch.keep_alive_due() - start, Duration::from_millis(500));
    }

    #[test]
    fn the_age_of_the_oldest_message_comes_from_sent_timestamps() {
        let now = jiff::Timestamp::now().as_millisecond();
        let message = |sent: i64| {
            let mut m = Message::default();
            m.attributes
                .insert("SentTimestamp".into(), sent.to_string());
            m
        };
        let age = oldest_age(&[
            message(now - 2_000),
            message(now - 60_000),
            Message::default(),
        ])
        .expect("an age");
        assert!(
            age >= Duration::from_secs(60) && age < Duration::from_secs(61),
            "{age:?}"
        );
        assert_eq!(oldest_age(&[Message::default()]), None);
    }
}
