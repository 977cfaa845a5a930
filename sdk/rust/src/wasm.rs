//! The `wasi:http/incoming-handler` glue, compiled on `wasm32` only.
//!
//! [`export_handler!`](crate::export_handler) expands to a `Guest` implementation that calls
//! [`serve`] or [`serve_async`].

use crate::{
    IntoResponse, Request, Response, StatusCode, WRITE_CHUNK, block_on, build_request,
    response_parts,
};
use std::future::Future;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
    ResponseOutparam,
};
use wasi::io::streams::StreamError;

/// How many bytes one `blocking-read` of the request body asks for.
const READ_CHUNK: u64 = 64 * 1024;

/// Serves one request with a synchronous handler.
pub fn serve<F, R>(request: IncomingRequest, response_out: ResponseOutparam, handler: F)
where
    F: Fn(Request) -> R,
    R: IntoResponse,
{
    let response = match read_request(request) {
        Ok(req) => handler(req).into_response(),
        Err(msg) => (StatusCode::BAD_REQUEST, msg).into_response(),
    };
    write_response(response_out, response);
}

/// Serves one request with an asynchronous handler, driven by [`block_on`].
pub fn serve_async<F, Fut>(request: IncomingRequest, response_out: ResponseOutparam, handler: F)
where
    F: Fn(Request) -> Fut,
    Fut: Future,
    Fut::Output: IntoResponse,
{
    let response = match read_request(request) {
        Ok(req) => block_on(handler(req)).into_response(),
        Err(msg) => (StatusCode::BAD_REQUEST, msg).into_response(),
    };
    write_response(response_out, response);
}

fn method_name(method: Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other,
    }
}

/// Reads method, path and query, headers and the whole body of the incoming request.
fn read_request(request: IncomingRequest) -> Result<Request, String> {
    let method = method_name(request.method());
    let path_with_query = request.path_with_query();
    // The host the request was for: wasi:http hands it over as the authority, not as a
    // `host` header.
    let authority = request.authority();
    // `headers()` returns a child resource; it is dropped at the end of this statement,
    // before the request itself.
    let headers = request.headers().entries();
    let body = read_body(&request)?;
    build_request(
        &method,
        path_with_query.as_deref(),
        authority.as_deref(),
        headers,
        body,
    )
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request
        .consume()
        .map_err(|()| "the request body was already consumed".to_owned())?;
    let stream = body
        .stream()
        .map_err(|()| "the request body stream is unavailable".to_owned())?;
    let mut buf = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => buf.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(err)) => {
                let detail = match wasi::http::types::http_error_code(&err) {
                    Some(code) => format!("{code:?}"),
                    None => err.to_debug_string(),
                };
                return Err(format!("reading the request body failed: {detail}"));
            }
        }
    }
    // The stream is a child of the body: it must go before the body is finished.
    drop(stream);
    drop(IncomingBody::finish(body));
    Ok(buf)
}

/// Sends status, headers and body; the body goes out in chunks of at most [`WRITE_CHUNK`]
/// bytes, one `blocking-write-and-flush` each.
fn write_response(response_out: ResponseOutparam, response: Response) {
    let (status, headers, body) = response_parts(response);
    let fields = Fields::new();
    for (name, value) in &headers {
        // The host refuses hop-by-hop and other forbidden headers (`connection`,
        // `transfer-encoding`, ...); drop those rather than the whole response.
        if let Err(err) = fields.append(name, value) {
            eprintln!("faas-sdk: response header {name:?} dropped: {err}");
        }
    }
    let outgoing = OutgoingResponse::new(fields);
    if outgoing.set_status_code(status).is_err() {
        eprintln!("faas-sdk: invalid status code {status}, answering 500");
        // 500 is always valid.
        let _ = outgoing.set_status_code(500);
    }
    let outgoing_body = match outgoing.body() {
        Ok(body) => body,
        Err(()) => {
            ResponseOutparam::set(
                response_out,
                Err(ErrorCode::InternalError(Some(
                    "faas-sdk: response body unavailable".into(),
                ))),
            );
            return;
        }
    };
    ResponseOutparam::set(response_out, Ok(outgoing));

    let Ok(stream) = outgoing_body.write() else {
        eprintln!("faas-sdk: response body stream unavailable");
        return;
    };
    for chunk in body.chunks(WRITE_CHUNK) {
        if let Err(err) = stream.blocking_write_and_flush(chunk) {
            // Most likely the client went away. Dropping the body without `finish`
            // tells the host the response is incomplete.
            eprintln!("faas-sdk: writing the response body failed: {err:?}");
            return;
        }
    }
    drop(stream);
    if let Err(err) = OutgoingBody::finish(outgoing_body, None) {
        eprintln!("faas-sdk: finishing the response body failed: {err:?}");
    }
}
