//! What a trigger is doing, for the function's status (`faas describe`, the dashboard): the
//! poller's state, its last source error, counts since it started.

use std::sync::Mutex;

use jiff::Timestamp;
use serde::Serialize;

/// Where a poller is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TriggerState {
    /// Reading the queue's attributes before the first receive.
    Starting,
    /// Receiving and delivering.
    Polling,
    /// The source failed (queue missing, access denied, endpoint down); retrying with backoff.
    Error,
    /// `enabled: false`.
    Disabled,
    /// Not polling because the function cannot take calls (it failed to load).
    FunctionNotReady,
    /// Not polling: there is nothing this host may read the queue with (a pooled function
    /// without an IAM role: the pod's own identity is never a tenant's).
    NoCredentials,
    /// Stopped receiving; finishing the batches in flight.
    Draining,
    /// Stopped.
    Stopped,
}

/// A trigger's status.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerStatus {
    pub queue_url: String,
    pub state: TriggerState,
    /// Why the state is what it is (the source error, the reason the function is not ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the state last changed (RFC 3339).
    pub since: String,
    pub batches_in_flight: usize,
    /// Batches allowed in flight now: from 1 up to `max_concurrency`, on the backlog.
    pub concurrency: usize,
    pub max_concurrency: usize,
    /// The queue's visibility timeout, once read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility_timeout_seconds: Option<u64>,
    /// Counts since this poller started.
    pub received: u64,
    pub deleted: u64,
    pub failed: u64,
    pub released: u64,
    /// Messages that matched no filter, deleted without a call.
    pub filtered: u64,
    /// Deliveries the function throttled (429) and that were made again.
    pub throttled: u64,
    /// When the last batch was delivered (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_batch: Option<String>,
    /// Why the last batch that was not wholly deleted kept messages (the function's answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

impl TriggerStatus {
    /// A status in `state`, with nothing counted.
    pub fn new(queue_url: &str, state: TriggerState, max_concurrency: usize) -> Self {
        TriggerStatus {
            queue_url: queue_url.to_owned(),
            state,
            message: None,
            since: now(),
            batches_in_flight: 0,
            concurrency: 1,
            max_concurrency,
            visibility_timeout_seconds: None,
            received: 0,
            deleted: 0,
            failed: 0,
            released: 0,
            filtered: 0,
            throttled: 0,
            last_batch: None,
            last_failure: None,
        }
    }

    /// With a message.
    pub fn because(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// Now in RFC 3339, UTC, to the millisecond: the format of run records' times.
fn now() -> String {
    let now = Timestamp::now();
    now.round(jiff::Unit::Millisecond)
        .unwrap_or(now)
        .to_string()
}

/// A poller's status, shared between its tasks and readers.
pub(crate) struct StatusCell(Mutex<TriggerStatus>);

impl StatusCell {
    pub fn new(status: TriggerStatus) -> Self {
        StatusCell(Mutex::new(status))
    }

    pub fn get(&self) -> TriggerStatus {
        self.lock().clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut TriggerStatus)) {
        f(&mut self.lock());
    }

    /// Moves to `state` (with `message`), stamping `since` only when the state changes, so
    /// an error retried every minute keeps the time it began.
    pub fn set(&self, state: TriggerState, message: Option<String>) {
        let mut status = self.lock();
        if status.state != state {
            status.state = state;
            status.since = now();
        }
        status.message = message;
    }

    /// A batch of `count` messages was received and is being delivered.
    pub fn batch_received(&self, count: usize) {
        let mut status = self.lock();
        status.received += count as u64;
        status.last_batch = Some(now());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TriggerStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
