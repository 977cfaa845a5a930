//! Lambda's answers: a service error in Lambda's REST-JSON error shape (`x-amzn-ErrorType`
//! and a body with `message`, which boto3 and the JavaScript SDK turn into their typed
//! exceptions), and the call's outcome as `Invoke` returns it: 200 with the result, or 200
//! with `X-Amz-Function-Error: Unhandled` and the error JSON when the function failed
//! (whatever failed: the handler, its deadline, its process, its HTTP answer).

use base64::Engine as _;
use bytes::Bytes;
use faas_runtime::{ResponseBody, full_body};
use http::response::Parts;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{Value, json};

use super::MAX_PAYLOAD;

/// Lambda's limit on `X-Amz-Client-Context`, decoded.
const MAX_CLIENT_CONTEXT: usize = 3583;

/// An error of the Invoke API itself (not of the function).
#[derive(Debug)]
pub struct LambdaError {
    status: StatusCode,
    code: &'static str,
    message: String,
    reason: Option<&'static str>,
}

impl LambdaError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        LambdaError {
            status,
            code,
            message: message.into(),
            reason: None,
        }
    }

    pub fn not_found(message: String) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            message,
        )
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            message,
        )
    }

    pub fn too_large(size: usize, limit: usize) -> Self {
        let size = if size > limit {
            format!("more than {limit}")
        } else {
            size.to_string()
        };
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            format!(
                "Request must be smaller than {limit} bytes for the InvokeFunction operation \
                 (it has {size})"
            ),
        )
    }

    /// The response, as Lambda's REST-JSON errors are.
    pub fn response(self, call_id: &str) -> Response<ResponseBody> {
        let kind = if self.status.is_server_error() {
            "Service"
        } else {
            "User"
        };
        let mut body = json!({"Type": kind, "message": self.message});
        if let Some(reason) = self.reason {
            body["Reason"] = Value::from(reason);
        }
        let mut response = Response::new(full_body(body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        request_id(headers, call_id);
        response
    }
}

/// A refusal of the platform (its status) as the Lambda error an SDK expects for it.
pub fn service_error(status: StatusCode, message: &str) -> LambdaError {
    match status {
        StatusCode::TOO_MANY_REQUESTS => LambdaError {
            reason: Some("ReservedFunctionConcurrentInvocationLimitExceeded"),
            ..LambdaError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                format!("Rate Exceeded: {message}"),
            )
        },
        StatusCode::PAYLOAD_TOO_LARGE => LambdaError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            message,
        ),
        StatusCode::NOT_FOUND => LambdaError::not_found(message.to_owned()),
        // A `mode: job` function: it runs, it is not invoked.
        StatusCode::CONFLICT => {
            LambdaError::new(StatusCode::CONFLICT, "ResourceConflictException", message)
        }
        _ => LambdaError::new(
            StatusCode::BAD_GATEWAY,
            "ResourceNotReadyException",
            message,
        ),
    }
}

/// The caller's `X-Amz-Client-Context` when it is what Lambda takes: base64 of a JSON object
/// of at most 3583 bytes.
pub fn client_context(headers: &HeaderMap) -> Result<Option<String>, LambdaError> {
    let Some(value) = headers.get("x-amz-client-context") else {
        return Ok(None);
    };
    let refuse = || {
        LambdaError::invalid_parameter(format!(
            "X-Amz-Client-Context must be base64 of a JSON object of at most \
             {MAX_CLIENT_CONTEXT} bytes"
        ))
    };
    let text = value.to_str().map_err(|_| refuse())?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| refuse())?;
    let json: Value = serde_json::from_slice(&decoded).map_err(|_| refuse())?;
    if decoded.len() > MAX_CLIENT_CONTEXT || !json.is_object() {
        return Err(refuse());
    }
    Ok(Some(text.trim().to_owned()))
}

/// An answer without a body (202 for `Event`, 204 for `DryRun`).
pub fn empty(status: StatusCode, call_id: &str) -> Response<ResponseBody> {
    let mut response = Response::new(full_body(Bytes::new()));
    *response.status_mut() = status;
    request_id(response.headers_mut(), call_id);
    response
}

/// The Invoke answer for the function's answer (`parts`, and its body unless it was over
/// [`MAX_PAYLOAD`]), with the log tail when asked for.
pub fn of_call(
    parts: Parts,
    body: Result<Bytes, ()>,
    log: Option<String>,
    call_id: &str,
) -> Result<Response<ResponseBody>, LambdaError> {
    let platform_error = |body: &Bytes| -> Option<(String, String)> {
        let value: Value = serde_json::from_slice(body).ok()?;
        Some((
            value["reason"].as_str()?.to_owned(),
            value["error"].as_str().unwrap_or_default().to_owned(),
        ))
    };
    let status = parts.status;
    let (result, failed) = match body {
        Err(()) => (
            function_error(
                "Function.ResponseSizeTooLarge",
                &format!(
                    "Response payload size exceeded maximum allowed payload size \
                     ({MAX_PAYLOAD} bytes)."
                ),
            ),
            true,
        ),
        // A Lambda handler's own error: its JSON, as it reported it.
        Ok(body) if parts.headers.contains_key("x-amz-function-error") => (body, true),
        Ok(body) if status.is_success() => (body, false),
        Ok(body) => {
            // What the platform said, when it made the answer (its errors carry a reason).
            let said = platform_error(&body);
            // Refusals of the platform before the function ran: Lambda's service errors.
            let refused = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::PAYLOAD_TOO_LARGE
                    | StatusCode::SERVICE_UNAVAILABLE
            ) || (status == StatusCode::NOT_FOUND
                && said.as_ref().is_some_and(|(r, _)| r == "FunctionNotFound"))
                || (status == StatusCode::CONFLICT
                    && said.as_ref().is_some_and(|(r, _)| r == "JobNotCallable"));
            if refused {
                let message = said
                    .map(|(_, m)| m)
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                return Err(service_error(status, &message));
            }
            // The function failed while it ran (deadline, trap, process) or answered an
            // error.
            let (kind, message) = match said {
                Some((reason, message)) if reason == "Timeout" => {
                    ("Sandbox.Timedout".to_owned(), message)
                }
                Some((reason, message)) => (format!("Runtime.{reason}"), message),
                None => (
                    "Function.HttpError".to_owned(),
                    format!(
                        "the function answered {status}: {}",
                        excerpt(&String::from_utf8_lossy(&body))
                    ),
                ),
            };
            (function_error(&kind, &message), true)
        }
    };
    let mut response = Response::new(full_body(result));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-amz-executed-version",
        HeaderValue::from_static(super::name::LATEST),
    );
    if failed {
        headers.insert(
            "x-amz-function-error",
            HeaderValue::from_static("Unhandled"),
        );
    }
    if let Some(log) = log
        && let Ok(value) = HeaderValue::from_str(&faas_api::contract::encode_log_tail(&log))
    {
        headers.insert("x-amz-log-result", value);
    }
    request_id(headers, call_id);
    Ok(response)
}

