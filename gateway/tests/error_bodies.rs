//! What a caller reads when the platform fails a call: a real trap of the hostile guest in a
//! runtime pool (the pod the cluster gateway forwards to, whose answer reaches the internet
//! as it is) says `Trapped` and nothing of the guest's wasm backtrace; in local mode the
//! developer gets the detail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use faas_gateway::host::Capabilities;
use faas_gateway::platform::{GatewayConfig, Platform};
use faas_gateway::registry::Origin;
use faas_gateway::server::Exposure;
use serde_json::json;

fn hostile() -> Bytes {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/hostile.wasm"
    );
    Bytes::from(std::fs::read(path).expect("tests/fixtures/hostile.wasm"))
}

/// A gateway with `host`'s capabilities serving the hostile guest on a loopback port.
async fn serve(host: Capabilities) -> (Arc<Platform>, std::net::SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = GatewayConfig::new(dir.path().to_path_buf());
    config.host = host;
    config.wasm.cache_dir = None;
    let platform = Platform::new(config).unwrap();
    let function: faas_api::Function = serde_json::from_value(json!({
        "apiVersion": "faas.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": "hostile"},
        "spec": {"runtime": {"wasm": {"source": "configmap://fn-hostile/hostile.wasm"}}}
    }))
    .unwrap();
    platform
        .apply(function, Ok(hostile()), Origin::Api, None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(faas_gateway::server::serve_exposed(
        listener,
        Arc::clone(&platform),
        Exposure::All,
        std::future::pending(),
    ));
    (platform, addr, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_in_a_pool_answers_its_reason_without_the_backtrace() {
    let (_platform, addr, _dir) = serve(Capabilities::pool()).await;
    let reply = faas_e2e::get(&format!("http://{addr}/function/hostile/panic")).await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["reason"], "Trapped");
    let text = reply.text().to_lowercase();
    for leak in ["wasm", "backtrace", "panicked", "0x", "hostile"] {
        assert!(!text.contains(leak), "{leak:?} in {text}");
    }
    assert!(reply.headers.contains_key("x-call-id"));
    // Its neighbour calls still work: the failure was the guest's alone.
    let ok = faas_e2e::get(&format!("http://{addr}/function/hostile/")).await;
    assert_ne!(ok.status, 500, "{}", ok.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_local_mode_the_developer_sees_why_it_trapped() {
    let (_platform, addr, _dir) = serve(Capabilities::local()).await;
    let reply = faas_e2e::get(&format!("http://{addr}/function/hostile/panic")).await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert_eq!(reply.json()["reason"], "Trapped");
    // The very detail a pool withholds (so the pool test above is not vacuous).
    let error = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("function trapped") && error.contains("wasm"),
        "{error}"
    );
}
