//! Small response builders: every error the platform produces is JSON with a stable `reason`.

use bytes::Bytes;
use faas_runtime::{ResponseBody, full_body};
use http::{Response, StatusCode};
use serde::Serialize;

/// `{"error": message, "reason": reason, "status": code}` with the given status.
pub fn json_error(status: StatusCode, reason: &str, message: &str) -> Response<ResponseBody> {
    let body = serde_json::json!({ "error": message, "reason": reason, "status": status.as_u16() });
    json_response(status, &body)
}

/// A JSON body with the given status.
pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<ResponseBody> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    with_type(status, "application/json", Bytes::from(bytes))
}

/// A body with a content type.
pub fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ResponseBody> {
    let mut response = Response::new(full_body(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
