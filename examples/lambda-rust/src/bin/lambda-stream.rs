//! A Rust Lambda handler that streams its response (`lambda_runtime::streaming`, as for a
//! Lambda function URL with `InvokeMode: RESPONSE_STREAM`), unchanged. faas serves it in
//! `mode: lambda`: its chunks reach the HTTP caller as the handler writes them.
//!
//! `GET /?chunks=N&pause=MS` writes N lines, MS milliseconds apart; `&fail=K` fails the
//! stream after K lines.

use std::time::Duration;

use lambda_runtime::streaming::{Body, Response, channel};
use lambda_runtime::{Error, LambdaEvent, MetadataPrelude, service_fn};
use serde_json::Value;

async fn handler(event: LambdaEvent<Value>) -> Result<Response<Body>, Error> {
    let query = &event.payload["queryStringParameters"];
    let number = |key: &str, default: u64| {
        query[key]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (chunks, pause, fail) = (number("chunks", 3), number("pause", 500), number("fail", 0));
    let (mut tx, rx) = channel();
    tokio::spawn(async move {
        for i in 1..=chunks {
            if fail > 0 && i > fail {
                // The stream breaks: the runtime reports it as the stream's error.
                tx.abort();
                return;
            }
            if tx.send_data(format!("chunk {i}\n").into()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    });
    let mut prelude = MetadataPrelude::default();
    prelude
        .headers
        .insert("content-type", "text/plain".parse()?);
    Ok(Response {
        metadata_prelude: prelude,
        stream: rx,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
