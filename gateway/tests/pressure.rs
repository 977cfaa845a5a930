//! The gateway under pressure, in process through its HTTP server with raw loopback
//! connections (so a test can hold an upload half sent or walk away from a request): the
//! process-wide body budget (`--body-budget`), admission before the body is read, async
//! calls capped while their body arrives, and queue places of abandoned requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_gateway::async_call::SqliteQueue;
use faas_gateway::registry::Origin;
use faas_gateway::{GatewayConfig, Platform};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1 << 20;

/// A platform with a body budget of `budget` bytes serving the hostile guest as `hostile`
/// (concurrency `concurrency`, bodies up to 8 MiB), with async calls, on a loopback port.
async fn platform(
    state: &std::path::Path,
    budget: u64,
    concurrency: u32,
) -> (Arc<Platform>, SocketAddr) {
    let mut config = GatewayConfig::new(state.to_path_buf());
    config.body_budget = budget;
    // Waiters never time out here: a queue place comes back only when given back.
    config.max_queue_wait = Duration::from_secs(3600);
    let platform = Platform::new(config).unwrap();
    let guest = faas_e2e::guest("hostile");
    let function: faas_api::Function = serde_yaml::from_str(&format!(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: hostile}}\n\
         spec:\n  runtime:\n    wasm: {{source: {}}}\n  timeout: 30s\n  \
         concurrency: {concurrency}\n  http: {{maxBodySize: 8Mi}}\n",
        guest.display()
    ))
    .unwrap();
    let bytes = Bytes::from(std::fs::read(&guest).unwrap());
    platform
        .apply(function, Ok(bytes), Origin::Api, None)
        .await
        .unwrap();
    let queue = SqliteQueue::open(&state.join("async.db")).unwrap();
    let _ = platform.async_queue.set(Arc::new(queue));
    platform.set_ready();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(faas_gateway::server::serve(
        listener,
        Arc::clone(&platform),
        std::future::pending(),
    ));
    (platform, addr)
}

/// An upload in progress: the request head and the first `sent` bytes of its body.
struct Upload {
    stream: TcpStream,
    chunked: bool,
}

impl Upload {
    /// Starts a POST to `path`: with `Content-Length: declared`, or chunked when `None`.
    async fn start(addr: SocketAddr, path: &str, declared: Option<usize>) -> Upload {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let framing = match declared {
            Some(len) => format!("content-length: {len}"),
            None => "transfer-encoding: chunked".to_owned(),
        };
        stream
            .write_all(format!(
                    "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n{framing}\r\n\r\n"
                ).as_bytes())
            .await
            .unwrap();
        Upload {
            stream,
            chunked: declared.is_none(),
        }
    }

    /// Sends `len` more bytes of body; false once the server stopped reading (it answered
    /// and closed).
    async fn send(&mut self, len: usize) -> bool {
        let data = vec![b'x'; len];
        let written = if self.chunked {
            let mut frame = format!("{len:x}\r\n").into_bytes();
            frame.extend_from_slice(&data);
            frame.extend_from_slice(b"\r\n");
            self.stream.write_all(&frame).await
        } else {
            self.stream.write_all(&data).await
        };
        written.is_ok()
    }

    /// The response: status, head (lowercase), body (de-chunked). Requests say
    /// `connection: close`, so the response ends at EOF.
    async fn response(mut self) -> (u16, String, Vec<u8>) {
        let mut buffer = Vec::new();
        // A reset after the answer (the server closed with our unread bytes) ends it too.
        let _ = self.stream.read_to_end(&mut buffer).await;
        let head_end = buffer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| at + 4)
            .unwrap_or_else(|| panic!("no response: {:?}", String::from_utf8_lossy(&buffer)));
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
        let status = head[9..12].parse().unwrap();
        let mut body = buffer[head_end..].to_vec();
        if head.contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        (status, head, body)
    }
}

/// The data of a chunked body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
    out
}

