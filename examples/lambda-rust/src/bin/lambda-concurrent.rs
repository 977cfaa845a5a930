//! A Rust Lambda handler for Lambda Managed Instances: `lambda_runtime::run_concurrent`
//! serves `AWS_LAMBDA_MAX_CONCURRENCY` invocations at once from one process (and one at a
//! time without it). faas sets the variable for `perProcessConcurrency` above 1.
//!
//! Each invocation waits `{"sleepMs": N}` (default 0) and answers the process id, so a caller
//! sees which process served it.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let sleep = event.payload["sleepMs"].as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(sleep)).await;
    Ok(json!({
        "pid": std::process::id(),
        "concurrency": std::env::var("AWS_LAMBDA_MAX_CONCURRENCY").ok(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run_concurrent(service_fn(handler)).await
}
