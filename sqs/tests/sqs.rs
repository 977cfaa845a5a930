//! SQS pollers against a real SQS-protocol server (moto, on loopback): Lambda's event-source
//! semantics end to end, with a recording function target standing in for the platform's
//! invocation path (the gateway's own tests run the real one).
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use bytes::Bytes;
use faas_api::sqs::QueueUrl;
use faas_e2e::moto::{Moto, moto};
use faas_invoke::FunctionTarget;
use faas_invoke::{CallContext, ResponseBody, full_body};
use faas_sqs::{Clients, Poller, SqsMetrics, TriggerConfig, TriggerState, TriggerStatus};
use http::{HeaderMap, Request, Response};
use serde_json::Value;

/// What the function answers for one delivery.
struct Answer {
    status: u16,
    body: String,
    delay: Duration,
}

impl Answer {
    fn ok() -> Answer {
        Answer {
            status: 200,
            body: String::new(),
            delay: Duration::ZERO,
        }
    }
}

#[derive(Clone)]
struct Delivery {
    headers: HeaderMap,
    raw: Bytes,
    event: Value,
}

impl Delivery {
    fn bodies(&self) -> Vec<String> {
        self.records()
            .iter()
            .map(|r| r["body"].as_str().unwrap().to_owned())
            .collect()
    }

