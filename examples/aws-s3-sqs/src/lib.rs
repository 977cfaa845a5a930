//! Reads an S3 object and sends its text as an SQS message, with the function's own IAM role,
//! through the official AWS SDK for Rust on `wasm32-wasip2` (`faas_sdk::aws::config()`: the
//! role's credentials, region and endpoint from the invocation's environment; requests through
//! the host's wasi:http, so `spec.network.allowedOutboundHosts` lists the two endpoints).
//!
//! `GET /<key>` copies `s3://$BUCKET/<key>` to the queue `$QUEUE_URL` and answers
//! `200 sent s3://<bucket>/<key> (<n> bytes) to <queue> as message <id>`. A missing object is
//! a 404, an object that is not UTF-8 text a 422, any other AWS error a 502 naming the call and
//! the SDK's error (no credentials, access denied, ...).

use aws_sdk_s3::error::DisplayErrorContext;
use faas_sdk::{IntoResponse, Request, Response, StatusCode};

type Failure = (StatusCode, String);

async fn handle(req: Request) -> Response {
    let key = req.uri().path().trim_start_matches('/').to_owned();
    match copy(&key).await {
        Ok(done) => done.into_response(),
        Err((status, why)) => (status, format!("{why}\n")).into_response(),
    }
}

faas_sdk::export_handler!(async handle);

fn setting(name: &str) -> Result<String, Failure> {
    std::env::var(name).map_err(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{name} is not set: give it in the Function's spec.env"),
        )
    })
}

async fn copy(key: &str) -> Result<String, Failure> {
    if key.is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            "GET /<key>: the path names the object to send".to_owned(),
        ));
    }
    let (bucket, queue) = (setting("BUCKET")?, setting("QUEUE_URL")?);
    let config = faas_sdk::aws::config();

    // A custom endpoint (moto, LocalStack, MinIO) serves buckets under paths, not host names.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(config.endpoint_url().is_some())
            .build(),
    );
    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            let status = match e.as_service_error() {
                Some(service) if service.is_no_such_key() => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_GATEWAY,
            };
            (
                status,
                format!(
                    "s3 GetObject s3://{bucket}/{key}: {}",
                    DisplayErrorContext(&e)
                ),
            )
        })?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| {
            (
                StatusCode::BAD_GATEWAY,
                format!("reading s3://{bucket}/{key}: {e}"),
            )
        })?
        .into_bytes();
    let size = bytes.len();
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("s3://{bucket}/{key} is not UTF-8 text, which an SQS message must be"),
        )
    })?;

    let sent = aws_sdk_sqs::Client::new(&config)
        .send_message()
        .queue_url(&queue)
        .message_body(text)
        .send()
        .await
        .map_err(|e| {
            (
                StatusCode::BAD_GATEWAY,
                format!("sqs SendMessage {queue}: {}", DisplayErrorContext(&e)),
            )
        })?;
    Ok(format!(
        "sent s3://{bucket}/{key} ({size} bytes) to {queue} as message {}\n",
        sent.message_id().unwrap_or("?")
    ))
}
