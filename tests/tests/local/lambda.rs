//! An unmodified Python Lambda handler (`awslambdaric`) behind `faas up`: HTTP requests
//! through the gateway as ALB events, and an SQS trigger (moto on loopback) with a partial
//! batch failure.

use aws_sdk_sqs::types::QueueAttributeName;
use faas_e2e::moto::moto;
use faas_e2e::*;
use serde_json::{Value, json};

const HANDLER: &str = r#"
import base64, json

def handler(event, context):
    if "Records" in event:
        for r in event["Records"]:
            print("lambda got", r["body"], flush=True)
        return {"batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"].startswith("fail")
        ]}
    body = event["body"]
    if event["isBase64Encoded"]:
        body = "bytes:" + base64.b64decode(body).hex()
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"path": event["path"], "query": event["queryStringParameters"],
                            "body": body, "prefix": event["headers"].get("x-forwarded-prefix")}),
    }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_lambda_handler_serves_http_and_an_sqs_trigger() {
    let moto = moto();
    let url = moto
        .create_queue(
            &format!("e2e-lambda-{}", std::process::id()),
            &[(QueueAttributeName::VisibilityTimeout, "30")],
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), HANDLER).unwrap();
    std::fs::write(
        dir.path().join("orders.yaml"),
        format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: orders}}\nspec:\n  runtime:\n    container:\n      command: [python3, -m, awslambdaric, app.handler]\n      mode: lambda\n  timeout: 10s\n  concurrency: 2\n  triggers:\n    sqs:\n    - queueUrl: {url}\n      reportBatchItemFailures: true\n"
        ),
    )
    .unwrap();
    let faas = Faas::launch(
        dir.path(),
        Launch {
            env: moto.env(),
            ..Launch::default()
        },
    );

    let reply = get(&faas.url("/function/orders/items?id=7")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    assert_eq!(v["path"], "/items");
    assert_eq!(v["query"], json!({"id": "7"}));
    assert_eq!(v["prefix"], "/function/orders");
    let reply = send(
        "POST",
        &faas.url("/function/orders/upload"),
        &[("content-type", "application/octet-stream")],
        vec![0u8, 255],
    )
    .await;
    assert_eq!(reply.json()["body"], "bytes:00ff");

    for body in ["one", "two", "fail: corrupt", "three"] {
        moto.send(&url, body).await;
    }
    faas.eventually("three deleted, one failed", || async {
        let detail = get(&faas.url("/system/functions/orders")).await.json();
        let t: &Value = &detail["sqsTriggers"][0];
        t["deleted"] == 3 && t["failed"] == 1
    })
    .await;
    let logs = faas.stderr.lock().unwrap().clone();
    for body in ["one", "two", "three", "fail: corrupt"] {
        assert!(logs.contains(&format!("lambda got {body}")), "{logs}");
    }
}

/// A GET of `path` on `faas` read frame by frame: the status, the content type, each chunk
/// with when it arrived, and how the body ended (an error when it was cut off).
async fn streamed(
    faas: &Faas,
    path: &str,
) -> (
    u16,
    String,
    Vec<(std::time::Instant, bytes::Bytes)>,
    Result<(), String>,
) {
    use http_body_util::BodyExt;
    let url: http::Uri = faas.url(path).parse().unwrap();
    let address = format!("{}:{}", url.host().unwrap(), url.port_u16().unwrap());
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(url.path_and_query().unwrap().as_str())
        .header("host", "localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let mut body = response.into_body();
    let mut chunks = Vec::new();
    let end = loop {
        match body.frame().await {
            None => break Ok(()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    chunks.push((std::time::Instant::now(), data));
                }
            }
            Some(Err(e)) => break Err(e.to_string()),
        }
    };
    (status, content_type, chunks, end)
}

