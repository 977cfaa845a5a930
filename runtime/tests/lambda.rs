//! Unmodified Lambda handlers through the Runtime API: a Python handler run by the real
//! `awslambdaric` (from PyPI; `scripts/test.sh` installs it).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_api::Limits;
use faas_runtime::process::lambda::LambdaFunction;
use faas_runtime::process::{ProcessFunction, ProcessSpec};
use faas_runtime::{CallContext, InvokeError, Invoker};
use http_body_util::BodyExt;
use serde_json::{Value, json};

const HANDLER: &str = r#"
import base64, json, os, time

def handler(event, context):
    if "httpMethod" in event:
        path = event["path"]
        if path == "/error":
            raise ValueError("bad input")
        if path == "/crash":
            os._exit(3)
        if path == "/slow":
            time.sleep(30)
        if path == "/pid":
            time.sleep(0.5)
            return {"statusCode": 200, "body": str(os.getpid())}
        body = event["body"]
        if event["isBase64Encoded"]:
            body = list(base64.b64decode(body))
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json", "x-handler": "python"},
            "body": json.dumps({
                "method": event["httpMethod"], "path": path,
                "query": event["queryStringParameters"], "body": body,
                "function": context.function_name, "memory": context.memory_limit_in_mb,
                "remaining_ms": context.get_remaining_time_in_millis(),
                "request_id": context.aws_request_id,
            }),
        }
    if "Records" in event:
        return {"batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"].startswith("fail")
        ]}
    if event.get("source") == "aws.events":
        return {"scheduled": event["detail"], "type": event["detail-type"]}
    return {"unknown": event}
"#;

fn awslambdaric_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import awslambdaric"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn python(dir: &Path, module: &str, source: &str, timeout: Duration) -> ProcessFunction {
    python_with(dir, module, source, timeout, 4)
}

/// [`python`] with at most `processes` handler processes.
fn python_with(
    dir: &Path,
    module: &str,
    source: &str,
    timeout: Duration,
    processes: u32,
) -> ProcessFunction {
    assert!(
        awslambdaric_available(),
        "awslambdaric is not installed: pip install awslambdaric (scripts/test.sh does)"
    );
    std::fs::write(dir.join(format!("{module}.py")), source).unwrap();
    let spec = ProcessSpec {
        started: Default::default(),
        name: "orders".into(),
        argv: vec![
            "python3".into(),
            "-m".into(),
            "awslambdaric".into(),
            format!("{module}.handler"),
        ],
        working_dir: Some(dir.to_path_buf()),
        env: vec![],
        port: None,
        readiness_path: None,
        limits: Limits {
            timeout,
            memory_bytes: 256 << 20,
            concurrency: processes,
            ..Limits::default()
        },
    };
    ProcessFunction::Lambda(Box::new(LambdaFunction::start(spec)))
}

fn request(
    method: &str,
    uri: &str,
    content_type: &str,
    body: &'static [u8],
) -> http::Request<Bytes> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost")
        .header("content-type", content_type)
        .body(Bytes::from_static(body))
        .unwrap()
}

