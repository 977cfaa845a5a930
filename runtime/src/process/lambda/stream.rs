//! Response streaming (`Lambda-Runtime-Function-Response-Mode: streaming`): the handler's
//! chunked `POST .../response` is passed to the caller as it arrives, so the first byte leaves
//! before the handler has finished. An error after the first chunk (the trailers
//! `Lambda-Runtime-Function-Error-Type` / `-Body`, or the same two lines in the body, which is
//! how `lambda_runtime` sends them) ends the caller's stream with an error: its HTTP response
//! is cut off, as Lambda cuts a function URL's. A body in the HTTP integration format (a JSON
//! prelude with the status and headers, eight NUL bytes, then the body) becomes the HTTP
//! response it describes.

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::events::Shape;
use crate::{BoxError, InvokeError, ResponseBody};

/// The header of a streamed response.
pub const MODE_HEADER: &str = "lambda-runtime-function-response-mode";
/// The content type of a streamed body that starts with an HTTP prelude.
pub const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
const ERROR_TYPE: &str = "lambda-runtime-function-error-type";
const ERROR_BODY: &str = "lambda-runtime-function-error-body";
/// The most a prelude may take before its delimiter.
const MAX_PRELUDE: usize = 64 * 1024;
const DELIMITER: &[u8] = &[0; 8];

type Chunk = Result<Frame<Bytes>, BoxError>;

/// A body fed from a channel: what the handler streams, as it streams it.
pub struct ChannelBody {
    chunks: mpsc::Receiver<Chunk>,
}

