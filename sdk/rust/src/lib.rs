//! # faas-sdk: write a faas function in Rust
//!
//! A function is a plain handler that takes a [`Request`] and returns anything that implements
//! [`IntoResponse`], plus one line of [`export_handler!`]. Built with
//! `cargo build --target wasm32-wasip2` (crate type `cdylib`), it becomes a `wasi:http/proxy`
//! component that the faas platform serves.
//!
//! ```
//! use faas_sdk::{Request, Response};
//!
//! fn handle(req: Request) -> Response {
//!     Response::new(format!("Hello from faas: {} {}", req.method(), req.uri().path()).into())
//! }
//!
//! faas_sdk::export_handler!(handle);
//! # fn main() {}
//! ```
//!
//! The function's `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "hello"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! faas-sdk = { path = "../../sdk/rust" }
//! ```
//!
//! ## Requests and responses
//!
//! * [`Request`] is an [`http::Request`] whose body ([`Bytes`]) has been read completely before the
//!   handler runs. The platform bounds its size, so the handler never sees more than the
//!   function's configured body limit. Its URI holds the path and query relative to where the
//!   function is mounted: a call to `/function/hello/abc?x=1` arrives as `/abc?x=1`, with the
//!   mount point in the `x-forwarded-prefix` header and the original host in `host`.
//! * [`Response`] is an [`http::Response`] with a [`Bytes`] body. Handlers may return it directly
//!   or anything else implementing [`IntoResponse`]: `String`, `&'static str`,
//!   `(StatusCode, String)`, [`StatusCode`], `Result<T, E>` (an `Err` becomes a
//!   `500 Internal Server Error` carrying the error's `Display` text), and a few more.
//!
//! ## Async handlers
//!
//! ```
//! use faas_sdk::{IntoResponse, Request, StatusCode};
//!
//! async fn handle(req: Request) -> impl IntoResponse {
//!     (StatusCode::CREATED, format!("{} bytes received", req.body().len()))
//! }
//!
//! faas_sdk::export_handler!(async handle);
//! # fn main() {}
//! ```
//!
//! The future is driven by a minimal executor ([`block_on`]) that polls it with a no-op waker
//! until it completes. That is right for `async` code that computes (or awaits other such
//! futures), but there is no reactor: a future that waits on I/O, a timer or a channel fed by
//! another task is never woken, and the executor keeps polling it, burning CPU, until the
//! platform's timeout ends the request. Use blocking calls for I/O inside handlers.
//!
//! ## Testing handlers natively
//!
//! On the host (any target that is not `wasm32`), [`export_handler!`] only type-checks the
//! handler, so a function crate builds and tests with a plain `cargo test`. The [`testing`]
//! module calls a handler the way the platform would:
//!
//! ```
//! use faas_sdk::{Request, Response, testing};
//!
//! fn handle(req: Request) -> Response {
//!     Response::new(format!("path={}", req.uri().path()).into())
//! }
//!
//! let resp = testing::call(handle, testing::request("GET", "/function/hello/x", ""));
//! assert_eq!(resp.status(), 200);
//! assert_eq!(resp.body().as_ref(), b"path=/function/hello/x");
//! ```
//!
//! ## What the platform sees
//!
//! The component exports `wasi:http/incoming-handler`. Because the Rust standard library is
//! linked, it also imports the `wasi:cli` interfaces std uses (environment, stdio, exit, ...):
//! `println!` and `eprintln!` end up in the function's logs and `std::env::var` reads the
//! function's `env`. Panics abort the instance; the platform answers such a request with an
//! error status.

#![warn(missing_docs)]

