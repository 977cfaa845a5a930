//! Async calls end to end, in process: `POST /async-function/...` through the gateway's HTTP
//! server, the queue (an SQS queue on a real moto server with a redrive policy, and local
//! mode's SQLite table), the worker invoking a real guest (`examples/guests/hostile`),
//! retries, the callback to a loopback receiver, and dead letters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use bytes::Bytes;
use faas_gateway::async_call::{AsyncQueue, AsyncSettings, SqliteQueue, SqsQueue, Worker};
use faas_gateway::registry::Origin;
use faas_gateway::server::Exposure;
use faas_gateway::{GatewayConfig, Platform};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A platform serving the hostile guest as `hostile`, on a loopback port.
async fn platform(state: &std::path::Path) -> (Arc<Platform>, SocketAddr) {
    let platform = Platform::new(GatewayConfig::new(state.to_path_buf())).unwrap();
    let guest = faas_e2e::guest("hostile");
    let function: faas_api::Function = serde_yaml::from_str(&format!(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: hostile}}\n\
         spec:\n  runtime:\n    wasm: {{source: {}}}\n  timeout: 5s\n",
        guest.display()
    ))
    .unwrap();
    let bytes = Bytes::from(std::fs::read(&guest).unwrap());
    platform
        .apply(function, Ok(bytes), Origin::Api, None)
        .await
        .unwrap();
    // As `faas up` does once its folder is loaded: the worker waits for it.
    platform.set_ready();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(faas_gateway::server::serve_exposed(
        listener,
        Arc::clone(&platform),
        Exposure::Public,
        std::future::pending(),
    ));
    (platform, addr)
}

/// What a callback receiver got.
#[derive(Debug)]
struct Callback {
    headers: http::HeaderMap,
    body: Bytes,
}

/// A callback receiver on loopback.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Callback>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/done", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let headers = request.headers().clone();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let _ = tx.send(Callback { headers, body });
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (url, rx)
}

async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, http::HeaderMap, Value) {
    let mut all = vec![("host", "gateway.test")];
    all.extend_from_slice(headers);
    let reply = faas_e2e::send("POST", &format!("http://{addr}{path}"), &all, body).await;
    let value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status, reply.headers, value)
}

async fn next_callback(rx: &mut mpsc::UnboundedReceiver<Callback>, within: Duration) -> Callback {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("a callback in time")
        .expect("receiver running")
}

