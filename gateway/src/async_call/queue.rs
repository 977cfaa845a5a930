//! The queue interface and what travels through it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One queued invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsyncCall {
    /// The id the client got (`X-Call-Id`), also the invocation's call id.
    pub call_id: String,
    pub function: String,
    pub method: String,
    /// Path (below the mount point) and query, as the function sees them.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Base64.
    #[serde(with = "base64_bytes")]
    pub body: Bytes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// When it was accepted (RFC 3339).
    pub accepted_at: String,
}

mod base64_bytes {
    use super::*;

    pub fn serialize<S: serde::Serializer>(body: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(body))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

impl AsyncCall {
    /// The message body.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A message body back into a call; the error says why it is not one (a poison message).
    pub fn decode(text: &str) -> Result<AsyncCall, String> {
        serde_json::from_str(text).map_err(|e| format!("not an async call: {e}"))
    }
}

/// Which dead letters an operation takes: one call, one function's, or all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub call_id: Option<String>,
    pub function: Option<String>,
}

impl Selection {
    /// Whether `call` (a dead letter, `None` when it is not a call) is selected. A message
    /// that is not a call is selected only by "all".
    pub fn takes(&self, call: Option<(&str, &str)>) -> bool {
        match call {
            Some((call_id, function)) => {
                self.call_id.as_deref().is_none_or(|id| id == call_id)
                    && self.function.as_deref().is_none_or(|f| f == function)
            }
            None => self.call_id.is_none() && self.function.is_none(),
        }
    }
}

/// What replaying or discarding dead letters did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Settled {
    /// How many were replayed (or discarded).
    pub count: u64,
}

/// A dead-lettered call as shown (`GET /system/async`, `faas dlq list`): what was asked, how
/// often it was tried and why it failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub call_id: String,
    pub function: String,
    /// How often it was tried; `None` where the queue does not keep it (SQS).
    pub attempts: Option<u32>,
    pub reason: String,
    /// The request: method, path and when it was accepted; its body as text (or base64 when
    /// it is not UTF-8), cut at [`SHOWN_BODY_BYTES`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    pub body_bytes: usize,
}

/// Most bytes of a dead letter's body shown.
pub const SHOWN_BODY_BYTES: usize = 4096;

impl DeadLetter {
    /// The dead letter of `message` (a queued call, or why it is not one).
    pub fn of(
        message: &str,
        attempts: Option<u32>,
        reason: String,
        fallback: (&str, &str),
    ) -> Self {
        let call = AsyncCall::decode(message).ok();
        let (body, body_base64) = match &call {
            Some(call) => {
                let shown = &call.body[..call.body.len().min(SHOWN_BODY_BYTES)];
                match std::str::from_utf8(shown) {
                    Ok(text) => (Some(text.to_owned()), None),
                    Err(_) => (
                        None,
                        Some(base64::engine::general_purpose::STANDARD.encode(shown)),
                    ),
                }
            }
            None => (None, None),
        };
        DeadLetter {
            call_id: call.as_ref().map_or(fallback.0, |c| &c.call_id).to_owned(),
            function: call.as_ref().map_or(fallback.1, |c| &c.function).to_owned(),
            attempts,
            reason,
            method: call.as_ref().map(|c| c.method.clone()),
            path: call.as_ref().map(|c| c.path.clone()),
            accepted_at: call.as_ref().map(|c| c.accepted_at.clone()),
            body_bytes: call.as_ref().map_or(0, |c| c.body.len()),
            body,
            body_base64,
        }
    }
}

/// One received call.
#[derive(Debug)]
pub struct Delivery {
    /// The call, or why the message is not one.
    pub call: Result<AsyncCall, String>,
    /// 1 for the first delivery.
    pub attempt: u32,
    /// The queue's handle on this delivery.
    pub handle: String,
    /// The message as received (what goes to the dead-letter queue).
    pub raw: String,
}

/// Why the queue could not do something.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct QueueError(pub String);

/// A boxed future of a queue operation.
pub type QueueFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, QueueError>> + Send + 'a>>;

/// A durable queue of async calls.
pub trait AsyncQueue: Send + Sync + 'static {
    /// Stores a call; it is delivered at least once.
    fn send(&self, call: &AsyncCall) -> QueueFuture<'_, ()>;
    /// Up to `max` calls, waiting up to `wait` for the first. Each stays invisible to other
    /// receivers until completed, retried or dead-lettered (or its lease runs out).
    fn receive(&self, max: usize, wait: Duration) -> QueueFuture<'_, Vec<Delivery>>;
    /// Done: remove it.
    fn complete<'a>(&'a self, delivery: &'a Delivery) -> QueueFuture<'a, ()>;
    /// Deliver it again after `delay`.
    fn retry<'a>(&'a self, delivery: &'a Delivery, delay: Duration) -> QueueFuture<'a, ()>;
    /// How long a received call stays invisible (SQS: the queue's visibility timeout).
    fn lease(&self) -> Duration;
    /// Keeps a call being handled invisible for `by` from now.
    fn extend<'a>(&'a self, delivery: &'a Delivery, by: Duration) -> QueueFuture<'a, ()>;
    /// Failed for good: move it to the dead letters with `reason`.
    fn dead_letter<'a>(&'a self, delivery: &'a Delivery, reason: &'a str) -> QueueFuture<'a, ()>;
    /// What `GET /system/async` shows: where calls go, what waits, the dead letters where
    /// the queue can list them without disturbing them.
    fn inspect(&self) -> QueueFuture<'_, serde_json::Value>;
    /// Puts the dead letters `which` selects back in the queue, each delivered again as a new
    /// call (attempt 1, its call id kept).
    fn replay<'a>(&'a self, which: &'a Selection) -> QueueFuture<'a, Settled>;
    /// Deletes the dead letters `which` selects.
    fn discard<'a>(&'a self, which: &'a Selection) -> QueueFuture<'a, Settled>;
    /// For logs: `sqs <url>`, `sqlite <path>`.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_round_trips_and_garbage_is_named() {
        let call = AsyncCall {
            call_id: "c1".into(),
            function: "hello".into(),
            method: "POST".into(),
            path: "/a?b=1".into(),
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: Bytes::from_static(&[0, 159, 146, 150]),
            callback_url: Some("http://127.0.0.1:9/cb".into()),
            accepted_at: "2026-11-29T00:00:00Z".into(),
        };
        assert_eq!(AsyncCall::decode(&call.encode()), Ok(call));
        let err = AsyncCall::decode("{\"hello\": 1}").expect_err("not a call");
        assert!(err.starts_with("not an async call: "), "{err}");
    }
}
