//! `POST /async-function/{name}[/...]`: check, queue, answer 202 with the call id.

use std::sync::Arc;

use faas_api::contract;
use faas_runtime::ResponseBody;
use faas_runtime::process::http::strip_hop_by_hop;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::MAX_ASYNC_BODY;
use super::queue::AsyncCall;
use crate::platform::Platform;
use crate::reply::{json_error, with_type};
use crate::routes::function_path;

/// Headers never stored in the queue besides the hop-by-hop ones: credentials (the
/// well-known ones: a durable queue and its dead letters are no place for them), the
/// platform's own (it sets them when it invokes the call), and the framing of this request.
const NOT_STORED: &[&str] = &[
    "authorization",
    "cookie",
    "x-api-key",
    "x-auth-token",
    "x-amz-security-token",
    "x-csrf-token",
    "x-call-id",
    contract::ASYNC_HEADER,
    contract::ATTEMPT_HEADER,
    "host",
    "content-length",
    "x-callback-url",
];

/// The end-to-end headers of a request, as stored with its call.
fn stored_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    let mut kept = headers.clone();
    strip_hop_by_hop(&mut kept);
    for name in NOT_STORED {
        kept.remove(*name);
    }
    kept.iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// The `X-Callback-Url` of a request: absent, or an absolute http(s) URL.
pub fn callback_url(headers: &http::HeaderMap) -> Result<Option<String>, String> {
    let Some(value) = headers.get("x-callback-url") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| "X-Callback-Url is not valid text".to_owned())?;
    let uri: http::Uri = text
        .parse()
        .map_err(|e| format!("X-Callback-Url {text:?} is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(Some(text.to_owned())),
        _ => Err(format!(
            "X-Callback-Url {text:?} must be an absolute http:// or https:// URL"
        )),
    }
}

/// Queues a call of function `name` (mounted at `prefix`); 202 with `callId` once stored.
pub async fn accept(
    platform: &Arc<Platform>,
    name: &str,
    prefix: &str,
    request: Request<Incoming>,
    call_id: &str,
) -> Response<ResponseBody> {
    if platform.async_queue.get().is_none() {
        return not_configured();
    }
    let Some(entry) = platform.registry.get(name) else {
        return json_error(
            StatusCode::NOT_FOUND,
            "FunctionNotFound",
            &format!("function {name} not found"),
        );
    };
    if entry.function.spec.is_job() {
        return crate::invoke::job_not_callable();
    }
    if request.method() != http::Method::POST {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "asynchronous calls are POST requests",
        );
    }
    let callback = match callback_url(request.headers()) {
        Ok(url) => url,
        Err(why) => return json_error(StatusCode::BAD_REQUEST, "BadCallbackUrl", &why),
    };
    let (parts, body) = request.into_parts();
    // The queue message bounds the body, not the function's own limit: read no more than
    // it, declared or chunked.
    let limit = MAX_ASYNC_BODY.min(entry.limits.max_body_bytes);
    let (body, _charge) =
        match crate::invoke::read_body_within(platform, name, &parts.headers, body, limit, || {
            format!(
                "an asynchronous call carries at most {} KiB (it travels as one queue \
                 message; this function takes at most {} bytes); send a reference to the \
                 data instead",
                MAX_ASYNC_BODY / 1024,
                entry.limits.max_body_bytes
            )
        })
        .await
        {
            Ok(read) => read,
            Err(refused) => return *refused,
        };
    let inner = function_path(parts.uri.path(), prefix);
    let path = match parts.uri.query() {
        Some(q) => format!("{inner}?{q}"),
        None => inner,
    };
    let call = AsyncCall {
        call_id: call_id.to_owned(),
        function: name.to_owned(),
        method: "POST".to_owned(),
        path,
        headers: stored_headers(&parts.headers),
        body,
        callback_url: callback,
        accepted_at: jiff::Timestamp::now().to_string(),
    };
    if let Err(refused) = enqueue(platform, &call).await {
        return refused;
    }
    with_type(
        StatusCode::ACCEPTED,
        "application/json",
        serde_json::json!({"callId": call_id, "function": name, "status": "queued"}).to_string(),
    )
}

/// Stores `call` in the platform's queue and counts it accepted; the answer to give when it
/// cannot (no queue here, or the queue refused).
pub async fn enqueue(platform: &Platform, call: &AsyncCall) -> Result<(), Response<ResponseBody>> {
    let Some(queue) = platform.async_queue.get() else {
        return Err(not_configured());
    };
    if let Err(e) = queue.send(call).await {
        tracing::error!(function = %call.function, call_id = %call.call_id, queue = %queue.describe(), error = %e, "cannot queue an async call");
        return Err(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "QueueUnavailable",
            &format!("the call could not be queued: {e}"),
        ));
    }
    platform
        .metrics
        .async_calls
        .with_label_values(&[&call.function, "accepted"])
        .inc();
    Ok(())
}

fn not_configured() -> Response<ResponseBody> {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "AsyncNotConfigured",
        "asynchronous calls are not configured on this gateway (set --async-queue-url / \
         the chart's gateway.async.queueUrl)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_hops_and_the_platforms_own_headers_are_not_stored() {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("authorization", "Bearer secret"),
            ("x-api-key", "secret"),
            ("x-call-id", "forged"),
            ("content-type", "text/plain"),
            ("x-tenant", "acme"),
        ] {
            headers.append(name, value.parse().expect("value"));
        }
        let mut stored = stored_headers(&headers);
        stored.sort();
        assert_eq!(
            stored,
            [
                ("content-type".to_owned(), "text/plain".to_owned()),
                ("x-tenant".to_owned(), "acme".to_owned())
            ]
        );
    }

    #[test]
    fn callback_urls_must_be_absolute_http() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(callback_url(&headers), Ok(None));
        headers.insert(
            "x-callback-url",
            "https://hooks.example.com/a?b=1".parse().expect("value"),
        );
        assert_eq!(
            callback_url(&headers),
            Ok(Some("https://hooks.example.com/a?b=1".to_owned()))
        );
        for bad in ["/relative", "ftp://example.com/", "not a url"] {
            headers.insert("x-callback-url", bad.parse().expect("value"));
            let err = callback_url(&headers).expect_err(bad);
            assert!(err.starts_with("X-Callback-Url"), "{err}");
        }
    }
}