fn header(c: &Callback, name: &str) -> String {
    c.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The contract both queues must keep: accepted with an id, invoked, the result called
/// back; a failing call retried up to the limit, called back with its last answer and
/// dead-lettered; bad requests refused before anything is queued.
async fn contract(
    platform: &Arc<Platform>,
    gateway: SocketAddr,
    queue: Arc<dyn AsyncQueue>,
    settings: AsyncSettings,
) -> (String, Worker) {
    let _ = platform.async_queue.set(Arc::clone(&queue));
    let worker = Worker::start(platform, queue, settings);
    let (callback, mut callbacks) = receiver().await;

    let (status, headers, accepted) = post(
        gateway,
        "/async-function/hostile/echo?x=1",
        &[
            ("x-callback-url", &callback),
            ("content-type", "text/plain"),
        ],
        b"payload".to_vec(),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let id = headers
        .get("x-call-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(accepted["callId"], id.as_str());
    assert_eq!(accepted["status"], "queued");
    let done = next_callback(&mut callbacks, Duration::from_secs(20)).await;
    assert_eq!(header(&done, "x-call-id"), id);
    assert_eq!(header(&done, "x-function-status"), "200");
    assert_eq!(header(&done, "x-function-name"), "hostile");
    assert_eq!(header(&done, "x-faas-attempts"), "1");
    assert_eq!(done.body, Bytes::from_static(b"payload"));

    // A trap is a 500: retried, then called back once with the last answer.
    let (status, headers, _) = post(
        gateway,
        "/async-function/hostile/panic",
        &[("x-callback-url", &callback)],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 202);
    let failing = headers
        .get("x-call-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let done = next_callback(&mut callbacks, Duration::from_secs(30)).await;
    assert_eq!(header(&done, "x-call-id"), failing);
    assert_eq!(header(&done, "x-function-status"), "500");
    assert_eq!(header(&done, "x-faas-attempts"), "3");
    let metrics = platform.metrics.render();
    for line in [
        "faas_async_calls_total{function=\"hostile\",outcome=\"accepted\"} 2",
        "faas_async_calls_total{function=\"hostile\",outcome=\"succeeded\"} 1",
        "faas_async_calls_total{function=\"hostile\",outcome=\"retried\"} 2",
        "faas_async_calls_total{function=\"hostile\",outcome=\"dead_lettered\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // Refused before anything is queued.
    let refused = |reply: (u16, http::HeaderMap, Value), status: u16, reason: &str| {
        assert_eq!(
            (reply.0, reply.2["reason"].as_str()),
            (status, Some(reason)),
            "{}",
            reply.2
        );
    };
    let no_headers: &[(&str, &str)] = &[];
    refused(
        post(gateway, "/async-function/nope", no_headers, Vec::new()).await,
        404,
        "FunctionNotFound",
    );
    refused(
        post(
            gateway,
            "/async-function/hostile",
            &[("x-callback-url", "/relative")],
            Vec::new(),
        )
        .await,
        400,
        "BadCallbackUrl",
    );
    let huge = vec![b'x'; faas_gateway::async_call::MAX_ASYNC_BODY as usize + 1];
    refused(
        post(gateway, "/async-function/hostile", no_headers, huge).await,
        413,
        "BodyTooLarge",
    );
    // A declared length over the limit is refused before the body is read.
    refused(
        raw_declared(gateway, "/async-function/hostile").await,
        413,
        "BodyTooLarge",
    );
    assert!(
        platform
            .metrics
            .render()
            .contains("faas_async_calls_total{function=\"hostile\",outcome=\"accepted\"} 2"),
        "nothing refused was queued"
    );
    (failing, worker)
}

/// A request declaring a huge body, without sending it.
async fn raw_declared(addr: SocketAddr, path: &str) -> (u16, http::HeaderMap, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("POST {path} HTTP/1.1\r\nhost: t\r\ncontent-length: 999999999\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut buffer = vec![0; 4096];
    let n = stream.read(&mut buffer).await.unwrap();
    let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        status,
        http::HeaderMap::new(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// A queue `name` with `attributes` whose RedrivePolicy names its dead-letter queue
/// `name-dlq`: (queue URL, dead-letter queue URL).
async fn with_dead_letters(
    moto: &faas_e2e::moto::Moto,
    name: &str,
    attributes: &[(QueueAttributeName, &str)],
) -> (String, String) {
    let dlq_name = format!("{name}-dlq");
    let dlq = moto.create_queue(&dlq_name, &[]).await;
    let policy = format!(
        r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":"10"}}"#,
        moto.arn_of(&dlq_name)
    );
    let mut all = vec![(QueueAttributeName::RedrivePolicy, policy.as_str())];
    all.extend(attributes.iter().cloned());
    (moto.create_queue(name, &all).await, dlq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_queue_calls_back_retries_and_dead_letters() {
    let moto = faas_e2e::moto::moto();
    let (url, dlq) = with_dead_letters(
        moto,
        "async-calls",
        &[(QueueAttributeName::VisibilityTimeout, "30")],
    )
    .await;
    let clients = faas_sqs::client::Clients::new(moto.sdk_config());
    // A queue without a dead-letter queue is refused: failed calls would have nowhere to go.
    let bare = moto.create_queue("async-calls-no-dlq", &[]).await;
    let refused = SqsQueue::open(&clients, &bare)
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("RedrivePolicy"), "{refused}");
    let queue = Arc::new(SqsQueue::open(&clients, &url).await.unwrap());
    assert_eq!(queue.describe(), format!("sqs {url}"));
    let state = queue.inspect().await.unwrap();
    assert_eq!(state["deadLetterQueue"], dlq.as_str(), "{state}");
    assert_eq!(state["visibilityTimeoutSeconds"], 30);
    let state = tempfile::tempdir().unwrap();
    let (platform, gateway) = platform(state.path()).await;
    let settings = AsyncSettings {
        max_attempts: 3,
        // SQS counts visibility in whole seconds.
        retry_base: Duration::from_secs(1),
        // The receiver is on loopback.
        internal_callbacks: true,
        ..AsyncSettings::default()
    };
    // A message that is not a call (someone else wrote to the queue): dead-lettered as is.
    moto.send(&url, "not json at all").await;
    let (failing, worker) = contract(&platform, gateway, queue, settings).await;
    let mut dead = Vec::new();
    for _ in 0..20 {
        dead.extend(moto.receive_bodies(&dlq, Duration::from_secs(1)).await);
        if dead.len() >= 2 {
            break;
        }
    }
    assert!(dead.iter().any(|b| b == "not json at all"), "{dead:?}");
    let call = dead
        .iter()
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .find(|c| c["callId"] == failing.as_str())
        .unwrap_or_else(|| panic!("the failed call in the dead-letter queue: {dead:?}"));
    assert_eq!(call["function"], "hostile");
    assert_eq!(moto.counts(&url).await, (0, 0), "nothing left in the queue");
    // What operators see: both queues' depths, counted without receiving (the two dead
    // letters are in flight to the test's receive above).
    let state = platform
        .async_queue
        .get()
        .expect("the queue")
        .inspect()
        .await
        .unwrap();
    assert_eq!(
        state["messages"],
        json!({"visible": 0, "inFlight": 0}),
        "{state}"
    );
    assert_eq!(
        state["deadLetterMessages"],
        json!({"visible": 0, "inFlight": 2}),
        "{state}"
    );
    worker.shutdown(Duration::from_secs(25)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_queue_keeps_the_same_contract() {
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("async.db");
    let queue = Arc::new(SqliteQueue::open(&path).unwrap());
    let (platform, gateway) = platform(state.path()).await;
    let settings = AsyncSettings {
        max_attempts: 3,
        retry_base: Duration::from_millis(100),
        internal_callbacks: true,
        ..AsyncSettings::default()
    };
    let (failing, worker) = contract(&platform, gateway, Arc::clone(&queue) as _, settings).await;
    // What users see of it: GET /system/async (here on a listener that serves /system).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let management = listener.local_addr().unwrap();
    tokio::spawn(faas_gateway::server::serve(
        listener,
        Arc::clone(&platform),
        std::future::pending(),
    ));
    // The worker calls back before it settles the call (a crash in between repeats the
    // callback rather than losing it), so the dead letter may land just after the callback
    // the contract waited for: wait, bounded, for the queue to show it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let state = loop {
        let state = faas_e2e::get(&format!("http://{management}/system/async"))
            .await
            .json();
        if state["pending"] == 0 || tokio::time::Instant::now() >= deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(state["kind"], "sqlite", "{state}");
    assert_eq!(state["pending"], 0, "{state}");
    assert_eq!(
        state["deadLetters"][0]["callId"],
        failing.as_str(),
        "{state}"
    );
    assert_eq!(state["deadLetters"][0]["attempts"], 3, "{state}");
    // And on the dashboard: the dead letter with its function, attempts and last failure.
    let page = faas_e2e::get(&format!("http://{management}/ui/async")).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let row = html
        .split(&format!("data-call-id=\"{failing}\""))
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("no row for {failing}: {html}"));
    for shown in ["hostile", "<td>3</td>", "last answer 500"] {
        assert!(row.contains(shown), "{shown:?} not in {row}");
    }
    assert!(html.contains(r#"data-count="waiting">0<"#), "{html}");
    let dead = queue.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].call_id, failing);
    assert_eq!(dead[0].attempts, Some(3));
    assert!(dead[0].reason.contains("last answer 500"), "{:?}", dead[0]);
    assert_eq!(queue.pending().await.unwrap(), 0);
    // A restart (a call leased by a worker that died is run by the next one) is
    // a_sqlite_call_whose_worker_dies_is_run_by_the_next_worker: here the platform, which
    // holds the queue, lives on.
    worker.shutdown(Duration::from_secs(5)).await;
}

/// In a cluster anyone who reaches the ALB chooses the callback URL: unless allowed, a
/// callback to loopback or a private address is refused before any connection is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_to_internal_addresses_are_refused_unless_allowed() {
    let state = tempfile::tempdir().unwrap();
    let queue = Arc::new(SqliteQueue::open(&state.path().join("async.db")).unwrap());
    let (platform, gateway) = platform(state.path()).await;
    let _ = platform.async_queue.set(Arc::clone(&queue) as _);
    let settings = AsyncSettings {
        retry_base: Duration::from_millis(100),
        ..AsyncSettings::default()
    };
    assert!(!settings.internal_callbacks, "refused by default");
    let worker = Worker::start(&platform, Arc::clone(&queue) as _, settings);
    let (callback, mut callbacks) = receiver().await;
    let (status, _, _) = post(
        gateway,
        "/async-function/hostile/ok",
        &[("x-callback-url", &callback)],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 202);
    let failed = "faas_async_calls_total{function=\"hostile\",outcome=\"callback_failed\"} 1";
    for _ in 0..200 {
        if platform.metrics.render().contains(failed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(platform.metrics.render().contains(failed));
    assert!(
        callbacks.try_recv().is_err(),
        "no request reached the loopback receiver"
    );
    // The call itself succeeded and is done (settled right after the callback attempt).
    for _ in 0..200 {
        if queue.pending().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(queue.pending().await.unwrap(), 0);
    worker.shutdown(Duration::from_secs(5)).await;
}

/// Dead letters are shown with their request and put back (as new calls, attempt 1) or
/// deleted by call id, by function, or all; a selection that takes nothing changes nothing.
#[tokio::test]
async fn sqlite_dead_letters_are_shown_replayed_and_discarded_as_selected() {
    use faas_gateway::async_call::{AsyncCall, Selection};
    let state = tempfile::tempdir().unwrap();
    let queue = SqliteQueue::open(&state.path().join("async.db")).unwrap();
    let call = |id: &str, function: &str, body: &'static [u8]| AsyncCall {
        call_id: id.into(),
        function: function.into(),
        method: "POST".into(),
        path: "/orders?x=1".into(),
        headers: Vec::new(),
        body: Bytes::from_static(body),
        callback_url: None,
        accepted_at: "2026-12-07T03:00:00Z".into(),
    };
    let kill_all = async |queue: &SqliteQueue| {
        for delivery in queue.receive(10, Duration::from_secs(1)).await.unwrap() {
            queue
                .dead_letter(&delivery, "last answer 500")
                .await
                .unwrap();
        }
    };
    queue
        .send(&call("c1", "orders", b"{\"id\": 1}"))
        .await
        .unwrap();
    queue
        .send(&call("c2", "orders", &[0xff, 0x00]))
        .await
        .unwrap();
    queue.send(&call("c3", "billing", b"x")).await.unwrap();
    kill_all(&queue).await;

    let dead = queue.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 3, "{dead:?}");
    let c1 = dead.iter().find(|d| d.call_id == "c1").unwrap();
    assert_eq!(
        (
            c1.method.as_deref(),
            c1.path.as_deref(),
            c1.body.as_deref(),
            c1.body_bytes
        ),
        (Some("POST"), Some("/orders?x=1"), Some("{\"id\": 1}"), 9)
    );
    let c2 = dead.iter().find(|d| d.call_id == "c2").unwrap();
    assert_eq!(
        (c2.body.as_deref(), c2.body_base64.as_deref()),
        (None, Some("/wA="))
    );

    let one = Selection {
        call_id: Some("c1".into()),
        function: None,
    };
    let nobody = Selection {
        call_id: None,
        function: Some("nobody".into()),
    };
    assert_eq!(queue.replay(&nobody).await.unwrap().count, 0);
    assert_eq!(queue.replay(&one).await.unwrap().count, 1);
    assert_eq!(
        queue.replay(&one).await.unwrap().count,
        0,
        "no longer a dead letter"
    );
    let again = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].call.as_ref().unwrap().call_id, "c1");
    assert_eq!(again[0].attempt, 1, "a replayed call starts over");
    queue.complete(&again[0]).await.unwrap();

    let orders = Selection {
        call_id: None,
        function: Some("orders".into()),
    };
    assert_eq!(queue.discard(&orders).await.unwrap().count, 1, "c2");
    assert_eq!(
        queue.replay(&Selection::default()).await.unwrap().count,
        1,
        "c3"
    );
    assert!(queue.dead_letters().await.unwrap().is_empty());
    assert_eq!(queue.pending().await.unwrap(), 1);
}

/// In SQS, a replay sends the selected dead letters back to the queue and deletes them from
/// the dead-letter queue; the others are left visible there at once, for whoever reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_dead_letters_are_replayed_and_discarded_as_selected() {
    use faas_gateway::async_call::Selection;
    let moto = faas_e2e::moto::moto();
    let (url, dlq) = with_dead_letters(moto, "replay", &[]).await;
    let clients = faas_sqs::client::Clients::new(moto.sdk_config());
    let queue = SqsQueue::open(&clients, &url).await.unwrap();
    for (id, function) in [("c1", "orders"), ("c2", "billing")] {
        let call = faas_gateway::async_call::AsyncCall {
            call_id: id.into(),
            function: function.into(),
            method: "POST".into(),
            path: "/".into(),
            headers: Vec::new(),
            body: Bytes::from_static(b"{}"),
            callback_url: None,
            accepted_at: "2026-12-07T03:00:00Z".into(),
        };
        moto.send(&dlq, &call.encode()).await;
    }
    moto.send(&dlq, "not a call").await;
    // Shown by a peek: every reader still sees them at once.
    let state = queue.inspect().await.unwrap();
    let shown = state["deadLetters"].as_array().cloned().unwrap_or_default();
    assert_eq!(shown.len(), 3, "{state}");
    assert!(
        shown
            .iter()
            .any(|l| l["callId"] == "c1" && l["path"] == "/"),
        "{state}"
    );
    assert_eq!(moto.counts(&dlq).await, (3, 0), "peeking hides nothing");

    let orders = Selection {
        call_id: None,
        function: Some("orders".into()),
    };
    assert_eq!(queue.replay(&orders).await.unwrap().count, 1);
    let replayed = moto.receive_bodies(&url, Duration::from_secs(1)).await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert!(replayed[0].contains("\"callId\":\"c1\""), "{replayed:?}");
    assert_eq!(
        moto.counts(&dlq).await,
        (2, 0),
        "the others are visible again at once"
    );
    // "All" takes the message that is not a call too.
    assert_eq!(queue.discard(&Selection::default()).await.unwrap().count, 2);
    assert_eq!(moto.counts(&dlq).await, (0, 0));
}

/// Opens the queue a worker consumes (inside the runtime that worker runs on).
type OpenQueue<'a> =
    &'a dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn AsyncQueue>>>>;

/// A worker dies with a call in flight: its whole runtime is dropped at once, as its process
/// would be by SIGKILL, so nothing of it settles, extends or calls back. The next worker on
/// the same queue runs the call, to its callback, as one of `attempts`; nothing is left
/// behind.
fn a_call_whose_worker_dies_is_run_by_the_next_one(
    main: &tokio::runtime::Runtime,
    open: OpenQueue<'_>,
    leased: &dyn Fn() -> bool,
    drained: &dyn Fn() -> bool,
    attempts: std::ops::RangeInclusive<u32>,
) {
    let settings = AsyncSettings {
        max_attempts: 3,
        retry_base: Duration::from_secs(1),
        internal_callbacks: true,
        ..AsyncSettings::default()
    };
    let (callback, mut callbacks) = main.block_on(receiver());
    let state = tempfile::tempdir().unwrap();

    let first = tokio::runtime::Runtime::new().unwrap();
    let (dying, worker, id) = first.block_on(async {
        let (platform, gateway) = platform(state.path()).await;
        let queue = open().await;
        let _ = platform.async_queue.set(Arc::clone(&queue));
        let worker = Worker::start(&platform, queue, settings.clone());
        // Busy for 1.5 s: long enough to die in, short enough to run again.
        let (status, headers, accepted) = post(
            gateway,
            "/async-function/hostile/sleep",
            &[("x-callback-url", &callback), ("x-sleep-ms", "1500")],
            Vec::new(),
        )
        .await;
        assert_eq!(status, 202, "{accepted}");
        let id = headers["x-call-id"].to_str().unwrap().to_owned();
        (platform, worker, id)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !leased() {
        assert!(
            std::time::Instant::now() < deadline,
            "the call was never taken"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.shutdown_background();
    drop((worker, dying));
    assert!(
        callbacks.try_recv().is_err(),
        "the call finished before its worker died: nothing was tested"
    );

    let second = tokio::runtime::Runtime::new().unwrap();
    let worker = second.block_on(async {
        let (platform, _gateway) = platform(state.path()).await;
        let queue = open().await;
        let _ = platform.async_queue.set(Arc::clone(&queue));
        Worker::start(&platform, queue, settings)
    });
    let done = main.block_on(next_callback(&mut callbacks, Duration::from_secs(30)));
    assert_eq!(header(&done, "x-call-id"), id);
    assert_eq!(header(&done, "x-function-status"), "200");
    let made: u32 = header(&done, "x-faas-attempts").parse().unwrap();
    assert!(
        attempts.contains(&made),
        "attempt {made}, not in {attempts:?}"
    );
    assert_eq!(done.body, Bytes::from_static(b"slept"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !drained() {
        assert!(
            std::time::Instant::now() < deadline,
            "the call was not settled after it ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    second.block_on(worker.shutdown(Duration::from_secs(5)));
}

#[test]
fn an_sqs_call_whose_worker_dies_is_run_by_the_next_worker() {
    let main = tokio::runtime::Runtime::new().unwrap();
    let moto = faas_e2e::moto::moto();
    let (url, _dlq) = main.block_on(with_dead_letters(
        moto,
        &format!("async-worker-dies-{}", std::process::id()),
        // Short, so the call is visible again soon after nobody extends it.
        &[(QueueAttributeName::VisibilityTimeout, "2")],
    ));
    let open_url = url.clone();
    let open = move || {
        let url = open_url.clone();
        Box::pin(async move {
            // Clients of the runtime the worker runs on: connections die with it.
            let clients = faas_sqs::client::Clients::new(faas_e2e::moto::moto().sdk_config());
            Arc::new(SqsQueue::open(&clients, &url).await.unwrap()) as Arc<dyn AsyncQueue>
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>
    };
    let leased = || main.block_on(moto.counts(&url)) == (0, 1);
    let drained = || main.block_on(moto.counts(&url)) == (0, 0);
    // Attempt 2, or 3: the dead worker's long poll, still open at the server, may take the
    // message once more when it becomes visible (SQS counts it as a receive, as it does
    // when a real process is killed mid-poll).
    a_call_whose_worker_dies_is_run_by_the_next_one(&main, &open, &leased, &drained, 2..=3);
}

#[test]
fn a_sqlite_call_whose_worker_dies_is_run_by_the_next_worker() {
    let main = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("async.db");
    let open_path = path.clone();
    let open = move || {
        let path = open_path.clone();
        Box::pin(async move { Arc::new(SqliteQueue::open(&path).unwrap()) as Arc<dyn AsyncQueue> })
            as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>
    };
    let count = |condition: &str| -> i64 {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.query_row(
            &format!("SELECT COUNT(*) FROM async_calls WHERE {condition}"),
            [],
            |row| row.get(0),
        )
        .unwrap_or(0)
    };
    let leased = || count("leased = 1 AND dead = 0") == 1;
    let drained = || count("1 = 1") == 0;
    a_call_whose_worker_dies_is_run_by_the_next_one(&main, &open, &leased, &drained, 2..=2);
}
