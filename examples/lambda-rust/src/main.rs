//! A Rust Lambda handler written for AWS Lambda with the `lambda_runtime` crate, unchanged. faas
//! serves it in `mode: lambda`: HTTP requests arrive as ALB target events, SQS batches as the
//! Lambda SQS event (failed messages are reported with `batchItemFailures`), cron runs as
//! EventBridge scheduled events.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (event, context) = event.into_parts();
    if let Some(method) = event.get("httpMethod").and_then(Value::as_str) {
        let path = event["path"].as_str().unwrap_or("/");
        if path == "/error" {
            return Err("bad input".into());
        }
        let body = json!({
            "method": method,
            "path": path,
            "query": event["queryStringParameters"],
            "requestId": context.request_id,
            "runtime": "rust",
        });
        return Ok(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": body.to_string(),
        }));
    }
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        let failures: Vec<Value> = records
            .iter()
            .filter(|r| r["body"].as_str().is_some_and(|b| b.starts_with("fail")))
            .map(|r| json!({"itemIdentifier": r["messageId"]}))
            .collect();
        return Ok(json!({"batchItemFailures": failures}));
    }
    Ok(json!({"received": event}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
