//! Moving dead letters back (`faas_sqs::redrive`) against a real SQS-protocol server (moto, on
//! loopback). moto has no `StartMessageMoveTask` (it answers 500), so these go the copy way,
//! which is also what any server without the move task gets; the move task itself is only
//! asked of real SQS.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use faas_api::Function;
use faas_e2e::moto::{Moto, moto};
use faas_sqs::Clients;
use faas_sqs::redrive::{
    Redrive, RedriveError, move_messages, redrive_trigger, triggers_to_redrive,
};

fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A queue with a dead-letter queue; (queue URL, dead-letter queue URL).
async fn queue_with_dlq(moto: &Moto, name: &str, fifo: bool) -> (String, String) {
    let suffix = if fifo { ".fifo" } else { "" };
    let dlq_name = format!("{}{suffix}", unique(&format!("{name}-dlq")));
    let name = format!("{}{suffix}", unique(name));
    let fifo_attrs: Vec<(QueueAttributeName, &str)> = if fifo {
        vec![(QueueAttributeName::FifoQueue, "true")]
    } else {
        vec![]
    };
    let dlq = moto.create_queue(&dlq_name, &fifo_attrs).await;
    let policy = format!(
        "{{\"deadLetterTargetArn\":\"{}\",\"maxReceiveCount\":\"3\"}}",
        moto.arn_of(&dlq_name)
    );
    let mut attrs = fifo_attrs.clone();
    attrs.push((QueueAttributeName::RedrivePolicy, &policy));
    let url = moto.create_queue(&name, &attrs).await;
    (url, dlq)
}

fn function_on(queues: &[&str]) -> Function {
    let triggers: Vec<String> = queues
        .iter()
        .map(|q| format!("{{\"queueUrl\": \"{q}\"}}"))
        .collect();
    serde_json::from_str(&format!(
        r#"{{"apiVersion": "faas.dev/v1alpha1", "kind": "Function", "metadata": {{"name": "worker"}},
            "spec": {{"runtime": {{"wasm": {{"source": "w.wasm"}}}}, "triggers": {{"sqs": [{}]}}}}}}"#,
        triggers.join(",")
    ))
    .unwrap()
}

async fn clients(moto: &Moto) -> Clients {
    Clients::new(moto.sdk_config())
}

