//! `faas-runtime`, the binary of runtime pods, run as the pods run it but on loopback:
//!
//! - `sidecar` beside a function "container": here a process the test starts itself, as the
//!   kubelet would, given the Runtime API address (Lambda) or the port (http). The sidecar
//!   never starts or restarts it; it follows its readiness.
//! - `serve`, a runtime pool: WASM functions from a folder, read-only management, no cron.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use faas_e2e::moto::moto;
use faas_e2e::*;
use serde_json::{Value, json};

const HANDLER: &str = r#"
import base64, json, os, time

def handler(event, context):
    if "Records" in event:
        return {"batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"].startswith("fail")
        ]}
    path = event["path"]
    if path == "/boom":
        raise ValueError("no such order")
    if path == "/die":
        os._exit(3)
    if path == "/slow":
        time.sleep(3)
    body = event["body"]
    if event["isBase64Encoded"]:
        body = "bytes:" + base64.b64decode(body).hex()
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"path": path, "query": event["queryStringParameters"], "body": body,
                            "function": context.function_name,
                            "memory": context.memory_limit_in_mb}),
    }
"#;

/// The function "container": a process the test starts and stops, like the kubelet.
struct Container(Child);

impl Container {
    fn lambda(dir: &Path, runtime_api: &str) -> Container {
        // What the controller renders into the function container (faas_api::lambda_env).
        let child = Command::new("python3")
            .args(["-m", "awslambdaric", "app.handler"])
            .current_dir(dir)
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "orders")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/orders")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("_HANDLER", "app.handler")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Container(child)
    }

    fn http(port: u16) -> Container {
        let server = repo_root().join("examples/container-http/server.py");
        let child = Command::new("python3")
            .arg(server)
            .env("PORT", port.to_string())
            .env("GREETING", "beside")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Container(child)
    }

    /// Waits for it to exit (a handler that crashed itself).
    fn wait_exit(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.0.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the handler did not exit");
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn manifest(container: &str, extra: &str) -> String {
    format!(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: orders}}\nspec:\n  runtime:\n    container:\n{container}  timeout: 2s\n  memory: 256Mi\n{extra}"
    )
}

