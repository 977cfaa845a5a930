//! Small response builders: every error the platform produces is JSON with a stable `reason`.
//!
//! Outside local mode a caller of a function sees the reason and, for reasons that are about
//! the caller's own request ([`CALLER_REASONS`]), the message; for every other one (a trap
//! and its wasm backtrace, a pod's address, a Service's name, why the controller has not
//! placed the function yet) a generic message, while the detail goes to the log with the call
//! id ([`withhold_detail`]). In local mode the caller is the developer, so nothing is withheld.

use bytes::Bytes;
use faas_runtime::{ResponseBody, full_body};
use http::{Response, StatusCode};
use serde::Serialize;

/// `{"error": message, "reason": reason, "status": code}` with the given status.
pub fn json_error(status: StatusCode, reason: &str, message: &str) -> Response<ResponseBody> {
    let body = faas_api::contract::error_body(status.as_u16(), reason, message);
    let mut response = json_response(status, &body);
    response.extensions_mut().insert(PlatformError {
        reason: reason.to_owned(),
        message: message.to_owned(),
    });
    response
}

/// Marks a response the platform produced itself (not the function), with its detail.
#[derive(Clone, Debug)]
pub struct PlatformError {
    pub reason: String,
    pub message: String,
}

/// Reasons whose message is about the caller's own request and names nothing internal: kept
/// as they are for every caller. Every other reason (new ones included) gets a generic text.
pub const CALLER_REASONS: &[&str] = &[
    "NotFound",
    "FunctionNotFound",
    "BodyTooLarge",
    "BodyReadTimeout",
    "BadRequestBody",
    "BadPath",
    "TooManyRequests",
    "Timeout",
    "MethodNotAllowed",
    "BadCallbackUrl",
    "NoReadyReplica",
];

/// What a caller reads instead of the detail of an error it did not cause.
fn generic_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        500 => "the function failed while handling the request",
        502 => "the function's answer could not be used",
        503 => "the function cannot take requests right now; retry shortly",
        504 => "the function did not answer in time",
        _ => "the request could not be served",
    }
}

/// `response` with the detail of a platform error replaced by a generic message (the
/// `reason` and status stay), unless its reason is one of [`CALLER_REASONS`]. The detail is
/// logged with `call_id`, so an operator finds it from the `X-Call-Id` the caller got.
pub fn withhold_detail(response: Response<ResponseBody>, call_id: &str) -> Response<ResponseBody> {
    let Some(error) = response.extensions().get::<PlatformError>() else {
        return response;
    };
    if CALLER_REASONS.contains(&error.reason.as_str()) {
        return response;
    }
    let status = response.status();
    tracing::info!(%call_id, reason = %error.reason, detail = %error.message, status = status.as_u16(), "error detail withheld from the caller");
    let body = serde_json::json!({
        "error": generic_message(status),
        "reason": error.reason,
        "status": status.as_u16(),
    });
    let (parts, _) = response.into_parts();
    let mut fresh = json_response(status, &body);
    // Keep the headers the platform set (Retry-After...), not the old body's framing.
    for (name, value) in &parts.headers {
        if name != http::header::CONTENT_LENGTH {
            fresh.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fresh
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(response: Response<ResponseBody>) -> serde_json::Value {
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn internal_detail_is_withheld_and_caller_errors_are_kept() {
        let trap = json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Trapped",
            "function a: function trapped: error while executing at wasm backtrace:\n    0: 0x1c3 - hostile!panic",
        );
        let shown = body_of(withhold_detail(trap, "c-1")).await;
        assert_eq!(shown["reason"], "Trapped");
        assert_eq!(shown["status"], 500);
        let text = shown.to_string();
        assert!(!text.contains("wasm") && !text.contains("0x1c3"), "{text}");

        let mut forward = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "function a: cannot connect to 10.1.2.3:8080 (shop/fn-a): refused",
        );
        forward.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("5"),
        );
        let response = withhold_detail(forward, "c-2");
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "5");
        let text = body_of(response).await.to_string();
        assert!(
            !text.contains("10.1.2.3") && !text.contains("fn-a"),
            "{text}"
        );

        let too_big = json_error(StatusCode::PAYLOAD_TOO_LARGE, "BodyTooLarge", "over 6 MiB");
        assert_eq!(
            body_of(withhold_detail(too_big, "c-3")).await["error"],
            "over 6 MiB"
        );
    }
}
