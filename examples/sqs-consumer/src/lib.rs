//! An SQS-triggered job worker. Each message body is a job:
//!
//! - `sleep <ms>`: works for that long, then succeeds (a slow job);
//! - `fail <why>`: fails (a poison job: with the queue's redrive policy it reaches the DLQ
//!   after `maxReceiveCount` deliveries);
//! - anything else: processed at once.
//!
//! It answers a partial batch response (`reportBatchItemFailures: true` in the trigger), so
//! one failed job does not send the rest of its batch back to the queue. Every job is logged
//! with its message id, receive count and group, which is how the end-to-end tests watch it;
//! with `LOG_EVENTS=1` in the function's env the raw event is logged too.

use std::time::Duration;

use faas_sdk::events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use faas_sdk::{Request, Response};

/// What became of one job.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Failed(String),
}

fn run_job(message: &SqsMessage) -> Outcome {
    let body = message.body.trim();
    if let Some(ms) = body.strip_prefix("sleep ") {
        let ms: u64 = ms.trim().parse().unwrap_or(0);
        std::thread::sleep(Duration::from_millis(ms));
        return Outcome::Done;
    }
    if let Some(why) = body.strip_prefix("fail") {
        return Outcome::Failed(why.trim().to_owned());
    }
    Outcome::Done
}

/// Runs the batch's jobs in order and names the failed ones.
pub fn handle(req: Request) -> Result<Response, String> {
    if std::env::var("LOG_EVENTS").is_ok_and(|v| v == "1") {
        println!("event {}", String::from_utf8_lossy(req.body()));
    }
    let event = SqsEvent::from_request(&req)?;
    let mut reply = SqsBatchResponse::default();
    for message in &event.records {
        let outcome = run_job(message);
        println!(
            "job id={} receive={} group={} body={:?} outcome={}",
            message.message_id,
            message.receive_count(),
            message.group().unwrap_or("-"),
            message.body,
            match &outcome {
                Outcome::Done => "done".to_owned(),
                Outcome::Failed(why) => format!("failed({why})"),
            }
        );
        if let Outcome::Failed(_) = outcome {
            reply.fail(&message.message_id);
        }
    }
    Ok(reply.into_response())
}

faas_sdk::export_handler!(handle);

#[cfg(test)]
mod tests {
    use super::handle;
    use faas_sdk::testing;

    #[test]
    fn reports_only_the_failed_jobs() {
        let event = r#"{"Records":[
            {"messageId":"a","receiptHandle":"h","body":"resize 1.png","attributes":{},"messageAttributes":{},"md5OfBody":"","eventSource":"aws:sqs","eventSourceARN":"arn","awsRegion":"r"},
            {"messageId":"b","receiptHandle":"h","body":"fail corrupt","attributes":{},"messageAttributes":{},"md5OfBody":"","eventSource":"aws:sqs","eventSourceARN":"arn","awsRegion":"r"}]}"#;
        let resp = handle(testing::request("POST", "/", event)).expect("handled");
        assert_eq!(
            resp.body().as_ref(),
            br#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#
        );
    }

    #[test]
    fn a_body_that_is_not_an_event_fails_the_batch() {
        assert!(handle(testing::request("POST", "/", "hello")).is_err());
    }
}
