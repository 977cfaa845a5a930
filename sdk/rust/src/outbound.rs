//! Outbound HTTP from a function: one request, sent through the host's
//! `wasi:http/outgoing-handler`, answered whole.
//!
//! The host decides what may be reached (the function's `spec.network.allowedOutboundHosts`,
//! never the cloud metadata endpoints); a refused request fails with the host's error code
//! (`HttpRequestDenied`), which [`SendError`] carries as text. The call blocks the instance
//! until the answer's body has been read: a function is one request at a time, and the
//! platform's timeout bounds the wait.

use bytes::Bytes;

/// Why an outbound request got no answer: the host's `wasi:http` error code
/// (`HttpRequestDenied`, `DnsError(..)`, `ConnectionRefused`, ...) or what could not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError(pub String);

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SendError {}

/// Sends `request` (an absolute URI: scheme, host, path) and returns the whole answer.
///
/// ```no_run
/// let request = faas_sdk::http::Request::get("https://example.com/data")
///     .body(faas_sdk::Bytes::new())
///     .unwrap();
/// let answer = faas_sdk::send(request)?;
/// assert_eq!(answer.status(), 200);
/// # Ok::<(), faas_sdk::SendError>(())
/// ```
///
/// Only on `wasm32`: elsewhere (a native unit test) it returns an error saying so.
pub fn send(request: http::Request<Bytes>) -> Result<http::Response<Bytes>, SendError> {
    imp::send(request)
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::SendError;
    use bytes::Bytes;

    pub fn send(_request: http::Request<Bytes>) -> Result<http::Response<Bytes>, SendError> {
        Err(SendError(
            "outbound HTTP goes through the host's wasi:http: build for wasm32-wasip2".into(),
        ))
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::SendError;
    use bytes::Bytes;
    use wasi::http::outgoing_handler;
    use wasi::http::types::{
        ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
    };
    use wasi::io::streams::StreamError;

    fn refused(what: &str) -> SendError {
        SendError(format!("the host refused the request's {what}"))
    }

    fn code(code: &ErrorCode) -> SendError {
        SendError(format!("{code:?}"))
    }

    pub fn send(request: http::Request<Bytes>) -> Result<http::Response<Bytes>, SendError> {
        let (parts, body) = request.into_parts();
        let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(parts.headers.len());
        for (name, value) in &parts.headers {
            headers.push((name.as_str().to_owned(), value.as_bytes().to_vec()));
        }
        let fields = Fields::from_list(&headers)
            .map_err(|e| SendError(format!("request headers refused: {e:?}")))?;
        let outgoing = OutgoingRequest::new(fields);
        let method = match parts.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "CONNECT" => Method::Connect,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        };
        outgoing
            .set_method(&method)
            .map_err(|()| refused("method"))?;
        let scheme = match parts.uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            Some(other) => Scheme::Other(other.to_owned()),
            None => return Err(SendError("the URI has no scheme (http or https)".into())),
        };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| refused("scheme"))?;
        let authority = parts
            .uri
            .authority()
            .ok_or_else(|| SendError("the URI has no host".into()))?;
        outgoing
            .set_authority(Some(authority.as_str()))
            .map_err(|()| refused("authority"))?;
        outgoing
            .set_path_with_query(Some(
                parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
            ))
            .map_err(|()| refused("path"))?;

        let outgoing_body = outgoing.body().map_err(|()| refused("body"))?;
        let future = outgoing_handler::handle(outgoing, None).map_err(|c| code(&c))?;
        {
            let stream = outgoing_body.write().map_err(|()| refused("body stream"))?;
            for chunk in body.chunks(crate::WRITE_CHUNK) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| SendError(format!("writing the request body: {e:?}")))?;
            }
        }
        OutgoingBody::finish(outgoing_body, None).map_err(|c| code(&c))?;

        let response = loop {
            match future.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(c))) => return Err(code(&c)),
                Some(Err(())) => return Err(SendError("the answer was already taken".into())),
                None => future.subscribe().block(),
            }
        };
        let mut answer = http::Response::builder().status(response.status());
        for (name, value) in response.headers().entries() {
            answer = answer.header(name, value);
        }
        let incoming = response.consume().map_err(|()| refused("answer's body"))?;
        let stream = incoming
            .stream()
            .map_err(|()| refused("answer's body stream"))?;
        let mut buf = Vec::new();
        let read = loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => buf.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break Ok(()),
                Err(StreamError::LastOperationFailed(err)) => {
                    break Err(match wasi::http::types::http_error_code(&err) {
                        Some(c) => code(&c),
                        None => SendError(err.to_debug_string()),
                    });
                }
            }
        };
        drop(stream);
        drop(IncomingBody::finish(incoming));
        read?;
        answer
            .body(Bytes::from(buf))
            .map_err(|e| SendError(format!("the answer's head: {e}")))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #[test]
    fn natively_a_send_says_it_needs_the_wasm_host() {
        let request = http::Request::get("http://127.0.0.1:1/")
            .body(bytes::Bytes::new())
            .expect("a request");
        let err = super::send(request).expect_err("no host to send through");
        assert!(err.0.contains("wasm32"), "{err}");
    }
}
