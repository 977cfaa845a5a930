//! Helpers to unit-test handlers natively with `cargo test`.
//!
//! ```
//! use faas_sdk::{IntoResponse, Request, StatusCode, testing};
//!
//! async fn echo(req: Request) -> impl IntoResponse {
//!     (StatusCode::OK, String::from_utf8_lossy(req.body()).into_owned())
//! }
//!
//! let resp = testing::call_async(echo, testing::request("POST", "/echo", "ping"));
//! assert_eq!(resp.status(), StatusCode::OK);
//! assert_eq!(resp.body().as_ref(), b"ping");
//! ```

use crate::{Bytes, IntoResponse, Request, Response, block_on};
use std::future::Future;

/// Calls a synchronous handler with `request` and converts its result, as the platform does.
pub fn call<F, R>(handler: F, request: Request) -> Response
where
    F: FnOnce(Request) -> R,
    R: IntoResponse,
{
    handler(request).into_response()
}

/// Calls an asynchronous handler with `request`, drives it with [`block_on`] and converts its
/// result, as the platform does.
pub fn call_async<F, Fut>(handler: F, request: Request) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future,
    Fut::Output: IntoResponse,
{
    block_on(handler(request)).into_response()
}

/// Builds a request with the given method, URI (path and query) and body.
///
/// # Panics
///
/// If `method` or `uri` is invalid: this is a test helper, a bad literal is a bug in the test.
pub fn request(method: &str, uri: &str, body: impl Into<Bytes>) -> Request {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .body(body.into())
        .unwrap_or_else(|e| panic!("invalid test request {method} {uri}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StatusCode;

    #[test]
    fn request_builds_what_it_says() {
        let req = request("PUT", "/a?b=c", "body");
        assert_eq!(req.method(), "PUT");
        assert_eq!(req.uri(), "/a?b=c");
        assert_eq!(req.body().as_ref(), b"body");
    }

    #[test]
    fn call_converts_result_errors() {
        let failing = |_req: Request| -> Result<String, String> { Err("boom".into()) };
        let resp = call(failing, request("GET", "/", ""));
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.body().as_ref(), b"boom");
    }
}