/// The error JSON Lambda gives for a failed invocation.
fn function_error(kind: &str, message: &str) -> Bytes {
    Bytes::from(json!({"errorType": kind, "errorMessage": message}).to_string())
}

/// At most 1 KiB of `text`, cut on a character boundary.
fn excerpt(text: &str) -> &str {
    &text[..text.floor_char_boundary(1024)]
}

fn request_id(headers: &mut HeaderMap, call_id: &str) {
    if let Ok(value) = HeaderValue::from_str(call_id) {
        headers.insert("x-amzn-requestid", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn parts(status: StatusCode, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("a response").into_parts().0
    }

    async fn body_of(response: Response<ResponseBody>) -> Value {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("JSON")
    }

    fn platform(reason: &str, message: &str) -> Result<Bytes, ()> {
        Ok(Bytes::from(
            json!({"error": message, "reason": reason, "status": 0}).to_string(),
        ))
    }

    #[tokio::test]
    async fn refusals_before_the_function_ran_are_lambdas_service_errors() {
        for (status, reason, code, lambda_status) in [
            (
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "TooManyRequestsException",
                429,
            ),
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "BodyTooLarge",
                "RequestTooLargeException",
                413,
            ),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "FunctionNotReady",
                "ResourceNotReadyException",
                502,
            ),
            (
                StatusCode::NOT_FOUND,
                "FunctionNotFound",
                "ResourceNotFoundException",
                404,
            ),
            (
                StatusCode::CONFLICT,
                "JobNotCallable",
                "ResourceConflictException",
                409,
            ),
        ] {
            let error =
                of_call(parts(status, &[]), platform(reason, "why"), None, "c1").expect_err(reason);
            let response = error.response("c1");
            assert_eq!(response.status().as_u16(), lambda_status, "{reason}");
            assert_eq!(response.headers()["x-amzn-errortype"], code);
            assert_eq!(response.headers()["x-amzn-requestid"], "c1");
            let body = body_of(response).await;
            assert!(
                body["message"].as_str().is_some_and(|m| m.contains("why")),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn a_function_that_failed_is_a_200_with_its_error() {
        // A function's own 404 is its answer, not a missing function.
        for (status, body, kind) in [
            (
                StatusCode::NOT_FOUND,
                Ok(Bytes::from("no route")),
                "Function.HttpError",
            ),
            (
                StatusCode::GATEWAY_TIMEOUT,
                platform("Timeout", "too slow"),
                "Sandbox.Timedout",
            ),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                platform("Trap", "boom"),
                "Runtime.Trap",
            ),
            (StatusCode::OK, Err(()), "Function.ResponseSizeTooLarge"),
        ] {
            let response =
                of_call(parts(status, &[]), body, Some("a line".into()), "c1").expect("an answer");
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["x-amz-function-error"], "Unhandled");
            assert_eq!(response.headers()["x-amz-log-result"], "YSBsaW5l");
            assert_eq!(body_of(response).await["errorType"], kind);
        }
        // A handler's own error JSON is passed as it is.
        let handler = Ok(Bytes::from(
            r#"{"errorType":"ValueError","errorMessage":"x"}"#,
        ));
        let response = of_call(
            parts(
                StatusCode::BAD_GATEWAY,
                &[("x-amz-function-error", "ValueError")],
            ),
            handler,
            None,
            "c1",
        )
        .expect("an answer");
        assert_eq!(response.headers()["x-amz-function-error"], "Unhandled");
        assert_eq!(body_of(response).await["errorType"], "ValueError");
    }

    #[test]
    fn a_client_context_is_base64_of_a_small_json_object() {
        let mut headers = HeaderMap::new();
        assert!(client_context(&headers).expect("none is fine").is_none());
        let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        headers.insert(
            "x-amz-client-context",
            encode(r#"{"custom":{}}"#).parse().expect("a header"),
        );
        assert!(client_context(&headers).expect("valid").is_some());
        for bad in [
            "not base64!".to_owned(),
            encode("[1, 2]"),
            encode("{oops"),
            encode(&format!(r#"{{"x":"{}"}}"#, "a".repeat(4000))),
        ] {
            headers.insert("x-amz-client-context", bad.parse().expect("a header"));
            assert!(client_context(&headers).is_err(), "{bad}");
        }
    }
}
