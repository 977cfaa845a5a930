//! The cluster gateway against a `tower-test` mock of the API server (a small router that
//! answers lists, streams watch events the test pushes, and keeps a Deployment's scale), with
//! real HTTP servers on loopback standing in for function pods: Functions and EndpointSlices
//! become routes and upstreams, requests are spread over pods, a function at zero replicas
//! is held while the gateway asks for one, and released, or answered 503 when none comes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use faas_gateway::cluster;
use faas_gateway::host::cluster::{Cluster, ClusterOptions, start};
use faas_gateway::server::Exposure;
use http::{Request, Response};
use http_body_util::Full;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use faas_kube_mock::Handle;

/// What the mock API server holds.
#[derive(Default)]
struct ApiState {
    functions: Vec<Value>,
    slices: Vec<Value>,
    /// Deployment name -> replicas.
    replicas: HashMap<String, i32>,
    /// Lease name -> Lease (the gateways' published traffic).
    leases: HashMap<String, Value>,
    /// Every write: (method, path, body).
    writes: Vec<(String, String, Value)>,
    /// Deployment name -> resourceVersion (bumped by every write; a scale write carrying
    /// another one is refused with 409, as the API server does).
    versions: HashMap<String, u64>,
    /// Simulates another gateway publishing its traffic (at this time) right after each
    /// Lease read.
    write_after_read: Option<String>,
    /// FunctionRuns (the controller's cron records), any namespace.
    runs: Vec<Value>,
    /// Every FunctionRun request: (method, path and query).
    run_requests: Vec<(String, String)>,
    /// Requests the gateway must never make, answered 405 and reported when the mock is
    /// dropped: a panic in the mock's own task would go unseen by the test.
    violations: Vec<String>,
}

struct MockApi {
    state: Arc<Mutex<ApiState>>,
    function_events: mpsc::UnboundedSender<Value>,
    slice_events: mpsc::UnboundedSender<Value>,
}

fn json_response(status: u16, value: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(value).unwrap()))
        .unwrap()
}

impl MockApi {
    /// Serves the mock's requests until the client is gone.
    fn start(mut handle: Handle, state: ApiState) -> MockApi {
        let state = Arc::new(Mutex::new(state));
        let (function_events, functions_rx) = mpsc::unbounded_channel::<Value>();
        let (slice_events, slices_rx) = mpsc::unbounded_channel::<Value>();
        let functions_rx = Arc::new(tokio::sync::Mutex::new(functions_rx));
        let slices_rx = Arc::new(tokio::sync::Mutex::new(slices_rx));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let method = request.method().as_str().to_owned();
                let uri = request.uri().to_string();
                let path = request.uri().path().to_owned();
                let body = request.into_body().collect_bytes().await.unwrap();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let watch = uri.contains("watch=true");
                if path.ends_with("/functions") || path.ends_with("/endpointslices") {
                    let functions = path.ends_with("/functions");
                    if watch {
                        // One event per watch response; the watcher comes back for more.
                        let events = if functions {
                            Arc::clone(&functions_rx)
                        } else {
                            Arc::clone(&slices_rx)
                        };
                        tokio::spawn(async move {
                            let Some(event) = events.lock().await.recv().await else {
                                return;
                            };
                            let mut line = serde_json::to_vec(&event).unwrap();
                            line.push(b'\n');
                            send.send_response(
                                Response::builder()
                                    .status(200)
                                    .body(Body::from(line))
                                    .unwrap(),
                            );
                        });
                        continue;
                    }
                    let state = shared.lock().unwrap();
                    let (kind, items) = if functions {
                        ("FunctionList", state.functions.clone())
                    } else {
                        ("EndpointSliceList", state.slices.clone())
                    };
                    send.send_response(json_response(
                        200,
                        &json!({"kind": kind, "apiVersion": "v1",
                                "metadata": {"resourceVersion": "100"}, "items": items}),
                    ));
                    continue;
                }
                let mut state = shared.lock().unwrap();
                if path.contains("/functionruns") {
                    state.run_requests.push((method.clone(), uri.clone()));
                    let namespace = path
                        .split("/namespaces/")
                        .nth(1)
                        .and_then(|rest| rest.split('/').next())
                        .map(str::to_owned);
                    let function = uri
                        .split("faas.dev%2Ffunction%3D")
                        .nth(1)
                        .map(|rest| rest.split(['&', '%']).next().unwrap_or_default().to_owned());
                    let in_scope = |run: &&Value| {
                        namespace
                            .as_deref()
                            .is_none_or(|n| run["metadata"]["namespace"] == n)
                            && function
                                .as_deref()
                                .is_none_or(|f| run["spec"]["function"] == f)
                    };
                    let response = if path.ends_with("/functionruns") {
                        let items: Vec<Value> =
                            state.runs.iter().filter(in_scope).cloned().collect();
                        json_response(
                            200,
                            &json!({"kind": "FunctionRunList", "apiVersion": "faas.dev/v1alpha1",
                                    "metadata": {"resourceVersion": "100"}, "items": items}),
                        )
                    } else {
                        let name = path.rsplit('/').next().unwrap_or_default();
                        match state
                            .runs
                            .iter()
                            .filter(in_scope)
                            .find(|r| r["metadata"]["name"] == name)
                        {
                            Some(run) => json_response(200, run),
                            None => json_response(404, &not_found()),
                        }
                    };
                    send.send_response(response);
                    continue;
                }
                if method != "GET" {
                    state
                        .writes
                        .push((method.clone(), path.clone(), body.clone()));
                    // Every write names the gateway as its field manager (what a real
                    // server records in managedFields).
                    if !uri.contains("fieldManager=faas-gateway") {
                        state
                            .violations
                            .push(format!("{method} {uri} without fieldManager=faas-gateway"));
                    }
                }
                // The gateways' Leases (in the client's namespace, "shop" here).
                if path.contains("/apis/coordination.k8s.io/v1/namespaces/shop/leases") {
                    let name = path.rsplit('/').next().unwrap().to_owned();
                    let response = match method.as_str() {
                        "GET" => {
                            let Some(lease) = state.leases.get(&name).cloned() else {
                                send.send_response(json_response(404, &not_found()));
                                continue;
                            };
                            if let Some(time) = state.write_after_read.clone() {
                                let mut other = lease.clone();
                                other["spec"]["renewTime"] = json!(time);
                                let version = bump(&other);
                                other["metadata"]["resourceVersion"] = json!(version);
                                state.leases.insert(name.clone(), other);
                            }
                            lease
                        }
                        "POST" => {
                            let name = body["metadata"]["name"].as_str().unwrap().to_owned();
                            if state.leases.contains_key(&name) {
                                send.send_response(json_response(409, &conflict()));
                                continue;
                            }
                            let mut lease = body.clone();
                            lease["metadata"]["resourceVersion"] = json!("1");
                            state.leases.insert(name, lease.clone());
                            lease
                        }
                        "PUT" => {
                            let stored = state.leases.get(&name).cloned().unwrap();
                            if body["metadata"]["resourceVersion"]
                                != stored["metadata"]["resourceVersion"]
                            {
                                send.send_response(json_response(409, &conflict()));
                                continue;
                            }
                            let mut lease = body.clone();
                            lease["metadata"]["resourceVersion"] = json!(bump(&stored));
                            state.leases.insert(name, lease.clone());
                            lease
                        }
                        other => {
                            state
                                .violations
                                .push(format!("unexpected lease request {other} {uri}"));
                            send.send_response(json_response(405, &not_found()));
                            continue;
                        }
                    };
                    send.send_response(json_response(200, &response));
                    continue;
                }
                // Deployments: the scale subresource only. Reading or patching a Deployment
                // itself is what the gateway's RBAC no longer allows.
                if !path.ends_with("/scale") {
                    state.violations.push(format!(
                        "the gateway touched a Deployment itself: {method} {uri}"
                    ));
                    send.send_response(json_response(405, &not_found()));
                    continue;
                }
                let name = path
                    .trim_end_matches("/scale")
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned();
                let replicas = *state.replicas.get(&name).unwrap_or(&0);
                let version = *state.versions.entry(name.clone()).or_insert(7);
                let response = match method.as_str() {
                    "GET" => scale(&name, replicas, version),
                    "PUT" => {
                        if body["metadata"]["resourceVersion"] != version.to_string().as_str() {
                            send.send_response(json_response(409, &conflict()));
                            continue;
                        }
                        let wanted = body["spec"]["replicas"].as_i64().unwrap() as i32;
                        state.replicas.insert(name.clone(), wanted);
                        state.versions.insert(name.clone(), version + 1);
                        scale(&name, wanted, version + 1)
                    }
                    other => {
                        state
                            .violations
                            .push(format!("unexpected request {other} {uri}"));
                        send.send_response(json_response(405, &not_found()));
                        continue;
                    }
                };
                send.send_response(json_response(200, &response));
            }
        });
        MockApi {
            state,
            function_events,
            slice_events,
        }
    }

    fn writes(&self) -> Vec<(String, String, Value)> {
        self.state.lock().unwrap().writes.clone()
    }
}

