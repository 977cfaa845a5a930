//! Asynchronous invocations: `POST /async-function/{name}[/...]` answers 202 with the call's
//! id once the call is durably queued; a worker invokes the function through the same path as
//! a synchronous request, retries failures with backoff, POSTs the result to the caller's
//! `X-Callback-Url`, and sets aside calls that failed every attempt (the dead-letter queue).
//!
//! One interface, two queues: SQS in cluster mode (the queue named in the chart; its
//! redrive policy names the dead-letter queue), an embedded SQLite table in local mode.
//!
//! A call carries the method, the path below the function's mount point, the body and the
//! end-to-end headers, except credentials (`Authorization`, `Cookie`): a durable queue is no
//! place for them.

mod accept;
mod queue;
mod sqlite;
mod sqs;
mod worker;

pub use accept::{accept, enqueue};
pub use queue::{AsyncCall, AsyncQueue, DeadLetter, Delivery, QueueError, Selection, Settled};
pub use sqlite::SqliteQueue;
pub use sqs::SqsQueue;
pub use worker::{AsyncSettings, Worker};

/// Largest request body of an async call: the call travels as one queue message (SQS: 256
/// KiB), base64-encoded inside JSON, so a raw body must stay well below that.
pub const MAX_ASYNC_BODY: u64 = 180 * 1024;
