//! The SQS event (`spec.triggers.sqs`): one POST per batch, header `x-faas-trigger: sqs`,
//! body in Lambda's shape. With `reportBatchItemFailures: true`, answer a
//! [`SqsBatchResponse`] naming the messages that failed: the others are deleted, the failed
//! ones come back after the queue's visibility timeout (and go to its DLQ after
//! `maxReceiveCount`). Any non-2xx answer fails the whole batch.
//!
//! ```
//! use faas_sdk::events::sqs::{SqsBatchResponse, SqsEvent};
//! use faas_sdk::{Request, Response};
//!
//! fn handle(req: Request) -> Result<Response, String> {
//!     let event = SqsEvent::from_request(&req)?;
//!     let mut reply = SqsBatchResponse::default();
//!     for record in &event.records {
//!         if record.body.is_empty() {
//!             reply.fail(&record.message_id);
//!         }
//!     }
//!     Ok(reply.into_response())
//! }
//! # let req = faas_sdk::testing::request("POST", "/", r#"{"Records":[]}"#);
//! # assert_eq!(handle(req).unwrap().status(), 200);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Request, Response};

/// A batch of messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqsEvent {
    /// The messages, in the order they were received (FIFO: in group order).
    #[serde(rename = "Records")]
    pub records: Vec<SqsMessage>,
}

impl SqsEvent {
    /// Parses the event from a request body.
    pub fn from_request(req: &Request) -> Result<SqsEvent, NotAnSqsEvent> {
        serde_json::from_slice(req.body()).map_err(NotAnSqsEvent)
    }
}

/// A request body that is not an SQS event; reads `not an SQS event: <why>`. Converts into a
/// `String`, so `?` works in a handler that answers `Result<Response, String>`.
// Written by hand rather than with `thiserror`: guests build this crate with their own
// lockfile, which should not gain a dependency for one error.
#[derive(Debug)]
pub struct NotAnSqsEvent(serde_json::Error);

impl std::fmt::Display for NotAnSqsEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an SQS event: {}", self.0)
    }
}

impl std::error::Error for NotAnSqsEvent {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<NotAnSqsEvent> for String {
    fn from(e: NotAnSqsEvent) -> String {
        e.to_string()
    }
}

/// One message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessage {
    /// SQS message id; the id to name in [`SqsBatchResponse::fail`].
    pub message_id: String,
    /// Receipt handle of this delivery.
    pub receipt_handle: String,
    /// Message body.
    pub body: String,
    /// System attributes (`ApproximateReceiveCount`, `SentTimestamp`, `SenderId`,
    /// `ApproximateFirstReceiveTimestamp`; FIFO: `SequenceNumber`, `MessageGroupId`,
    /// `MessageDeduplicationId`), all strings.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Message attributes set by the sender.
    #[serde(default)]
    pub message_attributes: BTreeMap<String, SqsMessageAttribute>,
    /// MD5 of the body.
    #[serde(default)]
    pub md5_of_body: String,
    /// MD5 of the message attributes, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_of_message_attributes: Option<String>,
    /// Always `aws:sqs`.
    #[serde(default)]
    pub event_source: String,
    /// The queue's ARN.
    #[serde(default, rename = "eventSourceARN")]
    pub event_source_arn: String,
    /// The queue's region.
    #[serde(default)]
    pub aws_region: String,
}

impl SqsMessage {
    /// How many times this message has been received, this delivery included.
    pub fn receive_count(&self) -> u32 {
        self.attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1)
    }

    /// The FIFO message group, if any.
    pub fn group(&self) -> Option<&str> {
        self.attributes.get("MessageGroupId").map(String::as_str)
    }
}

/// A message attribute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessageAttribute {
    /// For `String` and `Number` types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// For `Binary`: base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
    /// Reserved by SQS; always empty.
    #[serde(default)]
    pub string_list_values: Vec<String>,
    /// Reserved by SQS; always empty.
    #[serde(default)]
    pub binary_list_values: Vec<String>,
    /// `String`, `Number`, `Binary`, optionally with a custom suffix (`Number.int`).
    pub data_type: String,
}

/// The answer to a batch with `reportBatchItemFailures`: the messages that failed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsBatchResponse {
    /// Failed messages; empty means the whole batch succeeded.
    pub batch_item_failures: Vec<BatchItemFailure>,
}

impl SqsBatchResponse {
    /// Marks the message `message_id` failed.
    pub fn fail(&mut self, message_id: &str) {
        self.batch_item_failures.push(BatchItemFailure {
            item_identifier: message_id.to_owned(),
        });
    }

    /// `200` with the JSON body.
    pub fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = Response::new(body.into());
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// One failed message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    /// The failed message's `messageId`.
    pub item_identifier: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_an_event_says_so_in_one_line() {
        let req = crate::testing::request("POST", "/", "{\"Records\": 3}");
        let err = SqsEvent::from_request(&req).expect_err("not an event");
        assert!(err.to_string().starts_with("not an SQS event: "), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        let text: String = err.into();
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn parses_lambdas_example_event_and_answers_failures() {
        let event: SqsEvent = serde_json::from_str(
            r#"{"Records":[{"messageId":"059f36b4-87a3-44ab-83d2-661975830a7d","receiptHandle":"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a","body":"Test message.","attributes":{"ApproximateReceiveCount":"2","SentTimestamp":"1545082649183","SenderId":"AIDAIENQZJOLO23YVJ4VO","ApproximateFirstReceiveTimestamp":"1545082649185"},"messageAttributes":{"a":{"stringValue":"v","stringListValues":[],"binaryListValues":[],"dataType":"String"}},"md5OfBody":"e4e68fb7bd0e697a0ae8f1bb342846b3","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:my-queue","awsRegion":"us-east-2"}]}"#,
        )
        .expect("event");
        let record = &event.records[0];
        assert_eq!(record.receive_count(), 2);
        assert_eq!(
            record.message_attributes["a"].string_value.as_deref(),
            Some("v")
        );
        assert_eq!(
            record.event_source_arn,
            "arn:aws:sqs:us-east-2:123456789012:my-queue"
        );
        let mut reply = SqsBatchResponse::default();
        reply.fail(&record.message_id);
        assert_eq!(
            reply.into_response().body().as_ref(),
            br#"{"batchItemFailures":[{"itemIdentifier":"059f36b4-87a3-44ab-83d2-661975830a7d"}]}"#
        );
    }
}