pub use bytes::{self, Bytes};
pub use http::{self, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

#[cfg(feature = "aws")]
pub mod aws;
pub mod events;
mod executor;
mod outbound;
mod response;
pub mod testing;

pub use executor::block_on;
pub use outbound::{SendError, send};
pub use response::IntoResponse;

/// The request a handler receives: method, URI (path and query), headers and the whole body.
pub type Request = http::Request<Bytes>;

/// The response a handler produces.
pub type Response = http::Response<Bytes>;

/// Largest number of bytes written to an output stream in one `blocking-write-and-flush` call
/// (the limit `wasi:io/streams` guarantees).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
const WRITE_CHUNK: usize = 4096;

/// Exports a handler as the function's `wasi:http/incoming-handler`.
///
/// * `export_handler!(handle)` for `fn handle(req: Request) -> R` where `R: IntoResponse`;
/// * `export_handler!(async handle)` for `async fn handle(req: Request) -> R` (any
///   `Fn(Request) -> impl Future<Output = R>`), run with [`block_on`](crate::block_on).
///
/// The argument is a path, so `export_handler!(handlers::hello)` works too. Use it once per
/// crate (a component has one incoming handler), at module level.
///
/// On `wasm32` the macro implements the WASI export glue; on other targets it only checks the
/// handler's signature, so the crate also builds and tests natively.
#[macro_export]
macro_rules! export_handler {
    (async $handler:path) => {
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        #[allow(dead_code)]
        fn __faas_sdk_check_handler() {
            $crate::__private::check_async($handler);
        }

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct FaasSdkHandler;

            impl $crate::__private::Guest for FaasSdkHandler {
                fn handle(
                    request: $crate::__private::IncomingRequest,
                    response_out: $crate::__private::ResponseOutparam,
                ) {
                    $crate::__private::serve_async(request, response_out, $handler)
                }
            }

            $crate::__private::export!(FaasSdkHandler);
        };
    };
    ($handler:path) => {
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        #[allow(dead_code)]
        fn __faas_sdk_check_handler() {
            $crate::__private::check_sync($handler);
        }

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct FaasSdkHandler;

            impl $crate::__private::Guest for FaasSdkHandler {
                fn handle(
                    request: $crate::__private::IncomingRequest,
                    response_out: $crate::__private::ResponseOutparam,
                ) {
                    $crate::__private::serve(request, response_out, $handler)
                }
            }

            $crate::__private::export!(FaasSdkHandler);
        };
    };
}

/// Builds the [`Request`] a handler sees from the parts `wasi:http` hands over.
///
/// Used by the wasm glue; kept target-independent so it is unit-tested on the host.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn build_request(
    method: &str,
    path_with_query: Option<&str>,
    authority: Option<&str>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
) -> Result<Request, String> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|e| format!("invalid request method {method:?}: {e}"))?;
    let target = path_with_query.filter(|p| !p.is_empty()).unwrap_or("/");
    let uri: Uri = target
        .parse()
        .map_err(|e| format!("invalid request target {target:?}: {e}"))?;
    let mut req = Request::new(Bytes::from(body));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    let map = req.headers_mut();
    for (name, value) in headers {
        // The host has already parsed these headers, so a failure here means a name or value
        // the `http` crate is stricter about; skipping it beats failing the whole request.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            map.append(name, value);
        }
    }
    // wasi:http gives the host as the request's authority and keeps `host` out of its
    // headers; handlers find it where an HTTP server puts it.
    if let Some(authority) = authority.filter(|a| !a.is_empty())
        && !map.contains_key(http::header::HOST)
        && let Ok(value) = HeaderValue::from_str(authority)
    {
        map.insert(http::header::HOST, value);
    }
    Ok(req)
}

/// Splits a response into what `wasi:http` takes: status code, header list, body.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn response_parts(resp: Response) -> (u16, Vec<(String, Vec<u8>)>, Bytes) {
    let (parts, body) = resp.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    (parts.status.as_u16(), headers, body)
}

#[cfg(target_arch = "wasm32")]
mod wasm;

