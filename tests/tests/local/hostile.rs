//! Functions that misbehave are contained, answered with the right status, and nothing else
//! is disturbed.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use faas_e2e::*;

const LOOP_P1: &str =
    r#"(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))"#;
const BOMB_P1: &str = r#"(module (memory (export "memory") 1)
  (func (export "_start") (loop (drop (memory.grow (i32.const 16))) (br 0))))"#;

fn cgi_writer(output: &str) -> String {
    let escaped: String = output.bytes().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{escaped}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = output.len()
    )
}

struct Hostile {
    faas: Faas,
    _dir: tempfile::TempDir,
}

fn start() -> Hostile {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_function(d, "hello", &guest("hello"), "");
    write_function(
        d,
        "hostile",
        &guest("hostile"),
        "  timeout: 2s\n  memory: 32Mi\n",
    );
    write_function(d, "chatty", &guest("hostile"), "  timeout: 30s\n");
    write_function(
        d,
        "loop-p1",
        &wat_file(d, "loop", LOOP_P1),
        "  timeout: 1s\n",
    );
    write_function(
        d,
        "bomb-p1",
        &wat_file(d, "bomb", BOMB_P1),
        "  memory: 16Mi\n",
    );
    write_function(
        d,
        "garbage-cgi",
        &wat_file(d, "garbage", &cgi_writer("this is not a header\n\nbody")),
        "",
    );
    write_function(
        d,
        "good-cgi",
        &wat_file(
            d,
            "good",
            &cgi_writer("Status: 201 Created\r\nContent-Type: text/plain\r\n\r\nmade"),
        ),
        "",
    );
    let junk = d.join("junk.wasm");
    std::fs::write(&junk, b"MZ\x90\x00 definitely not wasm").unwrap();
    write_function(d, "junk", &junk, "");
    std::fs::write(d.join("broken.yaml"), "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: broken}\nspec:\n  runtime: {wasm: {sorce: x.wasm}}\n").unwrap();
    Hostile {
        faas: Faas::start(d),
        _dir: dir,
    }
}

async fn assert_others_fine(faas: &Faas) {
    let hello = get(&faas.url("/function/hello")).await;
    assert_eq!(
        hello.status,
        200,
        "hello must keep serving: {}",
        hello.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn infinite_loops_time_out_while_others_keep_serving() {
    let h = start();
    let faas = &h.faas;
    let url = faas.url("/function/hostile/loop");
    let looping = tokio::spawn(async move { send("GET", &url, &[], "").await });
    faas.until_calls("hostile", 1, 0).await;
    // While the loop burns its 2 s, others answer.
    assert_others_fine(faas).await;
    assert!(
        !looping.is_finished(),
        "the loop cannot have finished before its timeout"
    );
    let reply = looping.await.unwrap();
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert_eq!(reply.json()["reason"], "Timeout");

    let reply = get(&faas.url("/function/loop-p1")).await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert_others_fine(faas).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_bombs_panics_and_garbage_are_contained() {
    let h = start();
    let faas = &h.faas;
    let bomb = get(&faas.url("/function/hostile/bomb")).await;
    assert_eq!(bomb.status, 500, "{}", bomb.text());
    assert_eq!(
        bomb.json()["reason"],
        "MemoryLimitExceeded",
        "{}",
        bomb.text()
    );
    let bomb = get(&faas.url("/function/bomb-p1")).await;
    assert_eq!(bomb.status, 500, "{}", bomb.text());
    assert_eq!(bomb.json()["reason"], "MemoryLimitExceeded");
    assert_others_fine(faas).await;

    let panic = get(&faas.url("/function/hostile/panic")).await;
    assert_eq!(panic.status, 500, "{}", panic.text());
    assert_eq!(panic.json()["reason"], "Trapped");
    assert_others_fine(faas).await;

    let garbage = get(&faas.url("/function/garbage-cgi")).await;
    assert_eq!(garbage.status, 502, "{}", garbage.text());
    assert!(
        garbage.text().contains("malformed CGI header line 1"),
        "{}",
        garbage.text()
    );
    let good = get(&faas.url("/function/good-cgi")).await;
    assert_eq!((good.status, good.text().as_str()), (201, "made"));

    // The same instance keeps working after every failure: fresh instance per request.
    assert_eq!(get(&faas.url("/function/hostile/ok")).await.text(), "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_artifacts_and_manifests_are_reported_not_fatal() {
    let h = start();
    let faas = &h.faas;
    let junk = get(&faas.url("/function/junk")).await;
    assert_eq!(junk.status, 503);
    assert_eq!(junk.json()["reason"], "FunctionNotReady");
    assert!(
        junk.text().contains("not a WebAssembly binary"),
        "{}",
        junk.text()
    );
    let list = get(&faas.url("/system/functions")).await.json();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "junk")
        .unwrap();
    assert_eq!(entry["ready"], false);
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly binary")
    );
    let stderr = faas.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("broken.yaml") && stderr.contains("unknown field \"sorce\""),
        "{stderr}"
    );
    assert_eq!(get(&faas.url("/function/broken")).await.status, 404);
    // `hostile` and `chatty` share one artifact: compiled once, reused from memory.
    let metrics = get(&faas.url("/metrics")).await.text();
    assert!(
        metrics.contains(r#"faas_artifact_loads_total{outcome="memory"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"faas_artifact_loads_total{outcome="failed"} 1"#),
        "{metrics}"
    );
    assert_others_fine(faas).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_bodies_get_413_before_the_function_runs() {
    let h = start();
    let faas = &h.faas;
    // A declared 10 MiB body is refused from its headers alone: the answer comes before the
    // client has sent a single body byte.
    let addr = faas.base.trim_start_matches("http://").to_owned();
    let early = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"POST /function/hostile/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n")
            .unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    })
    .await
    .unwrap();
    assert!(early.starts_with("HTTP/1.1 413"), "{early}");
    assert!(early.contains("BodyTooLarge"), "{early}");

    // Without Content-Length (chunked), the limit applies while reading.
    let addr = faas.base.trim_start_matches("http://").to_owned();
    let status = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(b"POST /function/hostile/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        let chunk = vec![b'y'; 1 << 20];
        for _ in 0..10 {
            if stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).is_err() { break; }
            if stream.write_all(&chunk).is_err() { break; }
            if stream.write_all(b"\r\n").is_err() { break; }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head[9..12]).into_owned()
    })
    .await
    .unwrap();
    assert_eq!(status, "413");

    let small = send("POST", &faas.url("/function/hostile/echo"), &[], "small").await;
    assert_eq!(small.text(), "small");
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_output_is_bounded_in_the_platform_log() {
    let h = start();
    let faas = &h.faas;
    let reply = get(&faas.url("/function/chatty/spam")).await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "spammed"));
    assert_eq!(get(&faas.url("/healthz")).await.status, 200);
    let call_id = reply.headers["x-call-id"].to_str().unwrap().to_owned();
    faas.eventually("the dropped-output warning", || {
        let log = faas.stderr.lock().unwrap().clone();
        async move { log.contains("guest output over the per-invocation log budget was dropped") }
    })
    .await;
    let log = faas.stderr.lock().unwrap().clone();
    let lines = log.lines().filter(|l| l.contains(&call_id)).count();
    // 64 KiB budget of 1 KiB lines: about 64 lines, not 65,000.
    assert!(
        (10..200).contains(&lines),
        "{lines} log lines for the spamming call"
    );
    assert!(
        log.len() < 2 << 20,
        "platform log grew to {} bytes",
        log.len()
    );
    assert_others_fine(faas).await;
}

