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
