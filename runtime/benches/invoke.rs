//! Per-request cost of the WASM executor: what one `invoke` costs end to end inside the process
//! (fresh `Store`, instantiation from the `InstancePre`, the guest's handler, the response body
//! collected), without the gateway's HTTP server, routing or admission around it.
//!
//! Groups:
//! - `baseline/direct_hyper_response`: a hyper `Response` with a `Full` body built and collected
//!   by plain Rust code; the floor a "direct call" of the same function would cost.
//! - `hello_component/invoke`: the `hello` `wasi:http/proxy` component, pooling allocator on.
//! - `echo_cgi/invoke`: the `echo-cgi` WASI preview1 command module, run CGI-style, pooling on.
//! - `on_demand_allocator/{hello_component,echo_cgi}`: the same two with the pooling allocator
//!   off (`WasmConfig { pooling: false, .. }`), to show what the pool buys.
//!
//! - `invocation_env/{none,credentials_and_secrets}`: `hello` again, without and with what a
//!   function with an IAM role and three secrets gets at each invocation: a real
//!   `faas_identity::FunctionIdentity` holding cached credentials (five variables) and three
//!   secret values read as the gateway's `FunctionSecrets` holds them (a `watch` borrow).
//!   The difference is the cost of injecting them.
//!
//! Run with `cargo bench -p faas-runtime --bench invoke`; criterion prints a mean-based
//! estimate, the median of each benchmark is in
//! `target/criterion/<group>/<bench>/new/estimates.json` (see `benches/README.md`).

use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faas_api::Limits;
use faas_api::network::OutboundPolicy;
use faas_runtime::wasm::{FunctionSettings, WasmConfig, WasmFunction, WasmRuntime};
use faas_runtime::{CallContext, Invoker};
use http_body_util::{BodyExt, Full};
use tokio::runtime::Runtime;

#[path = "../tests/support/guest.rs"]
mod support;

/// The bytes of guest `name` (see `support::guest_path`).
fn artifact(name: &str) -> Bytes {
    let path = support::guest_path(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (run `bash examples/build.sh`)",
            path.display()
        )
    });
    eprintln!("bench: {name}: {} ({} bytes)", path.display(), bytes.len());
    Bytes::from(bytes)
}

fn settings(name: &str) -> FunctionSettings {
    FunctionSettings {
        name: name.into(),
        limits: Limits::default(),
        env: vec![],
        outbound: Arc::new(OutboundPolicy::deny_all()),
        dirs: vec![],
        invocation_env: vec![],
    }
}

fn request() -> http::Request<Bytes> {
    http::Request::builder()
        .method(http::Method::GET)
        .uri("/bench")
        .header(http::header::HOST, "localhost")
        .body(Bytes::new())
        .expect("a valid request")
}

fn ctx(function: &str) -> CallContext {
    CallContext::new("bench", function)
}

/// One request through the executor, body collected. Panics on anything but a 200, so a broken
/// guest cannot produce a flattering number.
async fn invoke_once(function: &WasmFunction, name: &str) -> Bytes {
    let response = function
        .invoke(ctx(name), request())
        .await
        .unwrap_or_else(|e| panic!("{name}: invoke failed: {e}"));
    assert_eq!(response.status(), http::StatusCode::OK, "{name}: status");
    response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{name}: reading the body failed: {e}"))
        .to_bytes()
}

/// The plain-Rust equivalent of the hello function: build the response, collect its body.
async fn direct_response(request: http::Request<Bytes>) -> Bytes {
    let text = format!(
        "Hello from faas: {} {}\n",
        request.method(),
        request.uri().path()
    );
    let response = http::Response::builder()
        .status(http::StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(text)))
        .expect("a valid response");
    match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    }
}

/// The two benchmarked functions of one runtime.
struct Functions {
    hello: WasmFunction,
    echo_cgi: WasmFunction,
}

fn functions(rt: &Runtime, pooling: bool) -> Functions {
    let config = WasmConfig {
        cache_dir: None,
        pooling,
        ..WasmConfig::default()
    };
    let runtime = WasmRuntime::new(config).expect("the wasm engine");
    eprintln!(
        "bench: runtime with pooling requested={pooling}, in use={}",
        runtime.pooling()
    );
    rt.block_on(async {
        let hello = runtime
            .load(artifact("hello"), None)
            .await
            .expect("hello loads");
        let echo_cgi = runtime
            .load(artifact("echo-cgi"), None)
            .await
            .expect("echo-cgi loads");
        let functions = Functions {
            hello: runtime.function(hello, settings("hello")),
            echo_cgi: runtime.function(echo_cgi, settings("echo-cgi")),
        };
        // Check once what is measured below.
        let body = invoke_once(&functions.hello, "hello").await;
        assert_eq!(body.as_ref(), b"Hello from faas: GET /bench\n");
        let body = invoke_once(&functions.echo_cgi, "echo-cgi").await;
        assert!(
            String::from_utf8_lossy(&body).contains("method=GET"),
            "echo-cgi answered {body:?}"
        );
        functions
    })
}