    fn records(&self) -> Vec<Value> {
        self.event["Records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

type Behaviour = dyn Fn(&Delivery, usize) -> Answer + Send + Sync;

/// A function that records every batch and answers as `behaviour` says (given the delivery
/// and how many deliveries came before it). It also checks that no FIFO group is ever in
/// two batches at once.
struct Recorder {
    deliveries: Mutex<Vec<Delivery>>,
    behaviour: Box<Behaviour>,
    groups_in_flight: Mutex<HashSet<String>>,
    group_overlap: AtomicBool,
}

impl Recorder {
    fn new(behaviour: impl Fn(&Delivery, usize) -> Answer + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Recorder {
            deliveries: Mutex::new(Vec::new()),
            behaviour: Box::new(behaviour),
            groups_in_flight: Mutex::new(HashSet::new()),
            group_overlap: AtomicBool::new(false),
        })
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// Every body delivered, in delivery order, repeats included.
    fn bodies(&self) -> Vec<String> {
        self.deliveries()
            .iter()
            .flat_map(Delivery::bodies)
            .collect()
    }
}

struct GroupsDone<'a>(&'a Recorder, Vec<String>);
impl Drop for GroupsDone<'_> {
    fn drop(&mut self) {
        let mut groups = self.0.groups_in_flight.lock().unwrap();
        for g in &self.1 {
            groups.remove(g);
        }
    }
}

impl FunctionTarget for Recorder {
    fn call(
        &self,
        _function: &str,
        request: Request<Bytes>,
        _ctx: CallContext,
    ) -> Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send + '_>> {
        let (parts, raw) = request.into_parts();
        let event: Value = serde_json::from_slice(&raw).expect("the event is JSON");
        let delivery = Delivery {
            headers: parts.headers,
            raw,
            event,
        };
        let groups: Vec<String> = delivery
            .records()
            .iter()
            .filter_map(|r| {
                r["attributes"]["MessageGroupId"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        {
            let mut in_flight = self.groups_in_flight.lock().unwrap();
            for g in &groups {
                if !in_flight.insert(g.clone()) {
                    self.group_overlap.store(true, Ordering::SeqCst);
                }
            }
        }
        let answer = {
            let mut deliveries = self.deliveries.lock().unwrap();
            let before = deliveries.len();
            deliveries.push(delivery.clone());
            (self.behaviour)(&delivery, before)
        };
        Box::pin(async move {
            let _done = GroupsDone(self, groups);
            tokio::time::sleep(answer.delay).await;
            let mut response = Response::new(full_body(answer.body));
            *response.status_mut() = http::StatusCode::from_u16(answer.status).unwrap();
            response
        })
    }
}

fn config(url: &str, function: &str) -> TriggerConfig {
    TriggerConfig {
        function: function.to_owned(),
        queue_url: url.to_owned(),
        queue: QueueUrl::parse(url).unwrap(),
        batch_size: 10,
        batch_window: Duration::ZERO,
        max_concurrency: 5,
        report_batch_item_failures: false,
        enabled: true,
        filters: Vec::new(),
        function_timeout: Duration::from_secs(30),
        long_poll: Duration::from_secs(20),
    }
}

fn start(moto: &Moto, config: TriggerConfig, target: &Arc<Recorder>) -> Poller {
    Poller::start(
        config,
        Arc::new(Clients::new(moto.sdk_config())),
        Arc::clone(target) as Arc<dyn FunctionTarget>,
        &SqsMetrics::unregistered(),
    )
}

/// Polls `check` every 50 ms for up to `within`.
async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {within:?} waiting for: {what}");
}

/// Waits until the poller has counted `deleted` deletes. The queue empties when SQS has
/// taken a delete, a moment before the poller counts it (under load, long enough for a
/// status read between the two to see one fewer).
async fn deletes_counted(poller: &Poller, deleted: u64) {
    eventually(
        &format!("the poller counts {deleted} deletes"),
        Duration::from_secs(10),
        || poller.status().deleted >= deleted,
    )
    .await;
}

/// Waits until the queue holds nothing, visible or in flight.
async fn drained(moto: &Moto, url: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let counts = moto.counts(url).await;
        if counts == (0, 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queue {url} still holds {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn unique(name: &str) -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_delivered_and_deleted_exactly_once() {
    let moto = moto();
    let name = unique("once");
    let url = moto.create_queue(&name, &[]).await;
    let mut sent = HashSet::new();
    for i in 0..35 {
        sent.insert(moto.send(&url, &format!("job {i}")).await);
    }
    let target = Recorder::new(|_, _| Answer::ok());
    let poller = start(moto, config(&url, "once"), &target);
    eventually("35 messages delivered", Duration::from_secs(30), || {
        target.bodies().len() >= 35
    })
    .await;
    drained(moto, &url, Duration::from_secs(10)).await;
    let ids: Vec<String> = target
        .deliveries()
        .iter()
        .flat_map(|d| d.records())
        .map(|r| r["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 35, "a message was delivered twice");
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), sent);
    assert!(target.deliveries().iter().all(|d| d.records().len() <= 10));
    deletes_counted(&poller, 35).await;
    let status = poller.status();
    assert_eq!(status.state, TriggerState::Polling);
    assert_eq!(
        (status.received, status.deleted, status.failed),
        (35, 35, 0)
    );
    poller.stop(Some(Duration::from_secs(5))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_has_lambdas_shape_field_by_field() {
    let moto = moto();
    let name = unique("shape");
    let url = moto.create_queue(&name, &[]).await;
    let sent = moto
        .client()
        .send_message()
        .queue_url(&url)
        .message_body("{\"order\": 42}")
        .message_attributes(
            "color",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("blue")
                .build()
                .unwrap(),
        )
        .message_attributes(
            "size",
            MessageAttributeValue::builder()
                .data_type("Number.int")
                .string_value("7")
                .build()
                .unwrap(),
        )
        .message_attributes(
            "blob",
            MessageAttributeValue::builder()
                .data_type("Binary")
                .binary_value(aws_sdk_sqs::primitives::Blob::new(vec![0u8, 1, 2, 255]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let target = Recorder::new(|_, _| Answer::ok());
    let poller = start(moto, config(&url, "shape"), &target);
    eventually("one delivery", Duration::from_secs(30), || {
        !target.deliveries().is_empty()
    })
    .await;
    poller.stop(Some(Duration::from_secs(5))).await;
    let delivery = &target.deliveries()[0];
    assert_eq!(delivery.headers["x-faas-trigger"], "sqs");
    assert_eq!(delivery.headers["content-type"], "application/json");
    let record = &delivery.records()[0];
    let keys: Vec<&str> = record
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // serde_json's map is ordered by key here; the raw bytes carry Lambda's order.
    let raw = String::from_utf8(delivery.raw.to_vec()).unwrap();
    let order = [
        "\"messageId\"",
        "\"receiptHandle\"",
        "\"body\"",
        "\"attributes\"",
        "\"messageAttributes\"",
        "\"md5OfBody\"",
        "\"md5OfMessageAttributes\"",
        "\"eventSource\"",
        "\"eventSourceARN\"",
        "\"awsRegion\"",
    ];
    let positions: Vec<usize> = order.iter().map(|k| raw.find(k).unwrap()).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "key order: {raw}"
    );
    assert_eq!(keys.len(), order.len(), "{keys:?}");
    assert!(raw.starts_with("{\"Records\":[{\"messageId\":"), "{raw}");

    assert_eq!(record["messageId"], sent.message_id().unwrap());
    assert!(!record["receiptHandle"].as_str().unwrap().is_empty());
    assert_eq!(record["body"], "{\"order\": 42}");
    assert_eq!(record["md5OfBody"], sent.md5_of_message_body().unwrap());
    assert_eq!(
        record["md5OfMessageAttributes"],
        sent.md5_of_message_attributes().unwrap()
    );
    assert_eq!(record["eventSource"], "aws:sqs");
    assert_eq!(record["eventSourceARN"], moto.arn_of(&name));
    assert_eq!(record["awsRegion"], faas_e2e::moto::REGION);
    let attributes = record["attributes"].as_object().unwrap();
    for key in [
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    ] {
        assert!(
            attributes[key].is_string(),
            "{key} must be a string: {attributes:?}"
        );
    }
    assert_eq!(attributes["ApproximateReceiveCount"], "1");
    assert!(
        attributes["SentTimestamp"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    let attrs = &record["messageAttributes"];
    assert_eq!(
        attrs["color"],
        serde_json::json!({"stringValue": "blue", "stringListValues": [], "binaryListValues": [], "dataType": "String"})
    );
    assert_eq!(
        attrs["size"],
        serde_json::json!({"stringValue": "7", "stringListValues": [], "binaryListValues": [], "dataType": "Number.int"})
    );
    assert_eq!(
        attrs["blob"],
        serde_json::json!({"binaryValue": "AAEC/w==", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_events_carry_group_sequence_and_deduplication_ids() {
    let moto = moto();
    let name = format!("{}.fifo", unique("fifo-shape"));
    let url = moto
        .create_queue(&name, &[(QueueAttributeName::FifoQueue, "true")])
        .await;
    moto.send_fifo(&url, "a", "g1", "d1").await;
    let target = Recorder::new(|_, _| Answer::ok());
    let poller = start(moto, config(&url, "fifo-shape"), &target);
    eventually("one delivery", Duration::from_secs(30), || {
        !target.deliveries().is_empty()
    })
    .await;
    poller.stop(Some(Duration::from_secs(5))).await;
    let record = &target.deliveries()[0].records()[0];
    let attributes = &record["attributes"];
    assert_eq!(attributes["MessageGroupId"], "g1");
    assert_eq!(attributes["MessageDeduplicationId"], "d1");
    assert!(
        attributes["SequenceNumber"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .is_ok()
    );
    assert_eq!(record["eventSourceARN"], moto.arn_of(&name));
}

fn failures(delivery: &Delivery, failing: impl Fn(&str) -> bool) -> String {
    let items: Vec<Value> = delivery
        .records()
        .iter()
        .filter(|r| failing(r["body"].as_str().unwrap()))
        .map(|r| serde_json::json!({"itemIdentifier": r["messageId"]}))
        .collect();
    serde_json::json!({ "batchItemFailures": items }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_batch_failure_deletes_only_the_successes() {
    let moto = moto();
    let name = unique("partial");
    let url = moto
        .create_queue(&name, &[(QueueAttributeName::VisibilityTimeout, "1")])
        .await;
    for body in ["ok 1", "bad 1", "ok 2", "bad 2", "ok 3"] {
        moto.send(&url, body).await;
    }
    // Failures fail on their first delivery only.
    let target = Recorder::new(|d, _| {
        let body = failures(d, |b| {
            b.starts_with("bad")
                && !d
                    .records()
                    .iter()
                    .any(|r| r["body"] == b && r["attributes"]["ApproximateReceiveCount"] != "1")
        });
        Answer {
            body,
            ..Answer::ok()
        }
    });
    let mut cfg = config(&url, "partial");
    cfg.report_batch_item_failures = true;
    let poller = start(moto, cfg, &target);
    eventually(
        "the failures delivered again",
        Duration::from_secs(30),
        || {
            target
                .bodies()
                .iter()
                .filter(|b| b.starts_with("bad"))
                .count()
                >= 4
        },
    )
    .await;
    drained(moto, &url, Duration::from_secs(10)).await;
    let bodies = target.bodies();
    for ok in ["ok 1", "ok 2", "ok 3"] {
        assert_eq!(
            bodies.iter().filter(|b| *b == ok).count(),
            1,
            "{ok} was deleted after its first delivery: {bodies:?}"
        );
    }
    for bad in ["bad 1", "bad 2"] {
        assert_eq!(bodies.iter().filter(|b| *b == bad).count(), 2, "{bodies:?}");
    }
    deletes_counted(&poller, 5).await;
    let status = poller.status();
    assert_eq!((status.deleted, status.failed), (5, 2), "{status:?}");
    assert!(
        status
            .last_failure
            .unwrap()
            .contains("the function reported 2 of")
    );
    poller.stop(Some(Duration::from_secs(5))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_reaches_the_dlq_through_the_redrive_policy() {
    let moto = moto();
    let dlq_name = unique("poison-dlq");
    let dlq = moto.create_queue(&dlq_name, &[]).await;
    let name = unique("poison");
    let redrive = format!(
        "{{\"deadLetterTargetArn\":\"{}\",\"maxReceiveCount\":\"2\"}}",
        moto.arn_of(&dlq_name)
    );
    let url = moto
        .create_queue(
            &name,
            &[
                (QueueAttributeName::VisibilityTimeout, "1"),
                (QueueAttributeName::RedrivePolicy, &redrive),
            ],
        )
        .await;
    moto.send(&url, "poison").await;
    moto.send(&url, "fine").await;
    // The whole batch fails whenever it holds the poison message (a crash, a 500).
    let target = Recorder::new(|d, _| Answer {
        status: if d.bodies().iter().any(|b| b == "poison") {
            500
        } else {
            200
        },
        ..Answer::ok()
    });
    let mut cfg = config(&url, "poison");
    cfg.batch_size = 1;
    let poller = start(moto, cfg, &target);
    let mut in_dlq = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_dlq.is_empty() {
        assert!(
            Instant::now() < deadline,
            "poison never reached the DLQ: {:?}",
            target.bodies()
        );
        in_dlq = moto.receive_bodies(&dlq, Duration::from_secs(1)).await;
    }
    assert_eq!(in_dlq, vec!["poison".to_owned()]);
    drained(moto, &url, Duration::from_secs(10)).await;
    let bodies = target.bodies();
    assert_eq!(
        bodies.iter().filter(|b| *b == "poison").count(),
        2,
        "maxReceiveCount 2: {bodies:?}"
    );
    assert_eq!(bodies.iter().filter(|b| *b == "fine").count(), 1);
    deletes_counted(&poller, 1).await;
    let status = poller.status();
    assert_eq!((status.deleted, status.failed), (1, 2));
    assert!(status.last_failure.unwrap().contains("HTTP 500"));
    poller.stop(Some(Duration::from_secs(5))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_groups_stay_in_order_across_failures() {
    let moto = moto();
    let name = format!("{}.fifo", unique("order"));
    let url = moto
        .create_queue(
            &name,
            &[
                (QueueAttributeName::FifoQueue, "true"),
                (QueueAttributeName::VisibilityTimeout, "1"),
            ],
        )
        .await;
    for i in 1..=6 {
        moto.send_fifo(&url, &format!("a{i}"), "a", &format!("a{i}"))
            .await;
        if i <= 4 {
            moto.send_fifo(&url, &format!("b{i}"), "b", &format!("b{i}"))
                .await;
        }
    }
    // a3 fails on its first delivery; everything after it in group a must wait for it.
    let processed: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let seen = Arc::clone(&processed);
    let target = Recorder::new(move |d, _| {
        let mut failed_group: HashSet<String> = HashSet::new();
        let mut failed = Vec::new();
        for r in d.records() {
            let body = r["body"].as_str().unwrap().to_owned();
            let group = r["attributes"]["MessageGroupId"]
                .as_str()
                .unwrap()
                .to_owned();
            let first = r["attributes"]["ApproximateReceiveCount"] == "1";
            if failed_group.contains(&group) || (body == "a3" && first) {
                // Lambda's FIFO contract: report the failure and everything after it.
                failed_group.insert(group);
                failed.push(serde_json::json!({"itemIdentifier": r["messageId"]}));
            } else {
                seen.lock().unwrap().entry(group).or_default().push(body);
            }
        }
        Answer {
            body: serde_json::json!({"batchItemFailures": failed}).to_string(),
            ..Answer::ok()
        }
    });
    let mut cfg = config(&url, "order");
    cfg.report_batch_item_failures = true;
    cfg.batch_size = 3;
    // moto's long poll keeps the FIFO group locks it saw when it started, so a group
    // unlocked during a 20 s poll waits for the next one (real SQS returns it at once).
    cfg.long_poll = Duration::from_secs(1);
    // One batch at a time. moto's threaded server can hand one group to two concurrent
    // receives, and when several messages of a group come back from a failure together it
    // unlocks the group at the last of them, delivering it first: both break FIFO order on
    // moto's side (real SQS locks a group while any of its messages is in flight), and made
    // this test fail now and then with the poller doing the right thing.
    cfg.max_concurrency = 1;
    let poller = start(moto, cfg, &target);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let done = processed
            .lock()
            .unwrap()
            .values()
            .map(Vec::len)
            .sum::<usize>();
        if done >= 10 {
            break;
        }
        if Instant::now() > deadline {
            let queue = moto.counts(&url).await;
            panic!(
                "not all processed: {:?}; deliveries {:?}; queue {queue:?}; {:?}",
                processed.lock().unwrap(),
                target
                    .deliveries()
                    .iter()
                    .map(Delivery::bodies)
                    .collect::<Vec<_>>(),
                poller.status(),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drained(moto, &url, Duration::from_secs(10)).await;
    let processed = processed.lock().unwrap().clone();
    assert_eq!(processed["a"], ["a1", "a2", "a3", "a4", "a5", "a6"]);
    assert_eq!(processed["b"], ["b1", "b2", "b3", "b4"]);
    assert!(
        !target.group_overlap.load(Ordering::SeqCst),
        "a group was in two batches at once"
    );
    assert!(target.bodies().iter().filter(|b| *b == "a3").count() == 2);
    poller.stop(Some(Duration::from_secs(5))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_the_visibility_timeout_is_not_redelivered() {
    let moto = moto();
    let name = unique("slow");
    let url = moto
        .create_queue(&name, &[(QueueAttributeName::VisibilityTimeout, "2")])
        .await;
    moto.send(&url, "slow job").await;
    let target = Recorder::new(|_, _| Answer {
        delay: Duration::from_secs(6),
        ..Answer::ok()
    });
    let poller = start(moto, config(&url, "slow"), &target);
    eventually("delivered", Duration::from_secs(30), || {
        !target.deliveries().is_empty()
    })
    .await;
    // Three visibility timeouts pass while it runs; the poller keeps receiving meanwhile.
    tokio::time::sleep(Duration::from_secs(6)).await;
    drained(moto, &url, Duration::from_secs(10)).await;
    assert_eq!(target.bodies(), ["slow job"], "redelivered while running");
    deletes_counted(&poller, 1).await;
    assert_eq!(poller.status().deleted, 1);
    poller.stop(Some(Duration::from_secs(5))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_with_a_batch_in_flight_releases_it_at_once() {
    let moto = moto();
    let name = unique("release");
    // A long visibility timeout: without the release, the messages would be stuck for 10 min.
    let url = moto
        .create_queue(&name, &[(QueueAttributeName::VisibilityTimeout, "600")])
        .await;
    moto.send(&url, "long 1").await;
    moto.send(&url, "long 2").await;
    let target = Recorder::new(|_, _| Answer {
        delay: Duration::from_secs(3600),
        ..Answer::ok()
    });
    let poller = start(moto, config(&url, "release"), &target);
    eventually("both in flight", Duration::from_secs(30), || {
        target.bodies().len() == 2
    })
    .await;
    let stopping = Instant::now();
    poller.stop(Some(Duration::from_secs(1))).await;
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    let mut back = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while back.len() < 2 && Instant::now() < deadline {
        back.extend(moto.receive_bodies(&url, Duration::from_secs(1)).await);
    }
    back.sort();
    assert_eq!(
        back,
        ["long 1", "long 2"],
        "released messages are receivable again"
    );
}

/// ARCHITECTURE.md: a receive that is open when shutdown starts is not cut short (SQS may
/// already have handed it messages); what it gets is released, not delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_open_at_shutdown_releases_what_it_gets() {
    let moto = moto();
    let name = unique("open-receive");
    let url = moto
        .create_queue(&name, &[(QueueAttributeName::VisibilityTimeout, "600")])
        .await;
    let target = Recorder::new(|_, _| Answer::ok());
    let mut cfg = config(&url, "open-receive");
    cfg.long_poll = Duration::from_secs(5);
    let poller = start(moto, cfg, &target);
    // The queue is empty: the poller sits in a long poll.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopping = tokio::spawn(poller.stop(Some(Duration::from_secs(1))));
    tokio::time::sleep(Duration::from_millis(200)).await;
    moto.send(&url, "arrived while stopping").await;
    tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .expect("stopped within the long poll")
        .unwrap();
    assert!(target.bodies().is_empty(), "delivered after stop began");
    let out = moto
        .client()
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(2)
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .send()
        .await
        .unwrap();
    let [message] = out.messages() else {
        panic!("the message is not receivable (hidden for the 600 s visibility?)");
    };
    let count = message.attributes().and_then(|a| {
        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
    });
    assert_eq!(
        count.map(String::as_str),
        Some("2"),
        "received once by the open receive, released, received again here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_lets_a_batch_finish_within_the_grace_period() {
    let moto = moto();
    let name = unique("grace");
    let url = moto.create_queue(&name, &[]).await;
    moto.send(&url, "almost done").await;
    let target = Recorder::new(|_, _| Answer {
        delay: Duration::from_millis(1500),
        ..Answer::ok()
    });
    let poller = start(moto, config(&url, "grace"), &target);
    eventually("in flight", Duration::from_secs(30), || {
        !target.deliveries().is_empty()
    })
    .await;
    poller.stop(Some(Duration::from_secs(10))).await;
    drained(moto, &url, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_is_reported_and_retried_while_others_run() {
    let moto = moto();
    let missing_name = unique("missing");
    let missing_url = moto.url_of(&missing_name);
    let good_url = moto.create_queue(&unique("neighbour"), &[]).await;
    let target = Recorder::new(|_, _| Answer::ok());
    let missing = start(moto, config(&missing_url, "missing"), &target);
    let good = start(moto, config(&good_url, "neighbour"), &target);
    let status_of = |p: &Poller| -> TriggerStatus { p.status() };
    eventually("the error reported", Duration::from_secs(20), || {
        status_of(&missing).state == TriggerState::Error
    })
    .await;
    let status = missing.status();
    let message = status.message.unwrap();
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains(&missing_name), "{message}");
    // The neighbour is unaffected.
    moto.send(&good_url, "hello").await;
    eventually("the neighbour delivered", Duration::from_secs(20), || {
        target.bodies() == ["hello"]
    })
    .await;
    // Fixing the source (creating the queue) recovers without a restart.
    moto.create_queue(&missing_name, &[]).await;
    moto.send(&missing_url, "late").await;
    eventually("recovered", Duration::from_secs(30), || {
        target.bodies().contains(&"late".to_owned())
    })
    .await;
    assert_eq!(missing.status().state, TriggerState::Polling);
    missing.stop(Some(Duration::from_secs(5))).await;
    good.stop(Some(Duration::from_secs(5))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_reported() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/123456789012/nowhere");
    let moto = moto();
    let mut sdk = moto.sdk_config().into_builder();
    sdk.set_endpoint_url(None);
    let target = Recorder::new(|_, _| Answer::ok());
    let poller = Poller::start(
        config(&url, "nowhere"),
        Arc::new(Clients::new(sdk.build())),
        Arc::clone(&target) as Arc<dyn FunctionTarget>,
        &SqsMetrics::unregistered(),
    );
    eventually("the error reported", Duration::from_secs(20), || {
        poller.status().state == TriggerState::Error
    })
    .await;
    let message = poller.status().message.unwrap();
    assert!(message.contains("GetQueueAttributes on"), "{message}");
    assert!(message.contains("retrying in"), "{message}");
    poller.stop(Some(Duration::from_secs(1))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_receive_while_max_concurrency_batches_are_in_flight() {
    let moto = moto();
    let name = unique("pressure");
    let url = moto.create_queue(&name, &[]).await;
    for i in 0..30 {
        moto.send(&url, &format!("m{i}")).await;
    }
    let gate = Arc::new(AtomicBool::new(false));
    let open = Arc::clone(&gate);
    let target = Recorder::new(move |_, _| Answer {
        delay: if open.load(Ordering::SeqCst) {
            Duration::ZERO
        } else {
            Duration::from_secs(3)
        },
        ..Answer::ok()
    });
    let mut cfg = config(&url, "pressure");
    cfg.max_concurrency = 1;
    cfg.batch_size = 5;
    let poller = start(moto, cfg, &target);
    eventually("one batch in flight", Duration::from_secs(30), || {
        poller.status().batches_in_flight == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Still one batch: the other 25 messages stay in the queue, visible.
    assert_eq!(target.deliveries().len(), 1);
    assert_eq!(moto.counts(&url).await, (25, 5));
    gate.store(true, Ordering::SeqCst);
    eventually("all delivered", Duration::from_secs(30), || {
        target.bodies().len() == 30
    })
    .await;
    drained(moto, &url, Duration::from_secs(10)).await;
    poller.stop(Some(Duration::from_secs(5))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_window_gathers_more_than_ten_messages() {
    let moto = moto();
    let name = unique("window");
    let url = moto.create_queue(&name, &[]).await;
    for i in 0..25 {
        moto.send(&url, &format!("w{i}")).await;
    }
    let target = Recorder::new(|_, _| Answer::ok());
    let mut cfg = config(&url, "window");
    cfg.batch_size = 25;
    cfg.batch_window = Duration::from_secs(2);
    let poller = start(moto, cfg, &target);
    eventually("delivered", Duration::from_secs(30), || {
        target.bodies().len() >= 25
    })
    .await;
    assert_eq!(target.deliveries().len(), 1, "one batch of 25");
    drained(moto, &url, Duration::from_secs(10)).await;
    poller.stop(Some(Duration::from_secs(5))).await;
}

/// Lambda's event filtering: only messages some filter matches reach the function; the
/// rest (another type, a body that is not JSON) are deleted without a call, counted, and
/// nothing is left in the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_no_filter_matches_are_deleted_without_a_call() {
    let moto = moto();
    let name = unique("filtered");
    let url = moto.create_queue(&name, &[]).await;
    for body in [
        r#"{"type": "order", "total": 120}"#,
        r#"{"type": "order", "total": 5}"#,
        r#"{"type": "refund", "total": 300}"#,
        "plain text",
        r#"{"type": "audit"}"#,
    ] {
        moto.send(&url, body).await;
    }
    let mut config = config(&url, "filtered");
    config.filters = [
        r#"{"body": {"type": ["order"], "total": [{"numeric": [">=", 100]}]}}"#,
        r#"{"body": {"type": [{"prefix": "aud"}]}}"#,
    ]
    .iter()
    .map(|p| faas_api::filter::Pattern::parse(p).unwrap())
    .collect();
    let target = Recorder::new(|_, _| Answer::ok());
    let poller = start(moto, config, &target);
    eventually(
        "3 filtered out, 2 delivered",
        Duration::from_secs(30),
        || {
            let status = poller.status();
            status.filtered == 3 && status.deleted == 2
        },
    )
    .await;
    drained(moto, &url, Duration::from_secs(10)).await;
    let mut bodies = target.bodies();
    bodies.sort();
    assert_eq!(
        bodies,
        [r#"{"type": "audit"}"#, r#"{"type": "order", "total": 120}"#]
    );
    poller.stop(Some(Duration::from_secs(5))).await;
}

/// A function at its concurrency limit answers 429: the batch is delivered again after a
/// short wait, within the visibility window, instead of failing and waiting out the
/// visibility timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_batch_is_delivered_again_within_the_visibility_window() {
    let moto = moto();
    let name = unique("throttled");
    let url = moto
        .create_queue(&name, &[(QueueAttributeName::VisibilityTimeout, "60")])
        .await;
    moto.send(&url, "busy day").await;
    let target = Recorder::new(|_, before| match before {
        0..=2 => Answer {
            status: 429,
            body: r#"{"reason":"TooManyRequests"}"#.to_owned(),
            delay: Duration::ZERO,
        },
        _ => Answer::ok(),
    });
    let started = Instant::now();
    let poller = start(moto, config(&url, "throttled"), &target);
    eventually(
        "delivered past the throttling",
        Duration::from_secs(20),
        || poller.status().deleted == 1,
    )
    .await;
    // Well inside the 60 s visibility timeout: no redelivery was waited for.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(target.deliveries().len(), 4);
    let status = poller.status();
    assert_eq!((status.throttled, status.failed), (3, 0));
    drained(moto, &url, Duration::from_secs(10)).await;
    poller.stop(Some(Duration::from_secs(5))).await;
}

/// The most batches `poller` had in flight at once while `until` was false, sampled every
/// 20 ms (for at most 30 s).
async fn most_in_flight(poller: &Poller, mut until: impl FnMut() -> bool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut most = 0;
    while !until() && Instant::now() < deadline {
        most = most.max(poller.status().batches_in_flight);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    most
}

/// As Lambda's poller: one batch at first, more while receives come back full (a backlog),
/// up to maxConcurrency and never past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_grows_with_a_backlog_up_to_max_concurrency() {
    let moto = moto();
    let name = unique("ramp");
    let url = moto.create_queue(&name, &[]).await;
    for i in 0..40 {
        moto.send(&url, &format!("m{i}")).await;
    }
    let target = Recorder::new(|_, _| Answer {
        delay: Duration::from_millis(400),
        ..Answer::ok()
    });
    let mut cfg = config(&url, "ramp");
    cfg.batch_size = 2;
    cfg.max_concurrency = 4;
    let poller = start(moto, cfg, &target);
    let most = most_in_flight(&poller, || target.bodies().len() >= 40).await;
    assert!((3..=4).contains(&most), "at most {most} batches in flight");
    assert_eq!(poller.status().max_concurrency, 4);
    drained(moto, &url, Duration::from_secs(10)).await;
    poller.stop(Some(Duration::from_secs(5))).await;
}

/// A function failing its batches is not handed more of them at once: each failure halves
/// the trigger's concurrency, whatever the backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_batches_keep_concurrency_low() {
    let moto = moto();
    let name = unique("struggling");
    let url = moto
        .create_queue(&name, &[(QueueAttributeName::VisibilityTimeout, "30")])
        .await;
    for i in 0..40 {
        moto.send(&url, &format!("m{i}")).await;
    }
    let target = Recorder::new(|_, _| Answer {
        status: 500,
        delay: Duration::from_millis(200),
        ..Answer::ok()
    });
    let mut cfg = config(&url, "struggling");
    cfg.batch_size = 2;
    cfg.max_concurrency = 5;
    let poller = start(moto, cfg, &target);
    let started = Instant::now();
    let most = most_in_flight(&poller, || started.elapsed() > Duration::from_secs(3)).await;
    assert!(most <= 2, "{most} failing batches in flight at once");
    assert!(target.deliveries().len() >= 3, "it kept trying");
    poller.stop(Some(Duration::from_secs(5))).await;
}