async fn readyz(faas: &Faas) -> (u16, String) {
    let reply = get(&faas.url("/readyz")).await;
    (reply.status, reply.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_serves_the_runtime_api_to_a_lambda_handler_beside_it() {
    let moto = moto();
    let queue = moto
        .create_queue(
            &format!("e2e-sidecar-{}", std::process::id()),
            &[(QueueAttributeName::VisibilityTimeout, "30")],
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), HANDLER).unwrap();
    let runtime_api = format!("127.0.0.1:{}", free_port());
    let text = manifest(
        "      image: registry.example.com/orders:1\n      mode: lambda\n",
        &format!(
            "  triggers:\n    sqs:\n    - queueUrl: {queue}\n      reportBatchItemFailures: true\n"
        ),
    );
    let mut env = moto.env();
    // Inline, as the controller passes it.
    env.push(("FAAS_FUNCTION_MANIFEST".into(), text));
    let faas = Faas::runtime(
        &["sidecar", "--runtime-api", &runtime_api],
        Launch {
            env,
            ..Launch::default()
        },
    );

    // Not ready until the handler asks for work: the pod gets no traffic before.
    let (status, why) = readyz(&faas).await;
    assert_eq!(status, 503);
    assert!(why.contains("waiting for the handler"), "{why}");
    let mut handler = Container::lambda(dir.path(), &runtime_api);
    faas.eventually("the pod turns ready", || async {
        readyz(&faas).await.0 == 200
    })
    .await;

    let reply = get(&faas.url("/function/orders/items?id=7")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    assert_eq!(v["path"], "/items");
    assert_eq!(v["query"], json!({"id": "7"}));
    assert_eq!(v["function"], "orders");
    // The handler's init, from the sidecar serving its Runtime API to its first request for
    // work, is the function's lambda_init cold-start phase.
    let metrics = get(&faas.url("/metrics")).await.text();
    assert!(
        metrics
            .contains("faas_cold_start_seconds_count{function=\"orders\",phase=\"lambda_init\"} 1"),
        "{metrics}"
    );
    let reply = send(
        "POST",
        &faas.url("/function/orders/upload"),
        &[("content-type", "application/octet-stream")],
        vec![0u8, 255],
    )
    .await;
    assert_eq!(reply.json()["body"], "bytes:00ff");
    let reply = send(
        "POST",
        &faas.url("/function/orders/new"),
        &[("content-type", "application/json")],
        r#"{"sku":"a-1"}"#,
    )
    .await;
    assert_eq!(reply.json()["body"], r#"{"sku":"a-1"}"#);

    // A handler error: 502 with Lambda's error JSON and header.
    let reply = get(&faas.url("/function/orders/boom")).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.headers["x-amz-function-error"], "ValueError");
    assert_eq!(reply.json()["errorMessage"], "no such order");

    // Past its deadline: 504. The handler (another container: not killed) answers late; the
    // answer is dropped without upsetting the runtime client, which takes the next call.
    let reply = get(&faas.url("/function/orders/slow")).await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reply = get(&faas.url("/function/orders/after-slow")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // SQS: the sidecar polls, the handler gets Lambda's event, batchItemFailures honoured.
    for body in ["one", "fail: corrupt", "two"] {
        moto.send(&queue, body).await;
    }
    faas.eventually("two deleted, one failed", || async {
        let detail = get(&faas.url("/system/functions/orders")).await.json();
        let t: &Value = &detail["sqsTriggers"][0];
        t["deleted"] == 2 && t["failed"] == 1
    })
    .await;

    // The handler crashes mid-invocation and its container restarts: the restarted handler
    // asks for work, and the lost invocation is answered 502 at once, not 504 at the deadline.
    let crashed = tokio::spawn({
        let url = faas.url("/function/orders/die");
        async move { get(&url).await }
    });
    handler.wait_exit();
    let started = Instant::now();
    let _restarted = Container::lambda(dir.path(), &runtime_api);
    let reply = crashed.await.unwrap();
    assert_eq!(reply.status, 502, "{}", reply.text());
    // Behind the gateway the caller gets the reason; what happened is in the pod's log.
    assert_eq!(reply.json()["reason"], "ProcessFailed", "{}", reply.text());
    assert!(
        !reply.text().contains("without answering"),
        "{}",
        reply.text()
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let reply = get(&faas.url("/function/orders/again")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // Management is read-only in a pod.
    let reply = send(
        "DELETE",
        &faas.url("/system/functions/orders"),
        &[MANAGE],
        "",
    )
    .await;
    assert_eq!(reply.status, 405);
    assert_eq!(
        get(&faas.url("/system/info")).await.json()["mode"],
        "sidecar"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_follows_an_http_server_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = dir.path().join("orders.yaml");
    std::fs::write(
        &file,
        manifest(
            &format!("      image: registry.example.com/orders:1\n      port: {port}\n"),
            "",
        ),
    )
    .unwrap();
    let faas = Faas::runtime(
        &["sidecar", "--manifest-file", file.to_str().unwrap()],
        Launch::default(),
    );
    let (status, why) = readyz(&faas).await;
    assert_eq!(status, 503);
    assert!(why.contains("starting"), "{why}");

    let server = Container::http(port);
    faas.eventually("the pod turns ready", || async {
        readyz(&faas).await.0 == 200
    })
    .await;
    let reply = get(&faas.url("/function/orders/stock?sku=1")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["path"], "/stock?sku=1");
    assert_eq!(reply.json()["greeting"], "beside");
    let metrics = get(&faas.url("/metrics")).await.text();
    assert!(
        metrics.contains(
            "faas_cold_start_seconds_count{function=\"orders\",phase=\"process_start\"} 1"
        ),
        "{metrics}"
    );

    // The container dies: not ready, with the reason; requests wait for it within their
    // timeout and then fail with 503.
    drop(server);
    faas.eventually("the pod turns unready", || async {
        let (status, why) = readyz(&faas).await;
        status == 503 && why.contains("not accepting connections")
    })
    .await;
    let reply = get(&faas.url("/function/orders/stock")).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    // Restarted (by the kubelet, here by the test): ready again, serving.
    let _server = Container::http(port);
    faas.eventually("ready again", || async { readyz(&faas).await.0 == 200 })
        .await;
    let reply = get(&faas.url("/function/orders/stock")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn a_sidecar_refuses_a_manifest_it_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("wasm.yaml");
    std::fs::write(
        &wasm,
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: hello}\nspec:\n  runtime:\n    wasm: {source: hello.wasm}\n",
    )
    .unwrap();
    let two = dir.path().join("two.yaml");
    let one = manifest("      image: a:1\n      port: 8080\n", "");
    std::fs::write(
        &two,
        format!("{one}---\n{}", one.replace("orders", "other")),
    )
    .unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, manifest("      image: a:1\n      mode: fast\n", "")).unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&[], "--manifest-file FILE or FAAS_FUNCTION_MANIFEST"),
        (
            &["--manifest-file", wasm.to_str().unwrap()],
            "not a container function",
        ),
        (
            &["--manifest-file", two.to_str().unwrap()],
            "exactly one function, found 2",
        ),
        (&["--manifest-file", bad.to_str().unwrap()], "mode"),
    ];
    for (args, expected) in cases {
        let out = Command::new(runtime_bin())
            .arg("sidecar")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("FAAS_FUNCTION_MANIFEST")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_serves_wasm_functions_read_only_and_fires_no_schedules() {
    let dir = tempfile::tempdir().unwrap();
    // A schedule every second: a pool replica must never fire it (the controller does).
    write_function(
        dir.path(),
        "hello",
        &guest("hello"),
        "  schedules:\n  - name: often\n    cron: '* * * * * *'\n",
    );
    std::fs::write(
        dir.path().join("web.yaml"),
        manifest(
            "      command: [python3, server.py]\n      port: 8080\n",
            "",
        )
        .replace("orders", "web"),
    )
    .unwrap();
    let faas = Faas::runtime(
        &["serve", "--functions", dir.path().to_str().unwrap()],
        Launch::default(),
    );
    assert_eq!(readyz(&faas).await.0, 200);
    let reply = get(&faas.url("/function/hello")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let web = get(&faas.url("/system/functions/web")).await.json();
    assert_eq!(web["summary"]["ready"], false);
    assert!(
        web["summary"]["reason"]
            .as_str()
            .unwrap()
            .contains("a runtime pool hosts WASM functions only"),
        "{web}"
    );
    assert_eq!(get(&faas.url("/function/web")).await.status, 503);

    let put = send(
        "PUT",
        &faas.url("/system/functions/hello"),
        &[("content-type", "application/yaml"), MANAGE],
        "kind: Function",
    )
    .await;
    assert_eq!(put.status, 405, "{}", put.text());
    assert_eq!(get(&faas.url("/system/info")).await.json()["mode"], "pool");

    // Over 2.5 s a `* * * * * *` schedule would have fired twice; only our one call counts.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let metrics = get(&faas.url("/metrics")).await.text();
    let calls: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("faas_invocations_total") && l.contains("function=\"hello\""))
        .collect();
    assert_eq!(calls.len(), 1, "{metrics}");
    // A pool pod times the phases of a WASM cold start.
    for phase in ["compile", "instantiate"] {
        assert!(
            metrics.contains(&format!(
                "faas_cold_start_seconds_count{{function=\"hello\",phase=\"{phase}\"}}"
            )),
            "{phase}: {metrics}"
        );
    }
    assert!(
        calls[0].ends_with(" 1"),
        "a pool fired a schedule: {calls:?}"
    );
    assert_eq!(get(&faas.url("/system/runs")).await.status, 503);

    // Behind the cluster gateway: the call keeps the id the gateway gave its client (a
    // plausible one only), so the function's logs and the client agree.
    let reply = send(
        "GET",
        &faas.url("/function/hello"),
        &[("x-call-id", "gw-0001-abc")],
        "",
    )
    .await;
    assert_eq!(reply.headers["x-call-id"], "gw-0001-abc");
    let reply = send(
        "GET",
        &faas.url("/function/hello"),
        &[("x-call-id", "not a <plausible> id")],
        "",
    )
    .await;
    assert_ne!(reply.headers["x-call-id"], "not a <plausible> id");
}