/// Every message of `url` now: (body, string attribute `origin`, binary attribute `blob`).
async fn drain(moto: &Moto, url: &str) -> BTreeSet<(String, Option<String>, Option<Vec<u8>>)> {
    let mut all = BTreeSet::new();
    loop {
        let out = moto
            .client()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        if out.messages().is_empty() {
            return all;
        }
        for m in out.messages() {
            let attrs = m.message_attributes();
            all.insert((
                m.body().unwrap_or_default().to_owned(),
                attrs
                    .and_then(|a| a.get("origin"))
                    .and_then(|v| v.string_value().map(str::to_owned)),
                attrs
                    .and_then(|a| a.get("blob"))
                    .and_then(|v| v.binary_value().map(|b| b.as_ref().to_vec())),
            ));
            moto.client()
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_dead_letter_queue_is_moved_back_with_bodies_and_attributes() {
    let moto = moto();
    let (url, dlq) = queue_with_dlq(moto, "redrive", false).await;
    let mut want = BTreeSet::new();
    for i in 0..25 {
        let body = format!("job {i}");
        let blob = vec![0u8, 255, i as u8];
        moto.client()
            .send_message()
            .queue_url(&dlq)
            .message_body(&body)
            .message_attributes(
                "origin",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(format!("batch-{i}"))
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "blob",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(blob.clone()))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        want.insert((body, Some(format!("batch-{i}")), Some(blob)));
    }
    let function = function_on(&[&url]);
    let triggers = triggers_to_redrive(&function, None).unwrap();
    let done = redrive_trigger(&clients(moto).await, &triggers[0])
        .await
        .unwrap();
    assert_eq!(done.queue, url);
    assert_eq!(done.dead_letter_queue, dlq);
    let Redrive::Copied {
        moved,
        why_not_task,
    } = &done.outcome
    else {
        panic!("moto has no move task: {done:?}");
    };
    assert_eq!(*moved, 25);
    assert!(
        why_not_task.contains("StartMessageMoveTask"),
        "{why_not_task}"
    );
    assert_eq!(moto.counts(&dlq).await, (0, 0), "the dead letters are gone");
    assert_eq!(
        drain(moto, &url).await,
        want,
        "each back once, attributes kept"
    );
    let shown = serde_json::to_value(&done).unwrap();
    assert_eq!(shown["method"], "copy");
    assert_eq!(shown["moved"], 25);
    assert_eq!(shown["deadLetterQueue"], dlq.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_redrive_keeps_groups_and_is_not_deduplicated_away() {
    let moto = moto();
    let (url, dlq) = queue_with_dlq(moto, "redrive", true).await;
    // A message sent to the queue with deduplication id d0 is in flight there; its twin with
    // the same id waits in the dead-letter queue. (Real SQS remembers a deduplication id for 5
    // minutes even after the message is deleted; moto only while the message is in the queue,
    // hence the one in flight.)
    moto.send_fifo(&url, "charge order 7", "order-7", "d0")
        .await;
    let in_flight = moto
        .client()
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(in_flight.messages().len(), 1);
    moto.send_fifo(&dlq, "charge order 7", "order-7", "d0")
        .await;
    // Moved back within SQS's 5-minute window: a copy that reused d0 would be dropped by the
    // queue as a duplicate after being deleted from the dead letters, i.e. lost.
    let function = function_on(&[&url]);
    let triggers = triggers_to_redrive(&function, Some(&url)).unwrap();
    let done = redrive_trigger(&clients(moto).await, &triggers[0])
        .await
        .unwrap();
    assert!(
        matches!(done.outcome, Redrive::Copied { moved: 1, .. }),
        "{done:?}"
    );
    assert_eq!(
        moto.counts(&url).await,
        (1, 1),
        "the copy is in the queue beside the one in flight"
    );
    // The group is locked while its message is in flight: finish that one first.
    moto.client()
        .delete_message()
        .queue_url(&url)
        .receipt_handle(in_flight.messages()[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    let out = moto
        .client()
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId,
        )
        .send()
        .await
        .unwrap();
    let [message] = out.messages() else {
        panic!("one message back, got {:?}", out.messages());
    };
    assert_eq!(message.body(), Some("charge order 7"));
    let group = message
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId));
    assert_eq!(
        group.map(String::as_str),
        Some("order-7"),
        "in its message group"
    );
    assert_eq!(moto.counts(&dlq).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_redriven_says_why() {
    let moto = moto();
    let plain = moto.create_queue(&unique("no-dlq"), &[]).await;
    let function = function_on(&[&plain]);
    let triggers = triggers_to_redrive(&function, None).unwrap();
    let err = redrive_trigger(&clients(moto).await, &triggers[0])
        .await
        .unwrap_err();
    assert!(matches!(err, RedriveError::NoDeadLetterQueue(_)), "{err}");
    assert!(err.to_string().contains("has no RedrivePolicy"), "{err}");

    let err = triggers_to_redrive(
        &function,
        Some("https://sqs.eu-west-1.amazonaws.com/1/other"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "function worker has no SQS trigger on https://sqs.eu-west-1.amazonaws.com/1/other"
    );
    let none = function_on(&[]);
    assert_eq!(
        triggers_to_redrive(&none, None).unwrap_err().to_string(),
        "function worker has no SQS trigger"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selective_move_leaves_the_rest_visible_and_stops_at_its_limit() {
    let moto = moto();
    let (url, dlq) = queue_with_dlq(moto, "select", false).await;
    for i in 0..12 {
        moto.send(
            &dlq,
            &format!("{} {i}", if i % 2 == 0 { "keep" } else { "move" }),
        )
        .await;
    }
    let clients = clients(moto).await;
    let from = clients.queue(&dlq, None).await.unwrap();
    let to = clients.queue(&url, None).await.unwrap();
    let moved = move_messages(&from, Some(&to), |m| m.body.starts_with("move"), 4)
        .await
        .unwrap();
    assert_eq!(moved, 4, "the limit");
    let back = drain(moto, &url).await;
    assert_eq!(back.len(), 4);
    assert!(
        back.iter().all(|(b, _, _)| b.starts_with("move")),
        "{back:?}"
    );
    // Nothing taken stays hidden: the other 8 are visible at once.
    assert_eq!(moto.counts(&dlq).await, (8, 0));
    // Taking without a destination deletes (a discard).
    let discarded = move_messages(&from, None, |m| m.body.starts_with("keep"), 100)
        .await
        .unwrap();
    assert_eq!(discarded, 6);
    assert_eq!(moto.counts(&dlq).await, (2, 0));
    assert!(drain(moto, &url).await.is_empty());
}