/// Waits (bounded) until `check` holds: the server works on its own schedule.
async fn until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn reason(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    value["reason"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_body_budget_get_503_while_small_requests_are_served() {
    let state = tempfile::tempdir().unwrap();
    let (platform, addr) = platform(state.path(), 8 * MIB as u64, 20).await;

    // Two 3 MiB uploads, half sent: 6 MiB of the 8 are spoken for.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut upload = Upload::start(addr, "/function/hostile/echo", Some(3 * MIB)).await;
        assert!(upload.send(MIB).await);
        held.push(upload);
    }
    until("two uploads charged", || {
        platform.bodies.in_use() >= 6 * MIB as u64
    })
    .await;

    // A third declared upload is refused before its body is read.
    let third = Upload::start(addr, "/function/hostile/echo", Some(3 * MIB)).await;
    let (status, head, body) = third.response().await;
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("retry-after: 1"), "{head}");
    assert_eq!(reason(&body), "BodyBudgetExhausted");

    // A chunked one (no length) is refused at the chunk that does not fit.
    let mut chunked = Upload::start(addr, "/function/hostile/echo", None).await;
    for _ in 0..10 {
        if !chunked.send(256 << 10).await {
            break;
        }
    }
    let (status, _, body) = chunked.response().await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (503, "BodyBudgetExhausted")
    );

    // Small requests are still served meanwhile.
    let small = faas_e2e::get(&format!("http://{addr}/function/hostile/ok")).await;
    assert_eq!((small.status, small.text().as_str()), (200, "ok"));
    let echo = faas_e2e::send(
        "POST",
        &format!("http://{addr}/function/hostile/echo"),
        &[],
        "small body",
    )
    .await;
    assert_eq!((echo.status, echo.text().as_str()), (200, "small body"));

    // The held uploads finish normally, and give the budget back.
    for mut upload in held {
        assert!(upload.send(2 * MIB).await);
        let (status, _, body) = upload.response().await;
        assert_eq!((status, body.len()), (200, 3 * MIB));
    }
    until("the budget given back", || platform.bodies.in_use() == 0).await;
    let mut again = Upload::start(addr, "/function/hostile/echo", Some(3 * MIB)).await;
    assert!(again.send(3 * MIB).await);
    assert_eq!(again.response().await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_for_a_slot_has_read_none_of_its_body() {
    let state = tempfile::tempdir().unwrap();
    let (platform, addr) = platform(state.path(), 64 * MIB as u64, 1).await;
    let entry = platform.registry.get("hostile").unwrap();

    // The one slot: an upload in progress.
    let mut first = Upload::start(addr, "/function/hostile/echo", Some(3 * MIB)).await;
    assert!(first.send(MIB).await);
    until("the first upload charged", || {
        platform.bodies.in_use() == 3 * MIB as u64
    })
    .await;
    // A second waits in the queue, its body unread and uncharged.
    let mut second = Upload::start(addr, "/function/hostile/echo", Some(3 * MIB)).await;
    until("the second upload queued", || {
        entry.admission.waiting() == 1
    })
    .await;
    assert_eq!(platform.bodies.in_use(), 3 * MIB as u64);

    assert!(first.send(2 * MIB).await);
    assert_eq!(first.response().await.0, 200);
    assert!(second.send(3 * MIB).await);
    let (status, _, body) = second.response().await;
    assert_eq!((status, body.len()), (200, 3 * MIB));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_async_body_over_the_queue_limit_is_refused_while_it_arrives() {
    let state = tempfile::tempdir().unwrap();
    let (_platform, addr) = platform(state.path(), 64 * MIB as u64, 4).await;
    // 256 KiB, chunked, and the body never ends: only a check made while reading answers.
    let mut upload = Upload::start(addr, "/async-function/hostile", None).await;
    for _ in 0..4 {
        if !upload.send(64 << 10).await {
            break;
        }
    }
    let answer = tokio::time::timeout(Duration::from_secs(30), upload.response())
        .await
        .expect("refused before the body ends");
    let (status, _, body) = answer;
    assert_eq!((status, reason(&body).as_str()), (413, "BodyTooLarge"));
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("180 KiB"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_abandoned_in_the_queue_give_their_place_back() {
    let state = tempfile::tempdir().unwrap();
    // Concurrency 2: two slots and two queue places.
    let (platform, addr) = platform(state.path(), 64 * MIB as u64, 2).await;
    let entry = platform.registry.get("hostile").unwrap();
    let url = format!("http://{addr}/function/hostile/ok");

    // Both slots held by uploads in progress.
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut upload = Upload::start(addr, "/function/hostile/echo", Some(MIB)).await;
        assert!(upload.send(1024).await);
        busy.push(upload);
    }
    until("both slots taken", || entry.admission.in_flight(2) == 2).await;
    // Two requests wait, then their clients go away.
    let mut waiters = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /function/hostile/ok HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        waiters.push(stream);
    }
    until("two waiting", || entry.admission.waiting() == 2).await;
    let full = faas_e2e::get(&url).await;
    assert_eq!(full.status, 429, "the queue is full: {}", full.text());
    drop(waiters);
    until("the abandoned places given back", || {
        entry.admission.waiting() == 0
    })
    .await;

    // A new request gets a queue place, and is served once a slot frees up.
    let next = tokio::spawn(async move { faas_e2e::get(&url).await });
    until("the new request queued", || entry.admission.waiting() == 1).await;
    for mut upload in busy {
        assert!(upload.send(MIB - 1024).await);
        assert_eq!(upload.response().await.0, 200);
    }
    let served = next.await.unwrap();
    assert_eq!((served.status, served.text().as_str()), (200, "ok"));
}