/// A current-thread runtime: the figure is the executor's own cost. On a multi-thread runtime
/// criterion's `block_on` thread hands every iteration to a worker and back, which adds about
/// 45 µs of cross-thread wakeups here that the gateway (where the connection task and the guest
/// task share a worker) does not pay.
fn tokio_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn baseline(c: &mut Criterion) {
    let rt = tokio_runtime();
    let mut group = c.benchmark_group("baseline");
    group.throughput(Throughput::Elements(1));
    group.bench_function("direct_hyper_response", |b| {
        b.to_async(&rt)
            .iter(|| async { std::hint::black_box(direct_response(request()).await) });
    });
    group.finish();
}

fn pooled(c: &mut Criterion) {
    let rt = tokio_runtime();
    let functions = functions(&rt, true);
    for (group_name, name, function) in [
        ("hello_component", "hello", &functions.hello),
        ("echo_cgi", "echo-cgi", &functions.echo_cgi),
    ] {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("invoke", |b| {
            b.to_async(&rt)
                .iter(|| async move { std::hint::black_box(invoke_once(function, name).await) });
        });
        group.finish();
    }
}

fn on_demand(c: &mut Criterion) {
    let rt = tokio_runtime();
    let functions = functions(&rt, false);
    let mut group = c.benchmark_group("on_demand_allocator");
    group.throughput(Throughput::Elements(1));
    for (bench_name, name, function) in [
        ("hello_component", "hello", &functions.hello),
        ("echo_cgi", "echo-cgi", &functions.echo_cgi),
    ] {
        group.bench_function(bench_name, |b| {
            b.to_async(&rt)
                .iter(|| async move { std::hint::black_box(invoke_once(function, name).await) });
        });
    }
    group.finish();
}

/// Credentials that stay valid for the whole run.
struct StaticRole;

impl faas_identity::RoleSource for StaticRole {
    fn role_arn(&self) -> &str {
        "arn:aws:iam::123456789012:role/bench"
    }

    fn fetch(
        &self,
    ) -> faas_identity::BoxFuture<
        '_,
        Result<faas_identity::AwsCredentials, faas_identity::IdentityError>,
    > {
        Box::pin(async {
            Ok(faas_identity::AwsCredentials {
                access_key_id: "ASIAEXAMPLEEXAMPLE01".into(),
                secret_access_key: "x".repeat(40),
                session_token: "t".repeat(800),
                region: Some("eu-west-3".into()),
                expiration: std::time::SystemTime::now()
                    + std::time::Duration::from_secs(24 * 3600),
            })
        })
    }
}

/// Secret values as the gateway's `FunctionSecrets` keeps them: behind a `watch`, borrowed at
/// each invocation.
struct Secrets(tokio::sync::watch::Receiver<Vec<(String, String)>>);

impl faas_invoke::InvocationEnv for Secrets {
    fn each(&self, put: &mut dyn FnMut(&str, &str)) {
        for (name, value) in self.0.borrow().iter() {
            put(name, value);
        }
    }
}

fn invocation_env(c: &mut Criterion) {
    let rt = tokio_runtime();
    let config = WasmConfig {
        cache_dir: None,
        ..WasmConfig::default()
    };
    let runtime = WasmRuntime::new(config).expect("the wasm engine");
    let (plain, injected) = rt.block_on(async {
        let loaded = runtime
            .load(artifact("hello"), None)
            .await
            .expect("hello loads");
        let identity = Arc::new(faas_identity::FunctionIdentity::start(Arc::new(StaticRole)));
        identity.settled(std::time::Duration::from_secs(5)).await;
        assert!(identity.current().is_some(), "credentials cached");
        let (keep, secrets) = tokio::sync::watch::channel(vec![
            ("DB_PASSWORD".to_owned(), "p".repeat(24)),
            ("API_KEY".to_owned(), "k".repeat(40)),
            ("STRIPE_KEY".to_owned(), "s".repeat(32)),
        ]);
        // The sender lives for the whole run, as a refresh task does.
        std::mem::forget(keep);
        let mut with_env = settings("hello");
        with_env.invocation_env = vec![Arc::new(Secrets(secrets)), identity];
        let plain = runtime.function(loaded.clone(), settings("hello"));
        let injected = runtime.function(loaded, with_env);
        for f in [&plain, &injected] {
            let body = invoke_once(f, "hello").await;
            assert_eq!(body.as_ref(), b"Hello from faas: GET /bench\n");
        }
        (plain, injected)
    });
    let mut group = c.benchmark_group("invocation_env");
    group.throughput(Throughput::Elements(1));
    for (bench_name, function) in [("none", &plain), ("credentials_and_secrets", &injected)] {
        group.bench_function(bench_name, |b| {
            b.to_async(&rt)
                .iter(|| async move { std::hint::black_box(invoke_once(function, "hello").await) });
        });
    }
    group.finish();
}

criterion_group!(benches, baseline, pooled, on_demand, invocation_env);
criterion_main!(benches);