impl Drop for MockApi {
    /// Fails the test that made a request the gateway must never make (unless it is failing
    /// already).
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            state.violations.is_empty(),
            "the gateway made requests it must not: {:?}",
            state.violations
        );
    }
}

fn scale(name: &str, replicas: i32, version: u64) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
           "metadata": {"name": name, "namespace": "shop", "resourceVersion": version.to_string()},
           "spec": {"replicas": replicas}, "status": {"replicas": replicas}})
}

fn conflict() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
           "reason": "Conflict", "code": 409, "message": "the object has been modified"})
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
           "reason": "NotFound", "code": 404, "message": "not found"})
}

/// The next resourceVersion of a stored object.
fn bump(object: &Value) -> String {
    let version: u64 = object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (version + 1).to_string()
}

fn lease(name: &str, renew_time: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
           "metadata": {"name": name, "namespace": "shop", "resourceVersion": "3"},
           "spec": {"holderIdentity": "another-gateway", "renewTime": renew_time}})
}

fn function(name: &str, runtime: Value, extra: Value) -> Value {
    let mut f = json!({
        "apiVersion": "faas.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": name, "namespace": "shop", "resourceVersion": "10",
                     "creationTimestamp": "2026-11-01T00:00:00Z"},
        "spec": {"runtime": runtime}
    });
    if let (Some(f), Some(extra)) = (f.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            f.insert(k.clone(), v.clone());
        }
    }
    f
}

/// A container Function of `namespace`, created `created` seconds after a fixed time.
fn function_in(namespace: &str, name: &str, created: u32, spec_extra: Value) -> Value {
    let mut spec = json!({"runtime": {"container": {"image": "registry.example.com/f:1", "port": 8080}},
                          "scale": {"min": 1}});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "faas.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "10",
                     "uid": format!("uid-{namespace}-{name}"),
                     "creationTimestamp": format!("2026-11-01T00:{:02}:{:02}Z", created / 60, created % 60)},
        "spec": spec
    })
}

fn container() -> Value {
    json!({"container": {"image": "registry.example.com/f:1", "port": 8080}})
}

fn slice(name: &str, service: &str, pods: &[SocketAddr]) -> Value {
    slice_in("shop", name, service, pods)
}

/// A slice as the EndpointSlice controller makes it for a faas Service.
fn slice_in(namespace: &str, name: &str, service: &str, pods: &[SocketAddr]) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "20",
                     "labels": {"kubernetes.io/service-name": service,
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                                "app.kubernetes.io/managed-by": "faas-controller"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": pods.first().map_or(80, |p| p.port())}],
        "endpoints": pods.iter().enumerate().map(|(i, p)| json!({
            "addresses": [p.ip().to_string()], "conditions": {"ready": true},
            "targetRef": {"kind": "Pod", "name": format!("{service}-pod{i}"), "namespace": namespace},
        })).collect::<Vec<_>>(),
    })
}

