//! Why an invocation failed, and the HTTP status each reason maps to.

use http::StatusCode;

/// Every way an invocation can fail. The gateway turns these into JSON errors with
/// [`InvokeError::status`] and [`InvokeError::reason`]. The message is detail for the
/// operator (a trap's wasm backtrace, a pod's address): outside local mode the gateway sends
/// callers only the reason and logs the message with the call id
/// (`faas_gateway::reply::withhold_detail`).
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function ran past its `timeout` and was interrupted.
    #[error("function exceeded its timeout of {0:?}")]
    Timeout(std::time::Duration),
    /// The guest tried to grow its memory past the function's `memory` limit.
    #[error("function exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// The cap in bytes.
        limit: u64,
    },
    /// The guest trapped (panic, unreachable, out-of-bounds access...).
    #[error("function trapped: {0}")]
    Trap(String),
    /// The guest produced a response the platform cannot serve (garbage CGI headers, an
    /// `ErrorCode` from `wasi:http`, an over-long response...).
    #[error("function returned an invalid response: {0}")]
    BadResponse(String),
    /// The guest finished without producing any response.
    #[error("function returned no response")]
    NoResponse,
    /// The instance could not be created (instance pool exhausted, link error...).
    #[error("function could not be instantiated: {0}")]
    Instantiate(String),
    /// The function's process is not running or not ready (starting, restarting after a
    /// crash, failing to start); the message says which and why.
    #[error("function is not available: {0}")]
    Unavailable(String),
    /// The function's process died while handling the request.
    #[error("function process failed: {0}")]
    ProcessFailed(String),
    /// The function takes no call of this kind: a `mode: job` function runs only as runs.
    #[error("{0}")]
    NotCallable(String),
}

impl InvokeError {
    /// The HTTP status a client should see for this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            InvokeError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            InvokeError::MemoryLimit { .. } | InvokeError::Trap(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            InvokeError::BadResponse(_)
            | InvokeError::NoResponse
            | InvokeError::ProcessFailed(_) => StatusCode::BAD_GATEWAY,
            InvokeError::Instantiate(_) | InvokeError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            InvokeError::NotCallable(_) => StatusCode::CONFLICT,
        }
    }

    /// A short machine-readable reason, used in JSON errors and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            InvokeError::Timeout(_) => "Timeout",
            InvokeError::MemoryLimit { .. } => "MemoryLimitExceeded",
            InvokeError::Trap(_) => "Trapped",
            InvokeError::BadResponse(_) => "InvalidResponse",
            InvokeError::NoResponse => "NoResponse",
            InvokeError::Instantiate(_) => "InstantiateFailed",
            InvokeError::Unavailable(_) => "Unavailable",
            InvokeError::ProcessFailed(_) => "ProcessFailed",
            InvokeError::NotCallable(_) => "JobNotCallable",
        }
    }
}
