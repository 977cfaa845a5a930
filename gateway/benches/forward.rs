//! The cluster gateway's forwarding path: what going through the gateway adds to a call of a
//! function pod, measured against calling the same pod directly, in the same run.
//!
//! `cargo bench -p faas-gateway --bench forward [-- --requests N --seconds S --callers C]`:
//!
//! - the "pod" is a small hyper server on loopback answering `ok` (as fast as a pod can be:
//!   whatever the gateway adds is not hidden behind a slow function);
//! - the gateway is the cluster mode's request path: public listener, routing, admission,
//!   `RemoteFunction` (least in-flight choice, forwarding through the pooled client), the
//!   pod's address fed through `Endpoints` as an EndpointSlice would be;
//! - latency: N sequential calls each (default 3,000), p50/p99, through a keep-alive client;
//! - throughput: C concurrent callers (default 16) for S seconds (default 3): req/s direct
//!   vs through the gateway, and the ratio.
//!
//! The two run on the same machine as the client, so on 2 cores the throughput ratio also
//! counts the gateway competing with the pod and the client for CPU.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_gateway::admission::Admission;
use faas_gateway::cluster::endpoints::{Endpoints, ServiceKey};
use faas_gateway::cluster::upstream::{Hold, RemoteFunction, Upstream, pod_client};
use faas_gateway::registry::{Entry, Loaded, Origin};
use faas_gateway::server::Exposure;
use faas_gateway::{GatewayConfig, Platform};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type BenchClient = Client<HttpConnector, Empty<Bytes>>;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The stand-in pod.
async fn pod() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the pod");
    let addr = listener.local_addr().expect("pod address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let service = hyper::service::service_fn(|_request| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                    Bytes::from_static(b"ok"),
                )))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    addr
}

/// A cluster-mode gateway whose function `bench` is served by `pod`.
async fn gateway(pod: SocketAddr) -> SocketAddr {
    let state = std::env::temp_dir().join("faas-bench-forward");
    let mut config = GatewayConfig::new(state);
    config.host = faas_gateway::host::Capabilities::cluster();
    config.wasm.cache_dir = None;
    let platform = Platform::new(config).expect("platform");
    let endpoints = Endpoints::allowing_loopback();
    let service = ServiceKey {
        namespace: "bench".into(),
        name: "fn-bench".into(),
    };
    let slice = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "fn-bench-1", "namespace": "bench",
                     "labels": {"kubernetes.io/service-name": "fn-bench",
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": pod.port()}],
        "endpoints": [{"addresses": [pod.ip().to_string()], "conditions": {"ready": true}}],
    }))
    .expect("an EndpointSlice");
    endpoints.apply(&slice);
    let function: faas_api::Function = serde_json::from_value(serde_json::json!({
        "apiVersion": "faas.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": "bench", "namespace": "bench"},
        "spec": {"runtime": {"container": {"image": "bench:1", "port": 8080}},
                 "concurrency": 1000}
    }))
    .expect("a Function");
    let limits = function.spec.limits().expect("limits");
    let invoker = RemoteFunction::new(
        "bench".into(),
        Upstream {
            service: service.clone(),
            path_prefix: String::new(),
        },
        endpoints.subscribe(&service),
        Hold {
            limit: Duration::from_secs(1),
            scale: None,
        },
        limits.timeout,
        // An HTTP container: the gateway alone enforces the deadline.
        false,
        pod_client(),
    );
    platform.registry.upsert(Entry {
        key: "bench".to_owned(),
        function,
        limits,
        origin: Origin::Cluster,
        state: Ok(Arc::new(Loaded {
            invoker: Arc::new(invoker),
            sha256: String::new(),
            kind: "pods",
        })),
        last_error: None,
        admission: Arc::new(Admission::new(1000, 1000, Duration::from_secs(10))),
        failure_log: Arc::default(),
        updated: std::time::SystemTime::now(),
    });
    platform.set_ready();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the gateway");
    let addr = listener.local_addr().expect("gateway address");
    // Keeps the endpoints (and so the backend list) alive for the whole run.
    let endpoints = Arc::new(endpoints);
    tokio::spawn(async move {
        let _endpoints = endpoints;
        let _ = faas_gateway::server::serve_exposed(
            listener,
            platform,
            Exposure::Public,
            std::future::pending(),
        )
        .await;
    });
    addr
}

async fn get(client: &BenchClient, uri: &http::Uri) {
    let response = client
        .request(
            http::Request::get(uri.clone())
                .body(Empty::new())
                .expect("request"),
        )
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await;
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn latency(client: &BenchClient, uri: &http::Uri, n: u64) -> (f64, f64) {
    for _ in 0..200 {
        get(client, uri).await;
    }
    let mut micros = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let start = Instant::now();
        get(client, uri).await;
        micros.push(start.elapsed().as_secs_f64() * 1e6);
    }
    micros.sort_by(f64::total_cmp);
    (percentile(&micros, 0.5), percentile(&micros, 0.99))
}

/// CPU time this process has used, all threads (client, gateway and pod alike).
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Requests per second, and CPU time per request in µs, of `callers` concurrent callers.
async fn throughput(
    client: &BenchClient,
    uri: &http::Uri,
    seconds: u64,
    callers: u64,
) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (client, uri, stop, done) = (
                client.clone(),
                uri.clone(),
                Arc::clone(&stop),
                Arc::clone(&done),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    get(&client, &uri).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let (start, cpu) = (Instant::now(), cpu_time());
    let counted = done.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let count = done.load(Ordering::Relaxed) - counted;
    let (elapsed, cpu) = (start.elapsed().as_secs_f64(), cpu_time() - cpu);
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    (
        count as f64 / elapsed,
        cpu.as_secs_f64() * 1e6 / count.max(1) as f64,
    )
}

fn main() {
    let requests = arg("--requests", 3000);
    let seconds = arg("--seconds", 3);
    let callers = arg("--callers", 16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let pod = pod().await;
        let gateway = gateway(pod).await;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: BenchClient = Client::builder(TokioExecutor::new()).build(connector);
        let direct: http::Uri = format!("http://{pod}/").parse().expect("uri");
        let through: http::Uri = format!("http://{gateway}/function/bench/")
            .parse()
            .expect("uri");
        let (d50, d99) = latency(&client, &direct, requests).await;
        let (g50, g99) = latency(&client, &through, requests).await;
        println!("latency, {requests} sequential calls each (µs):");
        println!("  direct to the pod      p50 {d50:8.1}  p99 {d99:8.1}");
        println!("  through the gateway    p50 {g50:8.1}  p99 {g99:8.1}");
        println!("  added by the gateway   p50 {:8.1}", g50 - d50);
        let (direct_rps, direct_cpu) = throughput(&client, &direct, seconds, callers).await;
        let (through_rps, through_cpu) = throughput(&client, &through, seconds, callers).await;
        println!(
            "throughput, {callers} callers for {seconds} s each (req/s; CPU time per request \
             of the whole process: client, pod and, through it, the gateway):"
        );
        println!("  direct to the pod      {direct_rps:10.0}  CPU {direct_cpu:6.1} µs");
        println!("  through the gateway    {through_rps:10.0}  CPU {through_cpu:6.1} µs");
        println!(
            "  ratio                  {:10.2}x  CPU added by the gateway {:6.1} µs",
            through_rps / direct_rps,
            through_cpu - direct_cpu
        );
    });
}