/// A stand-in for a function pod: answers what it saw, as JSON, after `?sleep=ms`.
async fn pod(ip: &str, port: u16, id: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((ip, port)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = hyper::service::service_fn(
                move |request: Request<hyper::body::Incoming>| async move {
                    let sleep = request
                        .uri()
                        .query()
                        .and_then(|q| q.strip_prefix("sleep="))
                        .and_then(|ms| ms.parse::<u64>().ok());
                    if let Some(ms) = sleep {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let seen = json!({
                        "pod": id,
                        "path": request.uri().path_and_query().map(|p| p.as_str()),
                        "host": header("host"),
                        "forwardedHost": header("x-forwarded-host"),
                        "forwardedFor": header("x-forwarded-for"),
                        "callId": header("x-call-id"),
                        "forwardedPrefix": header("x-forwarded-prefix"),
                        "trigger": header("x-faas-trigger"),
                        "runId": header("x-faas-run-id"),
                        "attempt": header("x-faas-attempt"),
                        "timeout": header("x-faas-timeout-ms"),
                        "token": header("x-faas-platform-token"),
                    });
                    // What only the platform may say, said by the pod: believed from a
                    // platform router (a pool), dropped from a function's own server.
                    let mut response = Response::new(Full::new(Bytes::from(seen.to_string())));
                    response.headers_mut().insert(
                        faas_api::contract::POD_HEADER,
                        http::HeaderValue::from_static("another-teams-pod"),
                    );
                    response.headers_mut().insert(
                        faas_api::contract::LOG_TAIL_HEADER,
                        http::HeaderValue::from_str(&faas_api::contract::encode_log_tail(
                            &format!("printed by {id}\n"),
                        ))
                        .unwrap(),
                    );
                    Ok::<_, std::convert::Infallible>(response)
                },
            );
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    addr
}

fn options(hold: Duration) -> ClusterOptions {
    ClusterOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        namespaces: vec!["shop".into()],
        scale_from_zero_timeout: hold,
        idle_check_interval: Duration::from_secs(3600),
        async_queue_url: None,
        async_settings: Default::default(),
        drain_delay: Duration::ZERO,
        shutdown_grace: Duration::from_secs(5),
        remote_management: false,
        platform_hosts: vec!["gateway.test".into()],
        wildcard_host_suffixes: vec!["apps.example.com".into()],
        // The "pods" here listen on loopback.
        loopback_upstreams: true,
        management_token: None,
        platform_token: None,
        body_budget: faas_gateway::body::DEFAULT_BODY_BUDGET,
        pool_memory_bytes: None,
    }
}

/// A cluster gateway on the mock API, its public listener on a loopback port.
async fn gateway(state: ApiState, hold: Duration) -> (Cluster, MockApi, SocketAddr) {
    let (cluster, api, public, _admin) = gateway_with_admin(state, hold).await;
    (cluster, api, public)
}

/// [`gateway`], with its admin listener too.
async fn gateway_with_admin(
    state: ApiState,
    hold: Duration,
) -> (Cluster, MockApi, SocketAddr, SocketAddr) {
    gateway_with(options(hold), state).await
}

/// A cluster gateway with `options` on the mock API: (cluster, api, public, admin).
async fn gateway_with(
    options: ClusterOptions,
    state: ApiState,
) -> (Cluster, MockApi, SocketAddr, SocketAddr) {
    let (client, handle) = faas_kube_mock::client("shop");
    let api = MockApi::start(handle, state);
    let cluster = start(&options, client).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(faas_gateway::server::serve_exposed(
        listener,
        Arc::clone(&cluster.platform),
        Exposure::Public,
        std::future::pending(),
    ));
    let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = admin_listener.local_addr().unwrap();
    tokio::spawn(faas_gateway::server::serve_exposed(
        admin_listener,
        Arc::clone(&cluster.platform),
        Exposure::Admin,
        std::future::pending(),
    ));
    eventually("ready once both lists are in", || {
        cluster.platform.is_ready()
    })
    .await;
    (cluster, api, addr, admin)
}

async fn call(addr: SocketAddr, path: &str, host: Option<&str>) -> (u16, http::HeaderMap, Value) {
    let url = format!("http://{addr}{path}");
    let reply = faas_e2e::send(
        "POST",
        &url,
        &[("host", host.unwrap_or("gateway.test"))],
        "hi",
    )
    .await;
    let value = serde_json::from_slice(&reply.body).unwrap_or_else(|_| json!(reply.text()));
    (reply.status, reply.headers, value)
}

/// Polls `check` until it holds, for at most 30 s of wall time (a count of 10 ms sleeps was
/// 3 s at best, and much less than what a loaded machine needs to deliver a watch event).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_and_slices_become_routes_and_upstreams() {
    let echo_a = pod("127.0.0.1", 0, "echo-a").await;
    let echo_b = pod("127.0.0.2", echo_a.port(), "echo-b").await;
    let pool = pod("127.0.0.1", 0, "pool").await;
    let state = ApiState {
        functions: vec![
            function(
                "echo",
                container(),
                json!({"spec": {"runtime": {"container": {"image": "registry.example.com/echo:1", "port": 8080}},
                                "scale": {"min": 1},
                                "http": {"hosts": ["echo.fn.example.com"]}}}),
            ),
            function(
                "pooled",
                json!({"wasm": {"source": "configmap://fn-pooled/pooled.wasm"}}),
                json!({"status": {"pool": "default"}}),
            ),
            // Not served until the controller placed it.
            function(
                "unplaced",
                json!({"wasm": {"source": "configmap://x/y.wasm"}}),
                json!({}),
            ),
        ],
        slices: vec![
            slice("fn-echo-1", "fn-echo", &[echo_a, echo_b]),
            slice("pool-default-1", "pool-default", &[pool]),
        ],
        ..ApiState::default()
    };
    let (cluster, api, gateway, admin) = gateway_with_admin(state, Duration::from_secs(2)).await;

    // A container function in http mode sees the path below its mount point.
    let (status, headers, seen) = call(gateway, "/function/echo/a/b?c=1", None).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["path"], "/a/b?c=1");
    assert_eq!(seen["forwardedHost"], "gateway.test");
    assert_eq!(seen["forwardedFor"], "127.0.0.1");
    assert_eq!(
        seen["callId"].as_str(),
        headers.get("x-call-id").and_then(|v| v.to_str().ok())
    );
    // Its host route too.
    let (status, _, seen) = call(gateway, "/x", Some("echo.fn.example.com")).await;
    assert_eq!(status, 200);
    assert_eq!(seen["path"], "/x");
    // A pooled WASM function goes to its pool's router, by path, never by the client's Host.
    let (status, _, seen) = call(gateway, "/function/pooled/x", None).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["pod"], "pool");
    assert_eq!(seen["path"], "/function/pooled/x");
    assert_ne!(seen["host"], "gateway.test");
    // Why it is not ready is the operators' business (logs, /system), not the caller's.
    let (status, _, body) = call(gateway, "/function/unplaced", None).await;
    assert_eq!(status, 503);
    assert_eq!(body["reason"], "FunctionNotReady");
    assert!(
        !body["error"].as_str().unwrap().contains("runtime pool"),
        "{body}"
    );
    let detail = faas_e2e::get(&format!("http://{admin}/system/functions/unplaced.shop")).await;
    assert!(detail.text().contains("runtime pool"), "{}", detail.text());
    // A function's host route never shadows the probes (the ALB's and the kubelet's).
    let (status, _, body) = call(gateway, "/readyz", Some("echo.fn.example.com")).await;
    assert_eq!((status, body.as_str()), (200, Some("ready\n")));
    assert_eq!(
        call(admin, "/healthz", Some("echo.fn.example.com")).await.0,
        200
    );
    // The platform's own pages are not on the public listener, but on the admin one, which
    // in-cluster callers also use for functions (not by host: they address the gateway).
    for path in ["/system/functions", "/ui/", "/metrics"] {
        assert_eq!(call(gateway, path, None).await.0, 404, "{path}");
    }
    assert_eq!(call(admin, "/function/echo", None).await.0, 200);
    assert_eq!(call(admin, "/", Some("echo.fn.example.com")).await.0, 404);
    let listed = faas_e2e::get(&format!("http://{admin}/system/functions")).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let names: Vec<String> = listed
        .json()
        .as_array()
        .unwrap_or_else(|| panic!("{}", listed.text()))
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["echo", "pooled", "unplaced"]);
    let page = faas_e2e::get(&format!("http://{admin}/ui/")).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("pooled"));
    let page = faas_e2e::get(&format!("http://{admin}/ui/functions/echo")).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.text().contains("faas run echo"),
        "read-only: no Run now button"
    );
    assert!(!page.text().contains("data-run="));
    // Read-only: functions come from the Kubernetes API. The refusal is the read-only one
    // (405 ReadOnly), not any error: a 404 for an unknown name would prove nothing.
    for method in ["DELETE", "PUT"] {
        let refused = faas_e2e::send(
            method,
            &format!("http://{admin}/system/functions/echo"),
            &[faas_e2e::MANAGE],
            "",
        )
        .await;
        assert_eq!(refused.status, 405, "{method}: {}", refused.text());
        assert_eq!(refused.json()["reason"], "ReadOnly", "{method}");
    }
    assert!(cluster.platform.registry.get("echo.shop").is_some());

    // Concurrent requests are spread over both pods. Each lasts 2 s, so all twelve are in
    // flight together even when a loaded machine starts them slowly: least in-flight then
    // alternates (with 150 ms calls started one by one, every pick was a tie and a coin flip).
    let calls: Vec<_> = (0..12)
        .map(|_| tokio::spawn(call(gateway, "/function/echo/?sleep=2000", None)))
        .collect();
    let mut pods = HashMap::new();
    for c in calls {
        let (status, _, seen) = c.await.unwrap();
        assert_eq!(status, 200);
        *pods
            .entry(seen["pod"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(pods.len(), 2, "{pods:?}");
    assert!(
        pods.values().all(|n| *n >= 3),
        "least in-flight spreads the load: {pods:?}"
    );

    // A pod leaves (spot interruption): its endpoint turns not-ready and terminating while
    // it finishes what it has; nothing new goes there.
    let mut draining = slice("fn-echo-1", "fn-echo", &[echo_a, echo_b]);
    draining["endpoints"][0]["conditions"] =
        json!({"ready": false, "serving": true, "terminating": true});
    api.slice_events
        .send(json!({"type": "MODIFIED", "object": draining}))
        .unwrap();
    eventually("echo down to one pod", || {
        cluster
            .endpoints
            .ready(&cluster::endpoints::ServiceKey {
                namespace: "shop".into(),
                name: "fn-echo".into(),
            })
            .len()
            == 1
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            call(gateway, "/function/echo", None).await.2["pod"],
            "echo-b"
        );
    }

    // A deleted Function is gone, routes included.
    let deleted = function("echo", container(), json!({}));
    api.function_events
        .send(json!({"type": "DELETED", "object": deleted}))
        .unwrap();
    eventually("echo removed", || {
        cluster.platform.registry.get("echo.shop").is_none()
    })
    .await;
    assert_eq!(call(gateway, "/function/echo", None).await.0, 404);
    assert_eq!(call(gateway, "/", Some("echo.fn.example.com")).await.0, 404);
    // None of this wrote anything: the controller owns these functions' replicas.
    assert!(api.writes().is_empty(), "{:?}", api.writes());
}

fn cold_function() -> Value {
    function(
        "cold",
        container(),
        json!({"spec": {"runtime": {"container": {"image": "registry.example.com/cold:1", "port": 8080}},
                        "scale": {"min": 0, "idleAfter": "1m"}}}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_at_zero_replicas_is_held_until_a_pod_is_ready() {
    let pod_addr = pod("127.0.0.1", 0, "cold-1").await;
    let state = ApiState {
        functions: vec![cold_function()],
        replicas: [("fn-cold".to_owned(), 0)].into(),
        ..ApiState::default()
    };
    let (cluster, api, gateway, admin) = gateway_with_admin(state, Duration::from_secs(10)).await;
    let held = tokio::spawn(call(gateway, "/function/cold/work", None));
    // The gateway publishes its traffic, then asks for one replica.
    eventually("a replica asked for", || {
        api.state.lock().unwrap().replicas.get("fn-cold") == Some(&1)
    })
    .await;
    let writes = api.writes();
    // Exactly two writes: the traffic into a Lease of the gateway's namespace (not onto the
    // Deployment), then the scale subresource.
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[0].0, "POST", "{writes:?}");
    assert!(
        writes[0]
            .1
            .ends_with("/apis/coordination.k8s.io/v1/namespaces/shop/leases"),
        "{writes:?}"
    );
    assert_eq!(writes[0].2["metadata"]["name"], "activity.shop.cold");
    assert!(writes[0].2["spec"]["renewTime"].is_string(), "{writes:?}");
    assert_eq!(writes[1].0, "PUT");
    assert!(
        writes[1]
            .1
            .ends_with("/namespaces/shop/deployments/fn-cold/scale")
    );
    assert_eq!(writes[1].2["spec"]["replicas"], 1);
    assert_eq!(
        writes[1].2["metadata"]["resourceVersion"], "7",
        "guarded by the version it read"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished(), "held while no pod is ready");
    // The pod turns ready: the held request goes through at once.
    api.slice_events
        .send(json!({"type": "ADDED", "object": slice("fn-cold-1", "fn-cold", &[pod_addr])}))
        .unwrap();
    let (status, _, seen) = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("released")
        .unwrap();
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["path"], "/work");
    let metrics = cluster.platform.metrics.render();
    assert!(
        metrics.contains("faas_gateway_scale_total{event=\"from_zero\",function=\"cold.shop\"} 1"),
        "{metrics}"
    ); // The hold is timed as the function's scale_from_zero cold-start phase (over 200 ms).
    assert!(
        metrics.contains(
            "faas_cold_start_seconds_count{function=\"cold.shop\",phase=\"scale_from_zero\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "faas_cold_start_seconds_bucket{function=\"cold.shop\",phase=\"scale_from_zero\",le=\"0.1\"} 0"
        ),
        "{metrics}"
    );
    assert!(cluster.platform.registry.get("cold.shop").is_some());
    let page = faas_e2e::send(
        "GET",
        &format!("http://{admin}/ui/functions/cold.shop"),
        &[],
        "",
    )
    .await
    .text();
    assert!(page.contains("data-phase=\"scale_from_zero\""), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_that_runs_out_answers_503_with_retry_after() {
    let state = ApiState {
        functions: vec![cold_function()],
        replicas: [("fn-cold".to_owned(), 0)].into(),
        ..ApiState::default()
    };
    let (cluster, _api, gateway) = gateway(state, Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    let (status, headers, body) = call(gateway, "/function/cold", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(headers.get("retry-after").unwrap(), "5");
    assert_eq!(body["reason"], "NoReadyReplica");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("starting from zero"),
        "{body}"
    );
    assert!(cluster.platform.metrics.render().contains(
        "faas_gateway_scale_total{event=\"from_zero_timeout\",function=\"cold.shop\"} 1"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_function_goes_back_to_zero_unless_another_gateway_served_it() {
    let state = ApiState {
        functions: vec![cold_function()],
        replicas: [("fn-cold".to_owned(), 2)].into(),
        ..ApiState::default()
    };
    let (cluster, api, _gateway) = gateway(state, Duration::from_secs(1)).await;
    let target = cluster
        .scaler
        .target("shop", "cold", "fn-cold", Duration::from_secs(60));
    let now = jiff::Timestamp::now().as_millisecond();
    // Within idleAfter of its own traffic: busy, without asking the API anything but
    // publishing that traffic (into the function's Lease, created).
    assert_eq!(
        target.check_idle(now).await.unwrap(),
        cluster::scaler::IdleOutcome::Busy
    );
    assert!(
        api.state
            .lock()
            .unwrap()
            .leases
            .contains_key("activity.shop.cold")
    );
    // Another gateway served it since (its Lease write, 11 s before this check): busy.
    let at = |ms: i64| {
        jiff::Timestamp::from_millisecond(now + ms)
            .unwrap()
            .to_string()
    };
    api.state.lock().unwrap().leases.insert(
        "activity.shop.cold".into(),
        lease("activity.shop.cold", &at(50_000)),
    );
    assert_eq!(
        target.check_idle(now + 61_000).await.unwrap(),
        cluster::scaler::IdleOutcome::Busy
    );
    assert_eq!(api.state.lock().unwrap().replicas["fn-cold"], 2);
    // Idle here and by the Lease, but another gateway publishes right after our read: its
    // requests found ready pods and it asks for none, so the scale-down is undone at once.
    api.state.lock().unwrap().write_after_read = Some(at(60_000));
    assert_eq!(
        target.check_idle(now + 125_000).await.unwrap(),
        cluster::scaler::IdleOutcome::Busy
    );
    assert_eq!(api.state.lock().unwrap().replicas["fn-cold"], 2);
    let scale_writes: Vec<Value> = api
        .writes()
        .into_iter()
        .filter(|(_, path, _)| path.ends_with("/scale"))
        .map(|(_, _, body)| body["spec"]["replicas"].clone())
        .collect();
    assert_eq!(scale_writes, [json!(0), json!(2)], "down, then restored");
    api.state.lock().unwrap().write_after_read = None;
    // Nobody for over a minute: down to zero, guarded by resourceVersion.
    assert_eq!(
        target.check_idle(now + 125_000).await.unwrap(),
        cluster::scaler::IdleOutcome::ScaledDown(2)
    );
    assert_eq!(api.state.lock().unwrap().replicas["fn-cold"], 0);
    assert_eq!(
        target.check_idle(now + 130_000).await.unwrap(),
        cluster::scaler::IdleOutcome::AtZero
    );
}

/// Options of a gateway serving every namespace.
fn all_namespaces() -> ClusterOptions {
    ClusterOptions {
        namespaces: Vec::new(),
        ..options(Duration::from_millis(300))
    }
}

/// Two namespaces fight over a host, `*.com`, the platform's own host and a path; two
/// gateway replicas see the same Functions in different orders (one lists both, the other
/// lists the attacker first and hears of the owner later). Both route everything the same
/// way: to the older Function, never to the attacker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_gives_contested_routes_to_the_oldest_function() {
    let owner_pod = pod("127.0.0.1", 0, "owner").await;
    let attacker_pod = pod("127.0.0.1", 0, "attacker").await;
    // Younger, and its name sorts first (the old rule's tie-break).
    let attacker = function_in(
        "attacker",
        "aaa-grab",
        30,
        json!({"http": {"hosts": ["shop.example.com", "*.com", "gateway.test", "*.example.com"],
                        "path": "/shop/checkout"}}),
    );
    let owner = function_in(
        "shop",
        "storefront",
        0,
        json!({"http": {"hosts": ["shop.example.com"], "path": "/shop"}}),
    );
    let slices = vec![
        slice_in("shop", "fn-storefront-1", "fn-storefront", &[owner_pod]),
        slice_in("attacker", "fn-aaa-grab-1", "fn-aaa-grab", &[attacker_pod]),
    ];
    let (_one, _api_one, first, _) = gateway_with(
        all_namespaces(),
        ApiState {
            functions: vec![owner.clone(), attacker.clone()],
            slices: slices.clone(),
            ..ApiState::default()
        },
    )
    .await;
    let (two, api_two, second, _) = gateway_with(
        all_namespaces(),
        ApiState {
            functions: vec![attacker.clone()],
            slices,
            ..ApiState::default()
        },
    )
    .await;
    api_two
        .function_events
        .send(json!({"type": "ADDED", "object": owner}))
        .unwrap();
    eventually("the second replica heard of the owner", || {
        two.platform.registry.get("storefront.shop").is_some()
    })
    .await;
    for gateway in [first, second] {
        let who = |(status, _, seen): (u16, http::HeaderMap, Value)| {
            (status, seen["pod"].as_str().unwrap_or("-").to_owned())
        };
        // The host goes to its first claimant.
        assert_eq!(
            who(call(gateway, "/x", Some("shop.example.com")).await),
            (200, "owner".into())
        );
        // `*.com` and `*.example.com` are not under an allowed suffix: they capture nothing.
        assert_eq!(
            call(gateway, "/x", Some("bank.com")).await.0,
            404,
            "*.com captured a host"
        );
        assert_eq!(call(gateway, "/x", Some("other.example.com")).await.0, 404);
        // The platform's own host stays the platform's: names still route.
        assert_eq!(
            who(call(gateway, "/function/storefront/x", Some("gateway.test")).await),
            (200, "owner".into())
        );
        // Another namespace cannot mount a path inside the owner's prefix.
        assert_eq!(
            who(call(gateway, "/shop/checkout/pay", None).await),
            (200, "owner".into())
        );
        // The attacker is still served at its own names.
        assert_eq!(
            who(call(gateway, "/function/aaa-grab", None).await),
            (200, "attacker".into())
        );
    }
}

/// `http.public: false`: not on the internet-facing listener (the same 404 as a function
/// that does not exist, by name, host, path or async call), served to in-cluster callers on
/// the admin listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_function_is_not_found_publicly_but_served_in_cluster() {
    let intra_pod = pod("127.0.0.1", 0, "intra").await;
    let state = ApiState {
        functions: vec![function_in(
            "shop",
            "intra",
            0,
            json!({"http": {"public": false, "hosts": ["intra.apps.example.com"], "path": "/intra"}}),
        )],
        slices: vec![slice("fn-intra-1", "fn-intra", &[intra_pod])],
        ..ApiState::default()
    };
    let (_cluster, _api, public, admin) =
        gateway_with_admin(state, Duration::from_millis(300)).await;
    let (status, _, unknown) = call(public, "/function/nosuch", None).await;
    assert_eq!(status, 404);
    for path in [
        "/function/intra",
        "/function/intra.shop/x",
        "/async-function/intra",
    ] {
        let (status, _, body) = call(public, path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        // Word for word what an unknown name gets.
        let name = path.split('/').nth(2).unwrap();
        assert_eq!(
            body["error"].as_str().unwrap(),
            unknown["error"].as_str().unwrap().replace("nosuch", name),
            "{path}"
        );
        assert_eq!(body["reason"], unknown["reason"]);
    }
    // Its host and prefix are as if nobody had claimed them.
    let (_, _, unclaimed) = call(public, "/x", Some("nobody.apps.example.com")).await;
    for (path, host) in [("/x", Some("intra.apps.example.com")), ("/intra/x", None)] {
        let (status, _, body) = call(public, path, host).await;
        assert_eq!(status, 404, "{path} {host:?}: {body}");
        assert_eq!(body["reason"], unclaimed["reason"], "{path}");
    }
    for path in ["/function/intra/x", "/function/intra.shop/x", "/intra/x"] {
        let (status, _, seen) = call(admin, path, None).await;
        assert_eq!(
            (status, seen["pod"].as_str()),
            (200, Some("intra")),
            "{path}"
        );
    }
}

/// An internet client cannot speak for the platform: the headers that say "this is an SQS
/// batch", "a cron run", "attempt 3", and the mount point a function builds its links from,
/// never reach a function from the public listener as the client wrote them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_cannot_pose_as_a_trigger_or_choose_the_mount_point() {
    let echo = pod("127.0.0.1", 0, "echo").await;
    let pool = pod("127.0.0.1", 0, "pool").await;
    let state = ApiState {
        functions: vec![
            function(
                "echo",
                container(),
                json!({"spec": {"runtime": {"container": {"image": "registry.example.com/echo:1", "port": 8080}},
                                "scale": {"min": 1},
                                "http": {"hosts": ["echo.fn.example.com"]}}}),
            ),
            function(
                "pooled",
                json!({"wasm": {"source": "configmap://fn-pooled/pooled.wasm"}}),
                json!({"status": {"pool": "default"},
                       "spec": {"runtime": {"wasm": {"source": "configmap://fn-pooled/pooled.wasm"}},
                                "http": {"hosts": ["pooled.fn.example.com"]}}}),
            ),
        ],
        slices: vec![
            slice("fn-echo-1", "fn-echo", &[echo]),
            slice("pool-default-1", "pool-default", &[pool]),
        ],
        ..ApiState::default()
    };
    let (_cluster, _api, public, admin) = gateway_with(
        ClusterOptions {
            platform_token: Some(PLATFORM_TOKEN.into()),
            ..options(Duration::from_secs(2))
        },
        state,
    )
    .await;
    let forged = [
        ("X-Faas-Trigger", "sqs"),
        ("x-faas-run-id", "orders.nightly.forged"),
        ("x-faas-attempt", "3"),
        ("x-forwarded-prefix", "/evil"),
    ];
    let seen = |host: &'static str, path: &'static str| {
        let mut headers = forged.to_vec();
        headers.push(("host", host));
        // The token proves nothing on the public listener.
        headers.push(("x-faas-platform-token", PLATFORM_TOKEN));
        async move {
            let reply =
                faas_e2e::send("POST", &format!("http://{public}{path}"), &headers, "{}").await;
            assert_eq!(reply.status, 200, "{host}{path}: {}", reply.text());
            reply.json()
        }
    };
    for (host, path, pod, prefix) in [
        (
            "gateway.test",
            "/function/echo/x",
            "echo",
            json!("/function/echo"),
        ),
        ("echo.fn.example.com", "/x", "echo", Value::Null),
        (
            "gateway.test",
            "/function/pooled/x",
            "pool",
            json!("/function/pooled"),
        ),
        ("pooled.fn.example.com", "/x", "pool", json!("")),
    ] {
        let seen = seen(host, path).await;
        assert_eq!(seen["pod"], pod, "{host}{path}: {seen}");
        for platform_header in ["trigger", "runId", "attempt", "timeout", "token"] {
            assert_eq!(seen[platform_header], Value::Null, "{host}{path}: {seen}");
        }
        assert_eq!(seen["forwardedPrefix"], prefix, "{host}{path}: {seen}");
    }

    // The admin listener, which every pod in the cluster reaches: another team's pod with a
    // wrong token or none is just as outside; the controller's cron, with the platform token,
    // speaks for the platform, and its run's timeout goes on to the pod. The token does not.
    let run_of = |function: &'static str, token: Option<&'static str>| async move {
        let mut headers = vec![
            ("x-faas-trigger", "cron"),
            ("x-faas-run-id", "echo.nightly.20261205t020000z"),
            ("x-faas-timeout-ms", "900000"),
            ("x-call-id", "echo.nightly.20261205t020000z"),
        ];
        headers.extend(token.map(|t| ("x-faas-platform-token", t)));
        let reply = faas_e2e::send(
            "POST",
            &format!("http://{admin}/function/{function}.shop/"),
            &headers,
            "{}",
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply
    };
    let run = |token| async move { run_of("echo", token).await.json() };
    let answered = |reply: &faas_e2e::Reply, name: &str| {
        reply
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // The pods' own platform headers: a function's own server (echo) speaks for nobody, not
    // even in a run; its run's answer names the pod it came from (its slice's targetRef), for
    // the controller to read the run's log tail from. A pool's router says the tail itself.
    for token in [None, Some(PLATFORM_TOKEN)] {
        let reply = run_of("echo", token).await;
        assert_eq!(answered(&reply, faas_api::contract::LOG_TAIL_HEADER), None);
        let pod = answered(&reply, faas_api::contract::POD_HEADER);
        let expected = token.map(|_| "fn-echo-pod0".to_owned());
        assert_eq!(pod, expected, "{token:?}");
    }
    let pooled = run_of("pooled", Some(PLATFORM_TOKEN)).await;
    assert_eq!(
        answered(&pooled, faas_api::contract::LOG_TAIL_HEADER)
            .as_deref()
            .and_then(faas_api::contract::decode_log_tail)
            .as_deref(),
        Some("printed by pool\n")
    );
    assert_eq!(answered(&pooled, faas_api::contract::POD_HEADER), None);
    let public_reply = faas_e2e::send(
        "POST",
        &format!("http://{public}/function/echo/x"),
        &[("host", "gateway.test")],
        "{}",
    )
    .await;
    assert_eq!(
        answered(&public_reply, faas_api::contract::POD_HEADER),
        None
    );
    assert_eq!(
        answered(&public_reply, faas_api::contract::LOG_TAIL_HEADER),
        None
    );
    for token in [None, Some("not-the-platform-token-at-all")] {
        let seen = run(token).await;
        for platform_header in ["trigger", "runId", "timeout", "token"] {
            assert_eq!(seen[platform_header], Value::Null, "{token:?}: {seen}");
        }
        assert_ne!(seen["callId"], "echo.nightly.20261205t020000z", "{seen}");
    }
    let seen = run(Some(PLATFORM_TOKEN)).await;
    assert_eq!(seen["trigger"], "cron", "{seen}");
    assert_eq!(seen["runId"], "echo.nightly.20261205t020000z");
    assert_eq!(seen["timeout"], "900000");
    assert_eq!(seen["token"], Value::Null);
    // Its run's id is the call's, in the pod too: the function's log lines carry it.
    assert_eq!(seen["callId"], "echo.nightly.20261205t020000z");
}

const PLATFORM_TOKEN: &str = "the-platform-token-of-this-test";

fn function_run(namespace: &str, name: &str, function: &str, created: &str, phase: &str) -> Value {
    json!({"apiVersion": "faas.dev/v1alpha1", "kind": "FunctionRun",
           "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created,
                        "labels": {"faas.dev/function": function, "faas.dev/schedule": "nightly"}},
           "spec": {"function": function, "schedule": "nightly", "trigger": "cron", "attempt": 2,
                    "scheduledTime": "2026-12-05T03:00:00Z"},
           "status": {"phase": phase, "startTime": "2026-12-05T03:00:00Z",
                      "endTime": "2026-12-05T03:00:04Z", "httpStatus": 200,
                      "output": "report sent", "message": "attempt 1 was interrupted"}})
}

/// The cluster dashboard (admin listener, loopback: `kubectl port-forward`) lists the
/// controller's cron runs from FunctionRuns, newest first, of the namespaces it serves only,
/// links each to its page with the namespace, and offers no action: runs are the
/// controller's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_dashboard_shows_the_runs_of_the_namespaces_it_serves() {
    let state = ApiState {
        functions: vec![function_in("shop", "orders", 0, json!({}))],
        runs: vec![
            function_run(
                "shop",
                "orders.nightly.20261204t030000z",
                "orders",
                "2026-12-04T03:00:00Z",
                "Failed",
            ),
            function_run(
                "shop",
                "orders.nightly.20261205t030000z",
                "orders",
                "2026-12-05T03:00:00Z",
                "Succeeded",
            ),
            // Not a namespace this gateway serves.
            function_run(
                "billing",
                "invoices.nightly.20261205t030000z",
                "invoices",
                "2026-12-05T03:00:00Z",
                "Succeeded",
            ),
        ],
        ..ApiState::default()
    };
    let (_cluster, api, _public, admin) =
        gateway_with_admin(state, Duration::from_millis(300)).await;

    let page = faas_e2e::get(&format!("http://{admin}/ui/runs")).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let newer = html
        .find("orders.nightly.20261205t030000z")
        .expect("the newer run");
    let older = html
        .find("orders.nightly.20261204t030000z")
        .expect("the older run");
    assert!(newer < older, "newest first");
    assert!(
        !html.contains("invoices"),
        "another namespace's run: {html}"
    );
    assert!(
        html.contains("/ui/runs/orders.nightly.20261205t030000z?namespace=shop"),
        "{html}"
    );
    assert!(html.contains("/ui/functions/orders.shop"), "{html}");

    // Filtered by function: the selector names it and its namespace.
    let page = faas_e2e::get(&format!(
        "http://{admin}/ui/runs?function=orders.shop&phase=Failed"
    ))
    .await;
    let html = page.text();
    assert!(html.contains("orders.nightly.20261204t030000z"), "{html}");
    assert!(!html.contains("orders.nightly.20261205t030000z"), "{html}");

    let page = faas_e2e::get(&format!(
        "http://{admin}/ui/runs/orders.nightly.20261205t030000z?namespace=shop"
    ))
    .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(
        html.contains("report sent") && html.contains("attempt 1 was interrupted"),
        "{html}"
    );
    assert!(
        !html.contains("data-cancel") && !html.contains("Run again"),
        "read-only: {html}"
    );
    // Another namespace's run is not found here, even by name.
    let page = faas_e2e::get(&format!(
        "http://{admin}/ui/runs/invoices.nightly.20261205t030000z?namespace=billing"
    ))
    .await;
    assert_eq!(page.status, 404);

    let requests = api.state.lock().unwrap().run_requests.clone();
    assert!(
        requests.iter().all(|(method, _)| method == "GET"),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .all(|(_, uri)| uri.starts_with("/apis/faas.dev/v1alpha1/namespaces/shop/functionruns")),
        "only the served namespace is read: {requests:?}"
    );
}

/// One name in two namespaces: both are served at `/function/{name}.{namespace}`, the short
/// name is the older one's, the younger one never gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_name_in_two_namespaces_is_served_by_namespace() {
    let shop_pod = pod("127.0.0.1", 0, "shop").await;
    let billing_pod = pod("127.0.0.1", 0, "billing").await;
    let state = ApiState {
        // The younger one is listed first and its namespace sorts first.
        functions: vec![
            function_in("billing", "orders", 50, json!({})),
            function_in("shop", "orders", 0, json!({})),
        ],
        slices: vec![
            slice_in("shop", "fn-orders-1", "fn-orders", &[shop_pod]),
            slice_in("billing", "fn-orders-1", "fn-orders", &[billing_pod]),
        ],
        ..ApiState::default()
    };
    let (cluster, api, public, _) = gateway_with(all_namespaces(), state).await;
    for (path, pod) in [
        ("/function/orders/a", "shop"),
        ("/function/orders.shop/a", "shop"),
        ("/function/orders.billing/a", "billing"),
    ] {
        let (status, _, seen) = call(public, path, None).await;
        assert_eq!((status, seen["pod"].as_str()), (200, Some(pod)), "{path}");
        assert_eq!(seen["path"], "/a");
    }
    // The owner goes: the short name passes to the other one.
    api.function_events
        .send(json!({"type": "DELETED", "object": function_in("shop", "orders", 0, json!({}))}))
        .unwrap();
    eventually("shop's orders removed", || {
        cluster.platform.registry.get("orders.shop").is_none()
    })
    .await;
    let (status, _, seen) = call(public, "/function/orders", None).await;
    assert_eq!((status, seen["pod"].as_str()), (200, Some("billing")));
}

/// A hand-made slice (no EndpointSlice-controller label) is never an upstream; addresses no
/// pod can have are dropped from a real one. Nothing is sent anywhere: only the gateway's
/// view of the Service is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_slices_and_metadata_addresses_are_not_upstreams() {
    let mut forged = slice(
        "fn-echo-forged",
        "fn-echo",
        &["10.0.0.9:80".parse().unwrap()],
    );
    forged["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("endpointslice.kubernetes.io/managed-by");
    let mut metadata = slice("fn-echo-1", "fn-echo", &["10.0.0.8:80".parse().unwrap()]);
    metadata["endpoints"] = json!([{"addresses": ["169.254.169.254"], "conditions": {"ready": true}},
                                   {"addresses": ["fd00:ec2::254"], "conditions": {"ready": true}},
                                   {"addresses": ["127.0.0.1"], "conditions": {"ready": true}}]);
    let state = ApiState {
        functions: vec![function("echo", container(), json!({}))],
        slices: vec![forged, metadata],
        ..ApiState::default()
    };
    // As in a cluster: loopback is no pod's address either.
    let (cluster, _api, _public, _admin) = gateway_with(
        ClusterOptions {
            loopback_upstreams: false,
            ..options(Duration::from_millis(300))
        },
        state,
    )
    .await;
    let key = cluster::endpoints::ServiceKey {
        namespace: "shop".into(),
        name: "fn-echo".into(),
    };
    assert!(
        cluster.endpoints.ready(&key).is_empty(),
        "{:?}",
        cluster.endpoints.ready(&key)
    );
    assert!(
        cluster::MANAGED_BY_SELECTOR
            .contains("endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io")
    );
}

/// A failed forward (the only pod refuses the connection) answers 503 without the pod's
/// address or the Service's name: those go to the log with the call id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_forward_names_no_pod_or_service() {
    // A loopback port nobody listens on (bound, then released).
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let state = ApiState {
        functions: vec![function("echo", container(), json!({}))],
        slices: vec![slice("fn-echo-1", "fn-echo", &[closed])],
        ..ApiState::default()
    };
    let (_cluster, _api, public) = gateway(state, Duration::from_millis(300)).await;
    let (status, headers, body) = call(public, "/function/echo", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["reason"], "Unavailable");
    let text = body.to_string();
    assert!(!text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains(&closed.port().to_string()), "{text}");
    assert!(
        !text.contains("fn-echo") && !text.contains("shop/"),
        "{text}"
    );
    assert!(headers.contains_key("x-call-id"));
}
