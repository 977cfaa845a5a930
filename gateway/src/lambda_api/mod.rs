//! The Lambda Invoke API: `POST /2015-03-31/functions/{FunctionName}/invocations`, so code
//! that calls Lambda (`aws lambda invoke`, boto3, the JavaScript, Java and Rust SDKs) calls
//! a function here by changing only its endpoint URL. Every kind of function answers it: a
//! Lambda handler gets the payload as its event, as is; a WASM or HTTP function gets it as
//! the JSON body of `POST /`, and its answer's body is the result.
//!
//! Served on the local gateway's one listener and on the cluster gateway's admin listener,
//! never on the public one ([`crate::server::Exposure::answers`]): who may invoke is who may
//! reach that listener. SigV4 signatures are accepted, not checked (there is no IAM here to
//! check them against).
//!
//! The answers are Lambda's, so SDKs raise their typed exceptions ([`answer`]).

mod answer;
pub mod name;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_api::contract;
use faas_runtime::target::FunctionTarget;
use faas_runtime::{CallContext, LogTailSink, ResponseBody};
use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::async_call::AsyncCall;
use crate::platform::Platform;
use answer::{LambdaError, service_error};

/// Lambda's limit on a synchronous payload, request or response: 6 MB.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// How long a log tail is waited for once the answer is in.
const TAIL_WAIT: Duration = Duration::from_millis(500);

/// The path prefix of the API (also a reserved path: no function may mount it).
pub const PREFIX: &str = "/2015-03-31/functions/";

/// The `FunctionName` segment of `path`, if `path` is an Invoke request's.
pub fn function_segment(path: &str) -> Option<&str> {
    path.strip_prefix(PREFIX)?
        .strip_suffix("/invocations")
        .filter(|name| !name.contains('/'))
}

/// How the caller wants it invoked (`X-Amz-Invocation-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    fn of(headers: &HeaderMap) -> Result<Self, LambdaError> {
        match headers
            .get("x-amz-invocation-type")
            .map(|v| v.to_str().unwrap_or("?"))
        {
            None | Some("RequestResponse") => Ok(InvocationType::RequestResponse),
            Some("Event") => Ok(InvocationType::Event),
            Some("DryRun") => Ok(InvocationType::DryRun),
            Some(other) => Err(LambdaError::invalid_parameter(format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to \
                 satisfy constraint: Member must satisfy enum value set: [Event, \
                 RequestResponse, DryRun]"
            ))),
        }
    }
}

/// Serves one Invoke request for the `FunctionName` segment `raw_name`.
pub async fn handle(
    platform: &Arc<Platform>,
    raw_name: &str,
    request: Request<Incoming>,
    call_id: &str,
    local_port: u16,
) -> Response<ResponseBody> {
    match invoke(platform, raw_name, request, call_id, local_port).await {
        Ok(response) => response,
        Err(error) => error.response(call_id),
    }
}

