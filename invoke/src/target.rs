//! The platform's invocation path as event sources see it (cron runs, SQS batches): one
//! trait, so the scheduler and the pollers call functions exactly like an HTTP request does
//! (admission, concurrency limits, metrics, the executor of the current version) without
//! knowing about the gateway.

use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body_util::BodyExt;

use crate::{CallContext, ResponseBody};

/// Calls functions by name. Errors come back as responses (status + JSON body), as they
/// would for an HTTP client; dropping the future cancels the call and stops the guest.
pub trait FunctionTarget: Send + Sync + 'static {
    fn call(
        &self,
        function: &str,
        request: Request<Bytes>,
        ctx: CallContext,
    ) -> Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send + '_>>;
}

/// A response body read up to a bound.
#[derive(Debug, Default)]
pub struct BoundedBody {
    /// The first `limit` bytes.
    pub kept: Bytes,
    /// How many bytes the body had in all (more than `kept.len()` when truncated).
    pub total: usize,
    /// Why the body ended early, if it failed.
    pub error: Option<String>,
}

impl BoundedBody {
    /// Whether bytes were dropped or the body failed.
    pub fn incomplete(&self) -> bool {
        self.total > self.kept.len() || self.error.is_some()
    }
}

/// Reads `body` to its end, keeping at most `limit` bytes: a function cannot make its caller
/// buffer an unbounded answer.
pub async fn read_bounded(mut body: ResponseBody, limit: usize) -> BoundedBody {
    let mut kept = BytesMut::new();
    let mut total = 0usize;
    let mut error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    total += data.len();
                    let room = limit.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Err(err) => {
                error = Some(err.to_string());
                break;
            }
        }
    }
    BoundedBody {
        kept: kept.freeze(),
        total,
        error,
    }
}