/// A loopback server counting connections; answers each with a fixed 200.
fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nupstream",
            );
        }
    });
    (port, count)
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_http_only_reaches_allowed_hosts() {
    let (port, connections) = counting_server();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_function(d, "sealed", &guest("hostile"), "");
    write_function(
        d,
        "wrong-port",
        &guest("hostile"),
        "  network:\n    allowedOutboundHosts: [\"http://127.0.0.1:1\"]\n",
    );
    write_function(
        d,
        "allowed",
        &guest("hostile"),
        &format!("  network:\n    allowedOutboundHosts: [\"http://127.0.0.1:{port}\"]\n"),
    );
    let faas = Faas::start(d);
    let target = format!("http://127.0.0.1:{port}/data");

    for name in ["sealed", "wrong-port"] {
        let reply = send(
            "GET",
            &faas.url(&format!("/function/{name}/fetch")),
            &[("x-target-url", &target)],
            "",
        )
        .await;
        assert_eq!(reply.status, 502, "{name}: {}", reply.text());
        assert!(
            reply.text().contains("HttpRequestDenied"),
            "{name}: {}",
            reply.text()
        );
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a denied request reached the server"
    );

    let reply = send(
        "GET",
        &faas.url("/function/allowed/fetch"),
        &[("x-target-url", &target)],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "200\nupstream");
    assert_eq!(connections.load(Ordering::SeqCst), 1);

    // No ambient authority either: the environment is only what the spec gives.
    let env = get(&faas.url("/function/sealed/env")).await.text();
    assert!(!env.contains("PATH=") && !env.contains("HOME="), "{env}");
}

/// A function failing on every call gets a few log lines a second, not one per call: the
/// platform's log is every team's, and formatting a line per trap costs the neighbours CPU.
/// Every caller still gets the whole error, and the metrics count every failure.
#[tokio::test(flavor = "multi_thread")]
async fn a_function_trapping_on_every_call_cannot_flood_the_platform_log() {
    let h = start();
    let faas = &h.faas;
    let url = faas.url("/function/chatty/panic");
    let started = std::time::Instant::now();
    let mut answers = Vec::new();
    for _ in 0..10 {
        let calls: Vec<_> = (0..30)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { get(&url).await })
            })
            .collect();
        for call in calls {
            answers.push(call.await.unwrap());
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(answers.len(), 300);
    for reply in &answers {
        assert_eq!(reply.status, 500, "{}", reply.text());
        assert_eq!(reply.json()["reason"], "Trapped", "{}", reply.text());
    }
    let failure_lines = |log: &str| {
        log.lines()
            .filter(|l| l.contains("invocation failed") && l.contains("function=chatty"))
            .count()
    };
    let logged = failure_lines(&faas.stderr.lock().unwrap());
    // Ten lines per started second of failures (invoke/src/failure_log.rs).
    let bound = 10 * (elapsed.as_secs() as usize + 1);
    assert!(
        (1..=bound).contains(&logged) && logged < 300,
        "{logged} failure lines for 300 failures in {elapsed:?} (at most {bound})"
    );

    // Once the window has passed, the next failure is logged with the count left out.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(get(&url).await.status, 500);
    let suppressed = |line: &str| -> u64 {
        line.split_once("suppressed=")
            .and_then(|(_, rest)| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    faas.eventually("the next failure line counts the ones left out", || async {
        faas.stderr
            .lock()
            .unwrap()
            .lines()
            .any(|l| l.contains("function=chatty") && suppressed(l) > 0)
    })
    .await;
    let metrics = get(&faas.url("/metrics")).await.text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("faas_invocations_total")
                && l.contains("function=\"chatty\"")
                && l.contains("code=\"500\"")
                && l.ends_with(" 301")),
        "every failure counted:\n{metrics}"
    );
    assert_others_fine(faas).await;
}
