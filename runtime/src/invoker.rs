//! The one interface every executor implements.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

use crate::InvokeError;

/// Error type of streamed response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body that may still be produced by the guest while it is sent.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Who is calling, for logs and run records.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// Unique id of this invocation; also returned to the client as `X-Call-Id`.
    pub call_id: String,
    /// Function name (logs are tagged with it).
    pub function: String,
}

/// Something that can run one invocation of one function.
///
/// Requests arrive with their body already read and bounded by the gateway: the body limit is
/// an admission decision (413) that must be taken before any guest code runs.
pub trait Invoker: Send + Sync + 'static {
    /// Runs one invocation. The returned body may still be streaming from a running guest; the
    /// function's deadline keeps applying until it ends.
    fn invoke(
        &self,
        ctx: CallContext,
        request: http::Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, InvokeError>> + Send + '_>>;
}

/// A complete in-memory body.
pub fn full_body(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
