//! The body a function receives for a batch of SQS messages: Lambda's SQS event, field for
//! field and in Lambda's key order, so handlers written for Lambda (and their test fixtures)
//! work unchanged.

use std::collections::BTreeMap;

use serde::Serialize;

/// One received message, as the poller hands it over (translated from the SQS API's
/// PascalCase members; binary values base64, as SQS returns them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// System attributes (`ApproximateReceiveCount`, `SentTimestamp`, `SenderId`,
    /// `ApproximateFirstReceiveTimestamp`; FIFO: `SequenceNumber`, `MessageGroupId`,
    /// `MessageDeduplicationId`; `AWSTraceHeader` when set). All values are strings. Sorted
    /// by name: SQS returns them as an unordered map, so no order is Lambda's own.
    pub attributes: BTreeMap<String, String>,
    pub message_attributes: BTreeMap<String, MessageAttribute>,
    pub md5_of_body: String,
    pub md5_of_message_attributes: Option<String>,
}

impl Message {
    /// The FIFO message group, if any.
    pub fn group(&self) -> Option<&str> {
        self.attributes.get("MessageGroupId").map(String::as_str)
    }
}

/// A message attribute, in the event's lower-camel form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttribute {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// Base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
    /// Lambda always sends both lists, empty (SQS does not implement list values).
    pub string_list_values: Vec<String>,
    pub binary_list_values: Vec<String>,
    pub data_type: String,
}

/// The queue a batch came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// `arn:aws:sqs:<region>:<account>:<name>` (see `faas_api::sqs::QueueUrl::arn`).
    pub arn: String,
    pub region: String,
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "Records")]
    records: Vec<Record<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    message_id: &'a str,
    receipt_handle: &'a str,
    body: &'a str,
    attributes: &'a BTreeMap<String, String>,
    message_attributes: &'a BTreeMap<String, MessageAttribute>,
    md5_of_body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    md5_of_message_attributes: Option<&'a str>,
    event_source: &'static str,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: &'a str,
    aws_region: &'a str,
}

/// The record of `message` as filter patterns see it (Lambda's event filtering): the event's
/// record, with a body that is JSON parsed (so `{"body": {"type": [..]}}` reaches into it)
/// and any other body a string.
pub fn filter_record(source: &Source, message: &Message) -> serde_json::Value {
    let mut record = serde_json::to_value(record(source, message)).unwrap_or_default();
    if let Ok(body) = serde_json::from_str::<serde_json::Value>(&message.body) {
        record["body"] = body;
    }
    record
}

fn record<'a>(source: &'a Source, m: &'a Message) -> Record<'a> {
    Record {
        message_id: &m.message_id,
        receipt_handle: &m.receipt_handle,
        body: &m.body,
        attributes: &m.attributes,
        message_attributes: &m.message_attributes,
        md5_of_body: &m.md5_of_body,
        md5_of_message_attributes: m.md5_of_message_attributes.as_deref(),
        event_source: "aws:sqs",
        event_source_arn: &source.arn,
        aws_region: &source.region,
    }
}

/// The event JSON for `messages` from `source`.
pub fn lambda_event(source: &Source, messages: &[Message]) -> Vec<u8> {
    let event = Event {
        records: messages.iter().map(|m| record(source, m)).collect(),
    };
    // Serializing strings and maps of strings cannot fail.
    serde_json::to_vec(&event).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            message_id: "059f36b4-87a3-44ab-83d2-661975830a7d".into(),
            receipt_handle: "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a".into(),
            body: "Test message.".into(),
            attributes: [
                ("ApproximateReceiveCount", "1"),
                ("SentTimestamp", "1545082649183"),
                ("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
                ("ApproximateFirstReceiveTimestamp", "1545082649185"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            message_attributes: BTreeMap::new(),
            md5_of_body: "e4e68fb7bd0e697a0ae8f1bb342846b3".into(),
            md5_of_message_attributes: None,
        }
    }

    #[test]
    fn the_event_has_lambdas_shape_and_key_order() {
        let source = Source {
            arn: "arn:aws:sqs:us-east-2:123456789012:my-queue".into(),
            region: "us-east-2".into(),
        };
        let json = String::from_utf8(lambda_event(&source, &[message()])).expect("utf-8");
        assert_eq!(
            json,
            concat!(
                r#"{"Records":[{"messageId":"059f36b4-87a3-44ab-83d2-661975830a7d","#,
                r#""receiptHandle":"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a","body":"Test message.","#,
                r#""attributes":{"ApproximateFirstReceiveTimestamp":"1545082649185","#,
                r#""ApproximateReceiveCount":"1","SenderId":"AIDAIENQZJOLO23YVJ4VO","#,
                r#""SentTimestamp":"1545082649183"},"messageAttributes":{},"#,
                r#""md5OfBody":"e4e68fb7bd0e697a0ae8f1bb342846b3","eventSource":"aws:sqs","#,
                r#""eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:my-queue","#,
                r#""awsRegion":"us-east-2"}]}"#
            )
        );
    }

    #[test]
    fn message_attributes_are_lower_camel_with_empty_lists() {
        let mut m = message();
        m.message_attributes.insert(
            "Attr1".into(),
            MessageAttribute {
                string_value: Some("v".into()),
                data_type: "String".into(),
                ..MessageAttribute::default()
            },
        );
        m.message_attributes.insert(
            "Blob".into(),
            MessageAttribute {
                binary_value: Some("AAE=".into()),
                data_type: "Binary".into(),
                ..MessageAttribute::default()
            },
        );
        m.md5_of_message_attributes = Some("00484c68...".into());
        let source = Source {
            arn: "arn:aws:sqs:eu-west-3:123456789012:q".into(),
            region: "eu-west-3".into(),
        };
        let event: serde_json::Value =
            serde_json::from_slice(&lambda_event(&source, &[m])).expect("json");
        let record = &event["Records"][0];
        assert_eq!(
            record["messageAttributes"]["Attr1"],
            serde_json::json!({"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"})
        );
        assert_eq!(
            record["messageAttributes"]["Blob"],
            serde_json::json!({"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"})
        );
        assert_eq!(record["md5OfMessageAttributes"], "00484c68...");
    }
}