/// A Rust handler streaming its response (`lambda_runtime::streaming`): its first chunk
/// reaches the HTTP caller while it is still writing the rest, with the status and headers of
/// its HTTP prelude; a stream that breaks after its first chunk cuts the caller's response
/// off, and the function serves the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_handler_streams_to_the_caller_and_a_broken_stream_is_cut_off() {
    let _ = guest("hello"); // examples/build.sh, which builds the handler too
    let handler = repo_root().join("examples/target/debug/lambda-stream");
    assert!(
        handler.exists(),
        "{} is built by examples/build.sh (scripts/test.sh runs it)",
        handler.display()
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: stream}}\n\
             spec:\n  runtime:\n    container:\n      command: [{}]\n      mode: lambda\n  \
             timeout: 20s\n",
            handler.display()
        ),
    )
    .unwrap();
    let faas = Faas::launch(dir.path(), Launch::default());

    let (status, content_type, chunks, end) =
        streamed(&faas, "/function/stream/?chunks=3&pause=1500").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain");
    assert_eq!(end, Ok(()));
    let text: String = chunks
        .iter()
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert_eq!(text, "chunk 1\nchunk 2\nchunk 3\n");
    // The first chunk arrived while the handler still had 3 s of writing to do.
    let first = chunks
        .iter()
        .find(|(_, c)| !c.is_empty())
        .map(|(at, _)| *at)
        .unwrap();
    let last = chunks.last().map(|(at, _)| *at).unwrap();
    assert!(
        last.duration_since(first) >= std::time::Duration::from_millis(2500),
        "the chunks came together: {:?}",
        last.duration_since(first)
    );

    let (status, _, chunks, end) =
        streamed(&faas, "/function/stream/?chunks=3&pause=200&fail=1").await;
    assert_eq!(status, 200);
    let text: String = chunks
        .iter()
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert_eq!(text, "chunk 1\n", "nothing after the break");
    assert!(end.is_err(), "the response is cut off, not ended: {end:?}");

    // The handler takes the next call.
    let (status, _, chunks, end) = streamed(&faas, "/function/stream/?chunks=1&pause=0").await;
    assert_eq!((status, end), (200, Ok(())));
    assert_eq!(chunks.iter().map(|(_, c)| c.len()).sum::<usize>(), 8);
}

/// The process ids that served `n` concurrent Invoke calls of `function` (each waiting
/// `sleep_ms`), and the `AWS_LAMBDA_MAX_CONCURRENCY` each process saw.
async fn served_by(faas: &Faas, function: &str, n: usize, sleep_ms: u64) -> Vec<(u64, Value)> {
    let url = faas.url(&format!("/2015-03-31/functions/{function}/invocations"));
    let calls = (0..n).map(|_| {
        let url = url.clone();
        async move {
            let reply = send("POST", &url, &[], format!("{{\"sleepMs\": {sleep_ms}}}")).await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            let v = reply.json();
            (v["pid"].as_u64().unwrap(), v["concurrency"].clone())
        }
    });
    let mut set = tokio::task::JoinSet::new();
    for call in calls {
        set.spawn(call);
    }
    let mut out = Vec::new();
    while let Some(done) = set.join_next().await {
        out.push(done.unwrap());
    }
    out
}

/// Lambda Managed Instances' contract: with `perProcessConcurrency: 4` one handler process
/// (`lambda_runtime::run_concurrent`, told `AWS_LAMBDA_MAX_CONCURRENCY=4`) serves four
/// invocations at once; by default each invocation in flight has a process of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_handler_process_serves_several_invocations_at_once_when_asked() {
    let _ = guest("hello"); // examples/build.sh, which builds the handler too
    let handler = repo_root().join("examples/target/debug/lambda-concurrent");
    assert!(
        handler.exists(),
        "{} is built by examples/build.sh",
        handler.display()
    );
    let dir = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("shared", "      perProcessConcurrency: 4\n"),
        ("classic", ""),
    ] {
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            format!(
                "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\n\
                 spec:\n  runtime:\n    container:\n      command: [{}]\n      mode: lambda\n\
                 {extra}  concurrency: 4\n  timeout: 20s\n",
                handler.display()
            ),
        )
        .unwrap();
    }
    let faas = Faas::launch(dir.path(), Launch::default());
    let shared = served_by(&faas, "shared", 4, 1500).await;
    let pids: std::collections::BTreeSet<u64> = shared.iter().map(|(p, _)| *p).collect();
    assert_eq!(pids.len(), 1, "one process for the four: {shared:?}");
    assert!(shared.iter().all(|(_, c)| c == "4"), "{shared:?}");
    let classic = served_by(&faas, "classic", 4, 1500).await;
    let pids: std::collections::BTreeSet<u64> = classic.iter().map(|(p, _)| *p).collect();
    assert_eq!(pids.len(), 4, "a process per invocation: {classic:?}");
    assert!(classic.iter().all(|(_, c)| c.is_null()), "{classic:?}");
}