impl ChannelBody {
    /// A body and the sender that feeds it.
    pub fn new() -> (mpsc::Sender<Chunk>, ChannelBody) {
        let (tx, chunks) = mpsc::channel(16);
        (tx, ChannelBody { chunks })
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.chunks.poll_recv(cx)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Why the handler's stream broke, from its error trailers (or their in-body form).
pub fn stream_error(kind: &str, encoded_body: &str) -> BoxError {
    let body = base64::engine::general_purpose::STANDARD
        .decode(encoded_body.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| encoded_body.trim().to_owned());
    format!("the handler's stream failed after it started: {kind}: {body}").into()
}

/// The error `lambda_runtime` writes into the body in place of trailers, if `data` is it.
fn in_body_error(data: &[u8]) -> Option<BoxError> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.strip_suffix("\r\n")?.split("\r\n");
    let kind = lines
        .next()?
        .strip_prefix("Lambda-Runtime-Function-Error-Type: ")?;
    let body = lines
        .next()?
        .strip_prefix("Lambda-Runtime-Function-Error-Body: ")?;
    lines.next().is_none().then(|| stream_error(kind, body))
}

/// Passes the handler's streamed body to `tx` until it ends, breaks or the caller leaves.
pub async fn pump(mut incoming: Incoming, tx: mpsc::Sender<Chunk>) {
    while let Some(frame) = incoming.frame().await {
        let chunk = match frame {
            Err(e) => Err(BoxError::from(format!("the handler's stream broke: {e}"))),
            Ok(frame) => match frame.into_data() {
                Ok(data) => match in_body_error(&data) {
                    Some(error) => Err(error),
                    None => Ok(Frame::data(data)),
                },
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => match trailers.get(ERROR_TYPE).and_then(|v| v.to_str().ok()) {
                        Some(kind) => Err(stream_error(
                            kind,
                            trailers
                                .get(ERROR_BODY)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default(),
                        )),
                        None => continue,
                    },
                    Err(_) => continue,
                },
            },
        };
        let failed = chunk.is_err();
        if tx.send(chunk).await.is_err() || failed {
            return;
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Prelude {
    #[serde(default = "ok")]
    status_code: u16,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    cookies: Vec<String>,
}

fn ok() -> u16 {
    200
}

/// The response for a streamed result to an invocation of `shape`: an HTTP prelude, when
/// the body has one, gives an HTTP invocation its status and headers (and is dropped for
/// the others); any other stream is a 200 of its content type.
pub async fn response(
    shape: Shape,
    content_type: Option<String>,
    mut body: ChannelBody,
) -> Result<http::Response<ResponseBody>, InvokeError> {
    let mut response = http::Response::new(());
    let mut ahead = Bytes::new();
    if content_type.as_deref() == Some(HTTP_INTEGRATION) {
        let (prelude, rest) = read_prelude(&mut body).await?;
        ahead = rest;
        if shape == Shape::Http {
            *response.status_mut() =
                http::StatusCode::from_u16(prelude.status_code).map_err(|_| {
                    InvokeError::BadResponse(format!(
                        "statusCode {} is not an HTTP status",
                        prelude.status_code
                    ))
                })?;
            let headers = response.headers_mut();
            for (name, value) in &prelude.headers {
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::from_bytes(name.as_bytes()),
                    http::HeaderValue::from_str(value),
                ) {
                    headers.insert(name, value);
                }
            }
            for cookie in &prelude.cookies {
                if let Ok(value) = http::HeaderValue::from_str(cookie) {
                    headers.append(http::header::SET_COOKIE, value);
                }
            }
        }
    } else if let Some(value) = content_type.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    Ok(response.map(|()| faas_invoke::prepend(ahead, body.boxed_unsync())))
}

/// Reads the prelude: its JSON and what followed its delimiter in the same chunks.
async fn read_prelude(body: &mut ChannelBody) -> Result<(Prelude, Bytes), InvokeError> {
    let mut seen = BytesMut::new();
    loop {
        if let Some(at) = seen.windows(DELIMITER.len()).position(|w| w == DELIMITER) {
            let prelude: Prelude = serde_json::from_slice(&seen[..at]).map_err(|e| {
                InvokeError::BadResponse(format!("the stream's HTTP prelude is not JSON: {e}"))
            })?;
            return Ok((prelude, seen.split_off(at + DELIMITER.len()).freeze()));
        }
        if seen.len() > MAX_PRELUDE {
            return Err(InvokeError::BadResponse(format!(
                "the stream's HTTP prelude is longer than {MAX_PRELUDE} bytes"
            )));
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    seen.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => return Err(InvokeError::BadResponse(e.to_string())),
            None => {
                return Err(InvokeError::BadResponse(
                    "the stream ended before its HTTP prelude did".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(body: ResponseBody) -> Result<Bytes, BoxError> {
        body.collect().await.map(|c| c.to_bytes())
    }

    #[tokio::test]
    async fn a_prelude_makes_the_http_response_and_the_rest_streams() {
        let (tx, body) = ChannelBody::new();
        let prelude =
            r#"{"statusCode":201,"headers":{"content-type":"text/plain"},"cookies":["a=1"]}"#;
        tx.send(Ok(Frame::data(Bytes::from(format!("{prelude}\0\0\0")))))
            .await
            .expect("sent");
        tx.send(Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\0first "))))
            .await
            .expect("sent");
        tx.send(Ok(Frame::data(Bytes::from_static(b"second"))))
            .await
            .expect("sent");
        drop(tx);
        let response = response(Shape::Http, Some(HTTP_INTEGRATION.into()), body)
            .await
            .expect("a response");
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["content-type"], "text/plain");
        assert_eq!(response.headers()["set-cookie"], "a=1");
        let body = collect(response.into_body()).await.expect("whole");
        assert_eq!(body, "first second");
    }

    #[tokio::test]
    async fn a_broken_stream_ends_the_callers_body_with_an_error() {
        let (tx, body) = ChannelBody::new();
        tx.send(Ok(Frame::data(Bytes::from_static(b"part"))))
            .await
            .expect("sent");
        tx.send(Err(stream_error("Runtime.StreamError", "Ym9vbQ==")))
            .await
            .expect("sent");
        let response = response(Shape::Passthrough, Some("text/plain".into()), body)
            .await
            .expect("a response");
        let error = collect(response.into_body()).await.expect_err("cut off");
        assert!(
            error.to_string().contains("Runtime.StreamError: boom"),
            "{error}"
        );
    }

    #[test]
    fn lambda_runtimes_in_body_error_is_recognised_and_nothing_else() {
        let error = in_body_error(
            b"Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n\
              Lambda-Runtime-Function-Error-Body: Ym9vbQ==\r\n",
        )
        .expect("an error");
        assert!(error.to_string().ends_with("Runtime.StreamError: boom"));
        for data in [
            &b"chunk 1\n"[..],
            b"Lambda-Runtime-Function-Error-Type: x\r\n",
            b"Lambda-Runtime-Function-Error-Type: x\r\nLambda-Runtime-Function-Error-Body: y\r\nmore\r\n",
        ] {
            assert!(in_body_error(data).is_none(), "{data:?}");
        }
    }

    #[tokio::test]
    async fn a_prelude_that_never_ends_is_refused() {
        let (tx, body) = ChannelBody::new();
        tokio::spawn(async move {
            while tx
                .send(Ok(Frame::data(Bytes::from(vec![b'x'; 8192]))))
                .await
                .is_ok()
            {}
        });
        let error = response(Shape::Http, Some(HTTP_INTEGRATION.into()), body)
            .await
            .expect_err("refused");
        assert!(error.to_string().contains("longer than"), "{error}");
    }
}
