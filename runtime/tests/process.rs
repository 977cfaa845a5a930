//! Process functions (`spec.runtime.container` in local mode): a CGI shell script per request
//! and a supervised Python HTTP server, run for real.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_api::Limits;
use faas_e2e::free_port;
use faas_runtime::process::cgi::CgiProcess;
use faas_runtime::process::http::{HttpProcess, ProcessState};
use faas_runtime::process::{ProcessFunction, ProcessSpec};
use faas_runtime::{CallContext, InvokeError, Invoker};
use http_body_util::BodyExt;

fn spec(dir: &Path, argv: &[&str], port: Option<u16>, timeout: Duration) -> ProcessSpec {
    ProcessSpec {
        started: Default::default(),
        name: "proc".into(),
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        working_dir: Some(dir.to_path_buf()),
        env: vec![("GREETING".into(), "hi".into())],
        port,
        readiness_path: None,
        limits: Limits {
            timeout,
            ..Limits::default()
        },
    }
}

fn script(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn request(method: &str, uri: &str, body: &'static str) -> http::Request<Bytes> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost")
        .body(Bytes::from_static(body.as_bytes()))
        .unwrap()
}

async fn call(
    f: &ProcessFunction,
    req: http::Request<Bytes>,
) -> Result<(u16, String), InvokeError> {
    let response = f.invoke(CallContext::new("t", "proc"), req).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

const CGI: &str = r#"#!/bin/sh
case "$PATH_INFO" in
  /slow) sleep 30 ;;
  /fail) echo "something broke" >&2; exit 3 ;;
  /garbage) echo "no headers here" ;;
esac
echo "Status: 201 Created"
echo "Content-Type: text/plain"
echo
echo "method=$REQUEST_METHOD path=$PATH_INFO query=$QUERY_STRING greeting=$GREETING"
cat
"#;

fn cgi(dir: &Path, timeout: Duration) -> ProcessFunction {
    let path = script(dir, "cgi.sh", CGI);
    ProcessFunction::Cgi(CgiProcess::new(spec(dir, &["sh", &path], None, timeout)))
}

#[tokio::test]
async fn a_cgi_script_gets_the_request_and_answers_with_headers() {
    let dir = tempfile::tempdir().unwrap();
    let f = cgi(dir.path(), Duration::from_secs(10));
    let (status, body) = call(&f, request("POST", "/a/b?x=1", "the body"))
        .await
        .unwrap();
    assert_eq!(status, 201);
    assert_eq!(
        body,
        "method=POST path=/a/b query=x=1 greeting=hi\nthe body"
    );
}

#[tokio::test]
async fn a_cgi_script_past_its_timeout_is_killed_with_504() {
    let dir = tempfile::tempdir().unwrap();
    let f = cgi(dir.path(), Duration::from_secs(1));
    let started = Instant::now();
    let err = call(&f, request("GET", "/slow", "")).await.unwrap_err();
    assert!(matches!(err, InvokeError::Timeout(_)), "{err}");
    assert_eq!(err.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_failing_or_garbled_cgi_script_is_a_502_that_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let f = cgi(dir.path(), Duration::from_secs(10));
    let err = call(&f, request("GET", "/fail", "")).await.unwrap_err();
    assert_eq!(err.status(), 502);
    assert!(err.to_string().contains("exited with status 3"), "{err}");
    let err = call(&f, request("GET", "/garbage", "")).await.unwrap_err();
    assert_eq!(err.status(), 502);
    assert!(err.to_string().contains("invalid response"), "{err}");
    // And the next request is served normally.
    assert_eq!(call(&f, request("GET", "/", "")).await.unwrap().0, 201);
}

#[tokio::test]
async fn a_missing_program_is_a_503_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = ProcessFunction::Cgi(CgiProcess::new(spec(
        dir.path(),
        &["/nonexistent/program"],
        None,
        Duration::from_secs(5),
    )));
    let err = call(&f, request("GET", "/", "")).await.unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(err.to_string().contains("/nonexistent/program"), "{err}");
}

/// A small HTTP server: echoes method, path and body; `/stream` sends two chunks a second
/// apart; `/crash` exits the process.
const SERVER: &str = r#"
import os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        if self.path == "/crash":
            os._exit(1)
        if self.path == "/stream":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"first", b"second"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
                time.sleep(1)
            self.wfile.write(b"0\r\n\r\n")
            return
        self.reply(b"")
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.reply(self.rfile.read(length))
    def reply(self, body):
        text = f"{self.command} {self.path} greeting={os.environ.get('GREETING')} ".encode() + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

