//! Process executors: what `mode: http` proxying and `mode: lambda` add to a call, measured
//! against the same handler logic called directly, in the same run.
//!
//! `cargo bench -p faas-runtime --bench process [-- --requests N --seconds S]`:
//!
//! - latency, sequential calls (default 2,000 each), p50/p99:
//!   - `direct`: a hyper client to a Python HTTP server (`http.server`, keep-alive);
//!   - `http mode`: the same server behind `HttpProcess` (the executor `faas up` uses);
//!   - `lambda mode`: the same logic as a Lambda handler under `awslambdaric`, through our
//!     Runtime API (`LambdaFunction`, one handler process);
//! - throughput, 16 concurrent callers for S seconds (default 3): direct vs http mode.
//!
//! Added latency = p50 of a line minus p50 of the line it wraps (http mode − direct; lambda
//! mode − http mode). Python dominates the absolute numbers; the differences are ours.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_api::Limits;
use faas_runtime::process::http::HttpProcess;
use faas_runtime::process::lambda::LambdaFunction;
use faas_runtime::process::{ProcessFunction, ProcessSpec};
use faas_runtime::{CallContext, Invoker};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const SERVER: &str = r#"
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def logic(path):
    return json.dumps({"path": path, "ok": True})

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response and no Nagle: otherwise headers and body go out in two
    # segments and delayed ACKs add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    wbufsize = 65536
    def log_message(self, *args):
        pass
    def do_GET(self):
        body = logic(self.path).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

const HANDLER: &str = r#"
import json

def logic(path):
    return json.dumps({"path": path, "ok": True})

def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": logic(event["path"])}
"#;

fn spec(dir: &Path, argv: &[&str], port: Option<u16>) -> ProcessSpec {
    ProcessSpec {
        started: Default::default(),
        name: "bench".into(),
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        working_dir: Some(dir.to_path_buf()),
        env: vec![],
        port,
        readiness_path: None,
        limits: Limits {
            timeout: Duration::from_secs(10),
            concurrency: 1,
            ..Limits::default()
        },
    }
}

fn request() -> http::Request<Bytes> {
    http::Request::builder()
        .uri("/bench?x=1")
        .header("host", "localhost")
        .body(Bytes::new())
        .expect("request")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// p50 and p99 in microseconds of `n` sequential calls of `call`.
async fn latency<F, Fut>(n: usize, mut call: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..n / 10 {
        call().await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        call().await;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// Requests per second of 16 concurrent callers for `seconds`.
async fn throughput<F, Fut>(seconds: u64, call: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (call, done, stop) = (Arc::clone(&call), Arc::clone(&done), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                call().await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}

async fn invoke(f: &ProcessFunction) {
    let response = f
        .invoke(CallContext::new("bench", "bench"), request())
        .await
        .expect("the call succeeds");
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await.expect("body");
}

fn main() {
    let mut requests = 2000usize;
    let mut seconds = 3u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--requests" => requests = args.next().and_then(|v| v.parse().ok()).expect("N"),
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).expect("S"),
            _ => {}
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("server.py"), SERVER).expect("write");
        std::fs::write(dir.path().join("app.py"), HANDLER).expect("write");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let http = HttpProcess::start(spec(dir.path(), &["python3", "server.py"], Some(port)))
            .expect("http process");
        http.ready(Duration::from_secs(30)).await.expect("ready");
        let http = Arc::new(ProcessFunction::Http(Box::new(http)));
        let lambda = Arc::new(ProcessFunction::Lambda(Box::new(LambdaFunction::start(
            spec(
                dir.path(),
                &["python3", "-m", "awslambdaric", "app.handler"],
                None,
            ),
        ))));
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let url: http::Uri = format!("http://127.0.0.1:{port}/bench?x=1")
            .parse()
            .expect("uri");
        let direct = {
            let client = client.clone();
            let url = url.clone();
            move || {
                let client = client.clone();
                let url = url.clone();
                async move {
                    let response = client.get(url).await.expect("direct call");
                    let _ = response.into_body().collect().await.expect("body");
                }
            }
        };
        println!(
            "process bench: {requests} sequential requests per line, {seconds}s x 16 callers, \
             3 interleaved rounds, medians"
        );
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (mut d, mut h, mut l) = (Vec::new(), Vec::new(), Vec::new());
        let (mut drps, mut hrps) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            d.push(latency(requests, &direct).await);
            h.push(latency(requests, || invoke(&http)).await);
            l.push(latency(requests, || invoke(&lambda)).await);
            drps.push(throughput(seconds, direct.clone()).await);
            let proxied = Arc::clone(&http);
            hrps.push(
                throughput(seconds, move || {
                    let f = Arc::clone(&proxied);
                    async move { invoke(&f).await }
                })
                .await,
            );
        }
        let p50 = |v: &[(f64, f64)]| median(v.iter().map(|x| x.0).collect());
        let p99 = |v: &[(f64, f64)]| median(v.iter().map(|x| x.1).collect());
        println!("{:<34} {:>9} {:>9} {:>12}", "latency (sequential)", "p50 us", "p99 us", "added p50");
        println!("{:<34} {:>9.0} {:>9.0} {:>12}", "direct (hyper -> python server)", p50(&d), p99(&d), "");
        println!("{:<34} {:>9.0} {:>9.0} {:>12.0}", "http mode (HttpProcess)", p50(&h), p99(&h), p50(&h) - p50(&d));
        println!("{:<34} {:>9.0} {:>9.0} {:>12.0}", "lambda mode (awslambdaric)", p50(&l), p99(&l), p50(&l) - p50(&h));
        let (direct_rps, proxied_rps) = (median(drps.clone()), median(hrps.clone()));
        println!(
            "throughput: direct {direct_rps:.0} req/s, http mode {proxied_rps:.0} req/s ({:.2}x); rounds {:?} vs {:?}",
            proxied_rps / direct_rps,
            drps.iter().map(|r| r.round()).collect::<Vec<_>>(),
            hrps.iter().map(|r| r.round()).collect::<Vec<_>>()
        );
    });
}