async fn invoke(
    platform: &Arc<Platform>,
    raw_name: &str,
    request: Request<Incoming>,
    call_id: &str,
    local_port: u16,
) -> Result<Response<ResponseBody>, LambdaError> {
    if request.method() != http::Method::POST {
        return Err(LambdaError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowedException",
            "the Invoke API takes POST requests",
        ));
    }
    let query = crate::runs_api::Query::parse(request.uri().query());
    let named = name::parse(&crate::runs_api::decoded(raw_name), query.get("Qualifier"))
        .map_err(|e| LambdaError::invalid_parameter(e.to_string()))?;
    let key = platform
        .registry
        .routes()
        .key_of(&named.function)
        .to_owned();
    let not_found = || {
        let region = faas_api::lambda_env::process_region();
        LambdaError::not_found(format!(
            "Function not found: {}",
            name::arn(&region, &named)
        ))
    };
    let entry = platform.registry.get(&key).ok_or_else(not_found)?;
    if named
        .qualifier
        .as_deref()
        .is_some_and(|q| q != name::LATEST)
    {
        return Err(not_found());
    }
    let kind = InvocationType::of(request.headers())?;
    let tail = match request.headers().get("x-amz-log-type").map(|v| v.to_str()) {
        None | Some(Ok("None")) => false,
        Some(Ok("Tail")) => true,
        Some(_) => {
            return Err(LambdaError::invalid_parameter(
                "X-Amz-Log-Type must be None or Tail",
            ));
        }
    };
    let client_context = answer::client_context(request.headers())?;
    let (parts, body) = request.into_parts();
    let (payload, _charge) = read_payload(platform, &key, &parts.headers, body).await?;
    if kind == InvocationType::DryRun {
        return Ok(answer::empty(StatusCode::NO_CONTENT, call_id));
    }
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (
            contract::TRIGGER_HEADER.to_owned(),
            contract::TRIGGER_INVOKE.to_owned(),
        ),
    ];
    if let Some(context) = client_context {
        headers.push(("x-amz-client-context".to_owned(), context));
    }
    if kind == InvocationType::Event {
        let limit = usize::try_from(crate::async_call::MAX_ASYNC_BODY).unwrap_or(usize::MAX);
        if payload.len() > limit {
            return Err(LambdaError::too_large(payload.len(), limit));
        }
        let call = AsyncCall {
            call_id: call_id.to_owned(),
            function: key,
            method: "POST".to_owned(),
            path: "/".to_owned(),
            headers,
            body: payload,
            callback_url: None,
            accepted_at: jiff::Timestamp::now().to_string(),
        };
        crate::async_call::enqueue(platform, &call)
            .await
            .map_err(|refused| service_error(refused.status(), "the call could not be queued"))?;
        return Ok(answer::empty(StatusCode::ACCEPTED, call_id));
    }
    let mut call = Request::post("/");
    for (name, value) in &headers {
        call = call.header(name, value);
    }
    let call = call
        .body(payload)
        .map_err(|e| LambdaError::invalid_parameter(e.to_string()))?;
    let mut ctx = CallContext::new(call_id, entry.name());
    let sink = tail.then(LogTailSink::default);
    ctx.log_tail = sink.clone();
    let target = crate::target::PlatformTarget::new(platform, local_port);
    let response = target.call(&key, call, ctx).await;
    let (parts, body) = response.into_parts();
    let body = match faas_invoke::buffer_whole(body, MAX_PAYLOAD).await {
        faas_invoke::Buffered::Whole(bytes) => Ok(bytes),
        faas_invoke::Buffered::Streaming(_) => Err(()),
    };
    // The body is done with: the executor's tail is complete once the guest is.
    let log = match sink {
        Some(sink) => sink.wait(TAIL_WAIT).await,
        None => None,
    };
    answer::of_call(parts, body, log, call_id)
}

/// The payload: at most [`MAX_PAYLOAD`] bytes of JSON (`{}` when empty, as Lambda passes it),
/// read under the gateway's body budget like any request body.
async fn read_payload(
    platform: &Platform,
    key: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<(Bytes, crate::body::Charge), LambdaError> {
    let limit = MAX_PAYLOAD as u64;
    let (bytes, charge) =
        crate::invoke::read_body_within(platform, key, headers, body, limit, String::new)
            .await
            .map_err(|refused| match refused.status() {
                StatusCode::PAYLOAD_TOO_LARGE => {
                    LambdaError::too_large(MAX_PAYLOAD + 1, MAX_PAYLOAD)
                }
                StatusCode::SERVICE_UNAVAILABLE => service_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "the gateway holds as many request bodies as it may; retry shortly",
                ),
                status => LambdaError::invalid_request(format!(
                    "the request body could not be read ({status})"
                )),
            })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok((Bytes::from_static(b"{}"), charge));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(|e| {
        LambdaError::invalid_request(format!("Could not parse request body into json: {e}"))
    })?;
    Ok((bytes, charge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_types_are_lambdas_three_and_anything_else_is_refused() {
        let of = |value: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert("x-amz-invocation-type", v.parse().expect("a header"));
            }
            InvocationType::of(&headers)
        };
        assert_eq!(of(None).ok(), Some(InvocationType::RequestResponse));
        assert_eq!(of(Some("Event")).ok(), Some(InvocationType::Event));
        assert_eq!(of(Some("DryRun")).ok(), Some(InvocationType::DryRun));
        for bad in ["event", "Async", ""] {
            let response = of(Some(bad)).expect_err(bad).response("c1");
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(
                response.headers()["x-amzn-errortype"],
                "InvalidParameterValueException"
            );
        }
    }

    #[test]
    fn only_the_invocations_path_is_the_invoke_api() {
        assert_eq!(
            function_segment("/2015-03-31/functions/orders/invocations"),
            Some("orders")
        );
        assert_eq!(
            function_segment("/2015-03-31/functions/arn%3Aaws%3Alambda%3Ax/invocations"),
            Some("arn%3Aaws%3Alambda%3Ax")
        );
        for other in [
            "/2015-03-31/functions/orders",
            "/2015-03-31/functions/a/b/invocations",
            "/2015-03-31/functions/orders/invocations/x",
            "/function/orders",
        ] {
            assert_eq!(function_segment(other), None, "{other}");
        }
    }
}