print("serving on", os.environ["PORT"], flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

fn server(dir: &Path, port: u16) -> HttpProcess {
    let path = script(dir, "server.py", SERVER);
    HttpProcess::start(spec(
        dir,
        &["python3", &path],
        Some(port),
        Duration::from_secs(10),
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_is_started_proxied_to_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let f = ProcessFunction::Http(Box::new(server(dir.path(), free_port())));
    let (status, body) = call(&f, request("GET", "/x?y=1", "")).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "GET /x?y=1 greeting=hi "));
    let (_, body) = call(&f, request("POST", "/p", "payload")).await.unwrap();
    assert_eq!(body, "POST /p greeting=hi payload");

    // The first chunk arrives while the server still sleeps before the second.
    let response = f
        .invoke(CallContext::new("t", "proc"), request("GET", "/stream", ""))
        .await
        .unwrap();
    let mut body = response.into_body();
    let started = Instant::now();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.as_ref(), b"first");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "not streamed"
    );
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest.as_ref(), b"second");

    // The deadline holds after the headers: the stream (1 s between chunks) is cut at a
    // 500 ms timeout instead of holding the caller.
    let mut ctx = CallContext::new("t", "proc");
    ctx.timeout = Some(Duration::from_millis(500));
    let response = f.invoke(ctx, request("GET", "/stream", "")).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.as_ref(), b"first");
    let err = body.frame().await.unwrap().unwrap_err();
    assert!(
        err.to_string().contains("exceeded its timeout of 500ms"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_fails_its_request_and_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let process = server(dir.path(), free_port());
    process.ready(Duration::from_secs(20)).await.unwrap();
    let f = ProcessFunction::Http(Box::new(process));
    let err = call(&f, request("GET", "/crash", "")).await.unwrap_err();
    assert_eq!(err.status(), 502, "{err}");
    // The next request waits for the restart (within its timeout) and is served.
    let (status, _) = call(&f, request("GET", "/again", "")).await.unwrap();
    assert_eq!(status, 200);
    let ProcessFunction::Http(process) = &f else {
        unreachable!()
    };
    assert_eq!(process.restarts(), 1);
    assert!(matches!(process.state(), ProcessState::Ready { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_comes_up_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(
        dir.path(),
        &["sh", "-c", "echo cannot open config >&2; exit 2"],
        Some(free_port()),
        Duration::from_secs(1),
    );
    s.limits.timeout = Duration::from_secs(1);
    let f = ProcessFunction::Http(Box::new(HttpProcess::start(s).unwrap()));
    let err = call(&f, request("GET", "/", "")).await.unwrap_err();
    assert_eq!(err.status(), 503);
    let text = err.to_string();
    assert!(
        text.contains("restarting")
            && text.contains("exited with status 2 before accepting connections"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_function_stops_its_process() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let process = server(dir.path(), port);
    process.ready(Duration::from_secs(20)).await.unwrap();
    drop(process);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "the server still runs after its function was dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server that accepts connections at once but says it is ready only once a file exists.
const SLOW_TO_READY: &str = r#"
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        ready = os.path.exists("ready")
        if self.path == "/healthz":
            status, body = (200, b"ok") if ready else (503, b"warming up")
        else:
            status, body = 200, b"served"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_path_holds_traffic_until_it_answers_2xx() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path(), "slow.py", SLOW_TO_READY);
    let mut s = spec(
        dir.path(),
        &["python3", &path],
        Some(free_port()),
        Duration::from_secs(10),
    );
    s.readiness_path = Some("/healthz".into());
    let process = HttpProcess::start(s).unwrap();
    // Listening, but /healthz says 503: not ready, and a call waits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        matches!(process.state(), ProcessState::Starting { .. }),
        "{:?}",
        process.state()
    );
    let f = ProcessFunction::Http(Box::new(process));
    let started = Instant::now();
    let call = tokio::spawn({
        let dir = dir.path().to_path_buf();
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            std::fs::write(dir.join("ready"), b"").unwrap();
        }
    });
    let (status, body) = super_call(&f).await;
    call.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "served"));
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "served before ready"
    );
}

async fn super_call(f: &ProcessFunction) -> (u16, String) {
    call(f, request("GET", "/x", "")).await.unwrap()
}