/// Items the [`export_handler!`] expansion refers to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    use crate::{IntoResponse, Request};
    use std::future::Future;

    #[cfg(target_arch = "wasm32")]
    pub use crate::wasm::{serve, serve_async};
    #[cfg(target_arch = "wasm32")]
    pub use wasi::exports::http::incoming_handler::Guest;
    #[cfg(target_arch = "wasm32")]
    pub use wasi::http::proxy::export;
    #[cfg(target_arch = "wasm32")]
    pub use wasi::http::types::{IncomingRequest, ResponseOutparam};

    /// Compile-time check that `handler` is a synchronous handler.
    pub fn check_sync<F, R>(handler: F) -> F
    where
        F: Fn(Request) -> R,
        R: IntoResponse,
    {
        handler
    }

    /// Compile-time check that `handler` is an asynchronous handler.
    pub fn check_async<F, Fut>(handler: F) -> F
    where
        F: Fn(Request) -> Fut,
        Fut: Future,
        Fut::Output: IntoResponse,
    {
        handler
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_request_maps_method_uri_headers_body() {
        let req = build_request(
            "POST",
            Some("/function/hello/abc?x=1"),
            Some("fn.example:8080"),
            vec![
                ("content-type".into(), b"text/plain".to_vec()),
                ("x-multi".into(), b"a".to_vec()),
                ("x-multi".into(), b"b".to_vec()),
            ],
            b"payload".to_vec(),
        )
        .expect("valid request");
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri().path(), "/function/hello/abc");
        assert_eq!(req.uri().query(), Some("x=1"));
        assert_eq!(req.headers()["content-type"], "text/plain");
        assert_eq!(req.headers()["host"], "fn.example:8080");
        let multi: Vec<_> = req.headers().get_all("x-multi").iter().collect();
        assert_eq!(multi, ["a", "b"]);
        assert_eq!(req.body().as_ref(), b"payload");
    }

    #[test]
    fn build_request_defaults_and_extension_methods() {
        let req = build_request("PROPFIND", None, None, vec![], vec![]).expect("valid request");
        assert_eq!(req.method().as_str(), "PROPFIND");
        assert_eq!(req.uri(), "/");
        assert!(req.headers().get("host").is_none());
        let req = build_request("GET", Some(""), Some(""), vec![], vec![]).expect("valid request");
        assert_eq!(req.uri(), "/");
        assert!(req.headers().get("host").is_none());
        // A `host` header the host did pass is kept as it is.
        let req = build_request(
            "GET",
            Some("/"),
            Some("authority.example"),
            vec![("host".into(), b"header.example".to_vec())],
            vec![],
        )
        .expect("valid request");
        assert_eq!(req.headers()["host"], "header.example");
    }

    #[test]
    fn build_request_skips_bad_headers_and_rejects_bad_targets() {
        let req = build_request(
            "GET",
            Some("/"),
            Some("bad authority\n"),
            vec![
                ("bad name".into(), b"x".to_vec()),
                ("ok".into(), b"y".to_vec()),
            ],
            vec![],
        )
        .expect("valid request");
        assert_eq!(req.headers().len(), 1);
        assert!(build_request("GET", Some("/a b"), None, vec![], vec![]).is_err());
        assert!(build_request("BAD METHOD", Some("/"), None, vec![], vec![]).is_err());
    }

    #[test]
    fn response_parts_keeps_status_headers_body() {
        let resp = http::Response::builder()
            .status(StatusCode::ACCEPTED)
            .header("x-a", "1")
            .header("x-a", "2")
            .body(Bytes::from_static(b"done"))
            .expect("valid response");
        let (status, headers, body) = response_parts(resp);
        assert_eq!(status, 202);
        assert_eq!(
            headers,
            vec![
                ("x-a".to_owned(), b"1".to_vec()),
                ("x-a".to_owned(), b"2".to_vec())
            ]
        );
        assert_eq!(body.as_ref(), b"done");
    }

    #[test]
    fn body_chunks_respect_stream_limit() {
        let body = vec![7u8; WRITE_CHUNK * 2 + 5];
        let sizes: Vec<_> = body.chunks(WRITE_CHUNK).map(<[u8]>::len).collect();
        assert_eq!(sizes, [WRITE_CHUNK, WRITE_CHUNK, 5]);
    }

    fn sync_handler(req: Request) -> Response {
        Response::new(format!("Hello from faas: {} {}", req.method(), req.uri().path()).into())
    }

    async fn async_handler(req: Request) -> impl IntoResponse {
        (StatusCode::CREATED, format!("{}", req.body().len()))
    }

    export_handler!(sync_handler);

    mod async_export {
        use super::async_handler;
        crate::export_handler!(async async_handler);
    }

    #[test]
    fn macro_accepts_sync_and_async_handlers() {
        let req = http::Request::builder()
            .uri("/x")
            .body(Bytes::new())
            .expect("valid request");
        assert_eq!(
            testing::call(sync_handler, req).body().as_ref(),
            b"Hello from faas: GET /x"
        );
        let req = Request::new(Bytes::from_static(b"abc"));
        let resp = testing::call_async(async_handler, req);
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.body().as_ref(), b"3");
    }
}
