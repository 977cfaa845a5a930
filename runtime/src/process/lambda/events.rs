//! What a Lambda handler receives and returns, by trigger: an HTTP request becomes an
//! Application Load Balancer target event and the handler's `{statusCode, headers, body,
//! isBase64Encoded}` the HTTP response; an SQS batch is already the Lambda SQS event (passed
//! through, the result returned as is so the poller reads `batchItemFailures`), as is a Lambda
//! Invoke API payload; a cron or
//! manual run becomes an EventBridge scheduled event with the payload in `detail`.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use faas_api::contract;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::InvokeError;

/// Which shape an invocation has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// ALB target event in, ALB response out.
    Http,
    /// Event and result passed through (SQS batches, Invoke API calls).
    Passthrough,
    /// EventBridge scheduled event in, result as the body out.
    Scheduled,
}

impl Shape {
    /// The shape of `request`, from the `x-faas-trigger` header event sources set.
    pub fn of(request: &http::Request<Bytes>) -> Shape {
        match request
            .headers()
            .get(contract::TRIGGER_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            Some(contract::TRIGGER_SQS | contract::TRIGGER_INVOKE) => Shape::Passthrough,
            Some(contract::TRIGGER_CRON | "manual") => Shape::Scheduled,
            _ => Shape::Http,
        }
    }
}

/// Where the function runs, for ARNs in events.
#[derive(Clone, Debug)]
pub struct Identity {
    pub function: String,
    pub region: String,
    pub account: String,
}

impl Identity {
    /// The function's ARN, as `Lambda-Runtime-Invoked-Function-Arn`.
    pub fn function_arn(&self) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}",
            faas_api::sqs::partition(&self.region),
            self.region,
            self.account,
            self.function
        )
    }
}

/// The caller's client context (`X-Amz-Client-Context`: base64 of a JSON object, as the
/// Invoke API takes it), decoded for `Lambda-Runtime-Client-Context`; `None` when absent or
/// not base64 of JSON.
pub fn client_context(request: &http::Request<Bytes>) -> Option<String> {
    let encoded = request
        .headers()
        .get("x-amz-client-context")?
        .to_str()
        .ok()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.is_object().then(|| value.to_string())
}

/// The event for `request`.
pub fn event(shape: Shape, identity: &Identity, request: &http::Request<Bytes>) -> Bytes {
    match shape {
        Shape::Passthrough => request.body().clone(),
        Shape::Http => alb_event(identity, request),
        Shape::Scheduled => scheduled_event(identity, request),
    }
}

fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let ct = ct.to_ascii_lowercase();
    ct.starts_with("text/")
        || ["json", "xml", "javascript", "x-www-form-urlencoded", "yaml"]
            .iter()
            .any(|t| ct.contains(t))
}