async fn call(
    f: &ProcessFunction,
    req: http::Request<Bytes>,
) -> Result<(u16, http::HeaderMap, Bytes), InvokeError> {
    let response = f.invoke(CallContext::new("t", "orders"), req).await?;
    let (parts, body) = response.into_parts();
    Ok((
        parts.status.as_u16(),
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    ))
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_reach_the_handler_as_alb_events() {
    let dir = tempfile::tempdir().unwrap();
    let f = python(dir.path(), "app", HANDLER, Duration::from_secs(10));
    let (status, headers, body) = call(&f, request("GET", "/items?id=7&x=a", "text/plain", b""))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(headers["x-handler"], "python");
    let v = json_of(&body);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/items");
    assert_eq!(v["query"], json!({"id": "7", "x": "a"}));
    assert_eq!(v["function"], "orders");
    assert_eq!(v["memory"], "256");
    let remaining = v["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 5_000 && remaining <= 10_000, "{remaining}");

    let (_, _, body) = call(
        &f,
        request("POST", "/orders", "application/json", br#"{"n":1}"#),
    )
    .await
    .unwrap();
    assert_eq!(json_of(&body)["body"], r#"{"n":1}"#);
    let (_, _, body) = call(
        &f,
        request("POST", "/blob", "application/octet-stream", &[0, 1, 255]),
    )
    .await
    .unwrap();
    assert_eq!(json_of(&body)["body"], json!([0, 1, 255]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batches_and_scheduled_runs_get_lambdas_events() {
    let dir = tempfile::tempdir().unwrap();
    let f = python(dir.path(), "app", HANDLER, Duration::from_secs(10));
    let event = json!({"Records": [
        {"messageId": "a", "body": "ok"}, {"messageId": "b", "body": "fail: corrupt"}
    ]});
    let mut sqs = request("POST", "/", "application/json", b"");
    *sqs.body_mut() = Bytes::from(event.to_string());
    sqs.headers_mut()
        .insert("x-faas-trigger", "sqs".parse().unwrap());
    let (status, _, body) = call(&f, sqs).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        json!({"batchItemFailures": [{"itemIdentifier": "b"}]})
    );

    let mut run = request("POST", "/", "application/json", br#"{"full":true}"#);
    run.headers_mut()
        .insert("x-faas-trigger", "cron".parse().unwrap());
    run.headers_mut()
        .insert("x-faas-schedule", "nightly".parse().unwrap());
    let (status, _, body) = call(&f, run).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        json!({"scheduled": {"full": true}, "type": "Scheduled Event"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_crashes_and_timeouts_have_their_status_and_the_next_call_works() {
    let dir = tempfile::tempdir().unwrap();
    let f = python(dir.path(), "app", HANDLER, Duration::from_secs(3));
    let ok = || request("GET", "/fine", "text/plain", b"");

    let (status, headers, body) = call(&f, request("GET", "/error", "text/plain", b""))
        .await
        .unwrap();
    assert_eq!(status, 502);
    assert_eq!(headers["x-amz-function-error"], "ValueError");
    let v = json_of(&body);
    assert_eq!(v["errorType"], "ValueError");
    assert_eq!(v["errorMessage"], "bad input");
    assert_eq!(call(&f, ok()).await.unwrap().0, 200);

    let err = call(&f, request("GET", "/crash", "text/plain", b""))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 502, "{err}");
    assert!(err.to_string().contains("exited with status 3"), "{err}");
    assert_eq!(call(&f, ok()).await.unwrap().0, 200);

    let started = Instant::now();
    let err = call(&f, request("GET", "/slow", "text/plain", b""))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 504, "{err}");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(call(&f, ok()).await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_failing_at_init_is_a_502_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = python(
        dir.path(),
        "broken",
        "raise RuntimeError('DATABASE_URL is not set')\ndef handler(e, c):\n    return {}\n",
        Duration::from_secs(10),
    );
    let started = Instant::now();
    let err = call(&f, request("GET", "/", "text/plain", b""))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 502, "{err}");
    let text = err.to_string();
    assert!(text.contains("failed to initialize"), "{text}");
    assert!(text.contains("DATABASE_URL is not set"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "waited for the deadline"
    );
}

/// The `lambda-rust` example, built for the host (once per test process).
fn rust_handler() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .current_dir(&examples)
                .args(["build", "--quiet", "--locked", "-p", "lambda-rust"])
                .env_remove("CARGO_TARGET_DIR")
                .status()
                .unwrap();
            assert!(status.success(), "building examples/lambda-rust failed");
            examples.join("target/debug/lambda-rust")
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_lambda_runtime_handler_serves_http_errors_and_sqs_batches() {
    let binary = rust_handler();
    let spec = ProcessSpec {
        started: Default::default(),
        name: "rusty".into(),
        argv: vec![binary.to_string_lossy().into_owned()],
        working_dir: None,
        env: vec![],
        port: None,
        readiness_path: None,
        limits: Limits {
            timeout: Duration::from_secs(10),
            concurrency: 2,
            ..Limits::default()
        },
    };
    let f = ProcessFunction::Lambda(Box::new(LambdaFunction::start(spec)));
    let (status, _, body) = call(&f, request("GET", "/hi?who=me", "text/plain", b""))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body:?}");
    let v = json_of(&body);
    assert_eq!(v["runtime"], "rust");
    assert_eq!(v["path"], "/hi");
    assert_eq!(v["query"], json!({"who": "me"}));
    assert!(
        v["requestId"]
            .as_str()
            .is_some_and(|id| id.starts_with("t-"))
    );

    let (status, headers, body) = call(&f, request("GET", "/error", "text/plain", b""))
        .await
        .unwrap();
    assert_eq!(status, 502);
    assert!(headers.contains_key("x-amz-function-error"));
    assert_eq!(json_of(&body)["errorMessage"], "bad input");

    let mut sqs = request("POST", "/", "application/json", b"");
    *sqs.body_mut() = Bytes::from(
        json!({"Records": [{"messageId": "m1", "body": "fail"}, {"messageId": "m2", "body": "ok"}]})
            .to_string(),
    );
    sqs.headers_mut()
        .insert("x-faas-trigger", "sqs".parse().unwrap());
    let (status, _, body) = call(&f, sqs).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations_get_their_own_handler_processes() {
    let dir = tempfile::tempdir().unwrap();
    let f = std::sync::Arc::new(python(dir.path(), "app", HANDLER, Duration::from_secs(20)));
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let f = std::sync::Arc::clone(&f);
            tokio::spawn(async move {
                let (status, _, body) = call(&f, request("GET", "/pid", "text/plain", b""))
                    .await
                    .unwrap();
                assert_eq!(status, 200);
                String::from_utf8(body.to_vec()).unwrap()
            })
        })
        .collect();
    let mut pids = std::collections::HashSet::new();
    for call in calls {
        pids.insert(call.await.unwrap());
    }
    // One invocation at a time per process: three at once ran in three processes.
    assert_eq!(pids.len(), 3, "{pids:?}");
    let status = f.status().unwrap();
    assert!(
        status["handlerProcesses"].as_u64().unwrap() >= 3,
        "{status}"
    );
    assert_eq!(status["maxHandlerProcesses"], 4);
}

/// Records each invocation's path in `ran.log` before answering; `/slow` takes 2 s.
const RECORDING_HANDLER: &str = r#"
import time

def handler(event, context):
    path = event.get("path", "")
    with open("ran.log", "a") as log:
        log.write(path + "\n")
    if path == "/slow":
        time.sleep(2)
    return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": path}
"#;

/// The architecture's invariant: an invocation is handed to a handler only while its caller
/// still waits. With the one handler process busy, a call whose caller gives up while it is
/// queued is never run, even once the process asks for work again; the next call is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_whose_caller_gave_up_is_never_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let f = std::sync::Arc::new(python_with(
        dir.path(),
        "app",
        RECORDING_HANDLER,
        Duration::from_secs(20),
        1,
    ));
    // Warm: the process is up and has asked for work once.
    let (status, _, body) = call(&f, request("GET", "/warm", "text/plain", b""))
        .await
        .unwrap();
    assert_eq!((status, &body[..]), (200, &b"/warm"[..]));
    let slow = {
        let f = std::sync::Arc::clone(&f);
        tokio::spawn(async move { call(&f, request("GET", "/slow", "text/plain", b"")).await })
    };
    let ran = || std::fs::read_to_string(dir.path().join("ran.log")).unwrap_or_default();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ran().contains("/slow") {
        assert!(std::time::Instant::now() < deadline, "/slow never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The one process is busy: this call waits in the queue, and its caller gives up.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(300),
        call(&f, request("GET", "/abandoned", "text/plain", b"")),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "answered while the only process was busy"
    );
    let (status, _, _) = slow.await.unwrap().unwrap();
    assert_eq!(status, 200);
    let (status, _, body) = call(&f, request("GET", "/after", "text/plain", b""))
        .await
        .unwrap();
    assert_eq!((status, &body[..]), (200, &b"/after"[..]));
    let status = f.status().unwrap();
    assert_eq!(status["maxHandlerProcesses"], 1, "{status}");
    assert_eq!(
        ran().lines().collect::<Vec<_>>(),
        ["/warm", "/slow", "/after"],
        "the abandoned call ran"
    );
}