fn alb_event(identity: &Identity, request: &http::Request<Bytes>) -> Bytes {
    let mut headers = serde_json::Map::new();
    for (name, value) in request.headers() {
        if let Ok(value) = value.to_str() {
            // ALB without multi-value headers keeps the last value of a repeated header.
            headers.insert(name.as_str().to_owned(), Value::String(value.to_owned()));
        }
    }
    let mut query = serde_json::Map::new();
    for pair in request.uri().query().unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    let body = request.body();
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let text = std::str::from_utf8(body)
        .ok()
        .filter(|_| is_text(content_type) && !request.headers().contains_key("content-encoding"));
    let (body, base64) = match text {
        Some(text) => (text.to_owned(), false),
        None => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let event = json!({
        "requestContext": {"elb": {"targetGroupArn": format!(
            "arn:{}:elasticloadbalancing:{}:{}:targetgroup/faas-{}/0000000000000000",
            faas_api::sqs::partition(&identity.region), identity.region, identity.account,
            identity.function
        )}},
        "httpMethod": request.method().as_str(),
        "path": request.uri().path(),
        "queryStringParameters": query,
        "headers": headers,
        "body": body,
        "isBase64Encoded": base64,
    });
    Bytes::from(event.to_string())
}

fn scheduled_event(identity: &Identity, request: &http::Request<Bytes>) -> Bytes {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body = request.body();
    // The schedule's payload: JSON as is, text as a string, nothing as {}.
    let detail = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice::<Value>(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
    };
    // A function that declares options gets them beside the payload (`faas_api::options`).
    let detail = match header(contract::OPTIONS_HEADER)
        .as_deref()
        .and_then(faas_api::options::parse_header)
    {
        Some(options) => json!({"options": options, "payload": detail}),
        None => detail,
    };
    let run = header(contract::RUN_ID_HEADER).unwrap_or_default();
    let schedule = header(contract::SCHEDULE_HEADER).unwrap_or_else(|| "manual".into());
    let time = header(contract::SCHEDULED_TIME_HEADER).unwrap_or_else(|| {
        jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .map(|t| t.to_string())
            .unwrap_or_default()
    });
    let event = json!({
        "version": "0",
        "id": run,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": identity.account,
        "time": time,
        "region": identity.region,
        "resources": [format!(
            "arn:{}:events:{}:{}:rule/faas-{}-{}",
            faas_api::sqs::partition(&identity.region), identity.region, identity.account,
            identity.function, schedule
        )],
        "detail": detail,
    });
    Bytes::from(event.to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlbResponse {
    status_code: u16,
    #[serde(default)]
    status_description: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, Value>,
    #[serde(default)]
    multi_value_headers: BTreeMap<String, Vec<Value>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

/// The HTTP response for the handler's `result` to an invocation of `shape`.
pub fn response(shape: Shape, result: Bytes) -> Result<http::Response<Bytes>, InvokeError> {
    if shape != Shape::Http {
        let mut response = http::Response::new(result);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    }
    let alb: AlbResponse = serde_json::from_slice(&result).map_err(|e| {
        InvokeError::BadResponse(format!(
            "the handler's result is not an ALB response ({{\"statusCode\": ..., \"body\": ...}}): {e}"
        ))
    })?;
    let body = match (alb.body, alb.is_base64_encoded) {
        (None, _) => Bytes::new(),
        (Some(body), false) => Bytes::from(body),
        (Some(body), true) => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|e| InvokeError::BadResponse(format!("body is not base64: {e}")))?,
        ),
    };
    let status = http::StatusCode::from_u16(alb.status_code).map_err(|_| {
        InvokeError::BadResponse(format!(
            "statusCode {} is not an HTTP status",
            alb.status_code
        ))
    })?;
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    let _ = alb.status_description;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let headers = response.headers_mut();
    for (name, value) in &alb.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&text(value)),
        ) {
            headers.insert(name, value);
        }
    }
    for (name, values) in &alb.multi_value_headers {
        let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        headers.remove(&name);
        for value in values {
            if let Ok(value) = http::HeaderValue::from_str(&text(value)) {
                headers.append(name.clone(), value);
            }
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            function: "orders".into(),
            region: "eu-west-3".into(),
            account: "123456789012".into(),
        }
    }

    fn parse(bytes: &Bytes) -> Value {
        serde_json::from_slice(bytes).expect("json")
    }

    #[test]
    fn http_requests_become_alb_events() {
        let request = http::Request::builder()
            .method("POST")
            .uri("/items/7?verbose=1&q=a%20b")
            .header("content-type", "application/json")
            .header("x-custom", "one")
            .body(Bytes::from_static(br#"{"n":1}"#))
            .expect("request");
        let got = parse(&event(Shape::of(&request), &identity(), &request));
        assert_eq!(got["httpMethod"], "POST");
        assert_eq!(got["path"], "/items/7");
        assert_eq!(
            got["queryStringParameters"],
            json!({"verbose": "1", "q": "a%20b"})
        );
        assert_eq!(got["headers"]["x-custom"], "one");
        assert_eq!(got["body"], r#"{"n":1}"#);
        assert_eq!(got["isBase64Encoded"], false);
        assert_eq!(
            got["requestContext"]["elb"]["targetGroupArn"],
            "arn:aws:elasticloadbalancing:eu-west-3:123456789012:targetgroup/faas-orders/0000000000000000"
        );
        let binary = http::Request::builder()
            .uri("/")
            .header("content-type", "image/png")
            .body(Bytes::from_static(&[0x89, b'P', 0, 0xff]))
            .expect("request");
        let got = parse(&event(Shape::Http, &identity(), &binary));
        assert_eq!(got["isBase64Encoded"], true);
        assert_eq!(got["body"], "iVAA/w==");
    }

    #[test]
    fn alb_responses_become_http_responses() {
        let r = response(
            Shape::Http,
            Bytes::from_static(br#"{"statusCode":201,"headers":{"x-a":"1","content-type":"text/plain"},"multiValueHeaders":{"set-cookie":["a=1","b=2"]},"body":"made"}"#),
        )
        .expect("valid");
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "1");
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
        assert_eq!(r.body().as_ref(), b"made");
        let r = response(
            Shape::Http,
            Bytes::from_static(br#"{"statusCode":200,"body":"AAE=","isBase64Encoded":true}"#),
        )
        .expect("valid");
        assert_eq!(r.body().as_ref(), &[0u8, 1]);
        for bad in [
            &b"\"just a string\""[..],
            b"{}",
            b"{\"statusCode\": 99}",
            b"not json",
        ] {
            let err = response(Shape::Http, Bytes::copy_from_slice(bad)).expect_err("invalid");
            assert_eq!(err.status(), 502, "{}", String::from_utf8_lossy(bad));
        }
        // Other shapes pass the result through.
        let r = response(
            Shape::Passthrough,
            Bytes::from_static(b"{\"batchItemFailures\":[]}"),
        )
        .expect("passthrough");
        assert_eq!(r.status(), 200);
    }

    #[test]
    fn runs_become_eventbridge_scheduled_events() {
        let request = http::Request::builder()
            .uri("/")
            .header("x-faas-trigger", "cron")
            .header("x-faas-run-id", "orders.nightly.20261129t020000z")
            .header("x-faas-schedule", "nightly")
            .header("x-faas-scheduled-time", "2026-11-29T02:00:00Z")
            .body(Bytes::from_static(br#"{"full":true}"#))
            .expect("request");
        let got = parse(&event(Shape::of(&request), &identity(), &request));
        assert_eq!(got["source"], "aws.events");
        assert_eq!(got["detail-type"], "Scheduled Event");
        assert_eq!(got["detail"], json!({"full": true}));
        assert_eq!(got["time"], "2026-11-29T02:00:00Z");
        assert_eq!(got["id"], "orders.nightly.20261129t020000z");
        assert_eq!(
            got["resources"][0],
            "arn:aws:events:eu-west-3:123456789012:rule/faas-orders-nightly"
        );
    }

    #[test]
    fn a_run_with_options_gets_them_beside_its_payload_in_detail() {
        let run = |options: Option<&str>| {
            let mut request = http::Request::builder()
                .uri("/")
                .header("x-faas-trigger", "manual")
                .header("x-faas-run-id", "orders.manual.0123456789abcdef");
            if let Some(options) = options {
                request = request.header("x-faas-options", options);
            }
            let request = request
                .body(Bytes::from_static(b"plain text"))
                .expect("request");
            parse(&event(Shape::of(&request), &identity(), &request))
        };
        assert_eq!(
            run(Some(r#"{"days":7,"dry_run":true,"region":"eu-west-1"}"#))["detail"],
            json!({
                "options": {"days": 7, "dry_run": true, "region": "eu-west-1"},
                "payload": "plain text",
            })
        );
        // Without options (or with a header that is not options), the payload is the detail.
        assert_eq!(run(None)["detail"], json!("plain text"));
        assert_eq!(run(Some("[1]"))["detail"], json!("plain text"));
    }
}
