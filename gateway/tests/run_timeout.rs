//! A run's own timeout (`x-faas-timeout-ms`, a schedule's `timeout`) replaces the function's
//! in the pod that runs it, as the cluster gateway passes it on; a caller on the public
//! listener cannot stretch a function's deadline with the same header.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use faas_gateway::host::Capabilities;
use faas_gateway::platform::{GatewayConfig, Platform};
use faas_gateway::registry::Origin;
use faas_gateway::server::Exposure;
use serde_json::json;

/// A runtime pool serving the hostile guest with a 1 s timeout, on a listener of `exposure`.
async fn serve(exposure: Exposure) -> (Arc<Platform>, std::net::SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = GatewayConfig::new(dir.path().to_path_buf());
    config.host = Capabilities::pool();
    config.wasm.cache_dir = None;
    let platform = Platform::new(config).unwrap();
    let function: faas_api::Function = serde_json::from_value(json!({
        "apiVersion": "faas.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": "hostile"},
        "spec": {"runtime": {"wasm": {"source": "configmap://fn-hostile/hostile.wasm"}},
                 "timeout": "1s"}
    }))
    .unwrap();
    let wasm = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/hostile.wasm"
    ))
    .unwrap();
    platform
        .apply(function, Ok(Bytes::from(wasm)), Origin::Api, None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(faas_gateway::server::serve_exposed(
        listener,
        Arc::clone(&platform),
        exposure,
        std::future::pending(),
    ));
    (platform, addr, dir)
}

async fn sleep_1500ms(addr: std::net::SocketAddr, run_timeout: Option<&str>) -> u16 {
    let mut headers = vec![("x-sleep-ms", "1500")];
    headers.extend(run_timeout.map(|t| ("x-faas-timeout-ms", t)));
    faas_e2e::send(
        "GET",
        &format!("http://{addr}/function/hostile/sleep"),
        &headers,
        "",
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_timeout_replaces_the_functions_in_the_pod() {
    let (_platform, pod, _dir) = serve(Exposure::All).await;
    assert_eq!(sleep_1500ms(pod, None).await, 504, "the function's own 1 s");
    assert_eq!(
        sleep_1500ms(pod, Some("10000")).await,
        200,
        "the run's 10 s"
    );
    // Nonsense is no timeout at all: the function's applies.
    assert_eq!(sleep_1500ms(pod, Some("10s")).await, 504);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_cannot_stretch_a_deadline() {
    let (_platform, public, _dir) = serve(Exposure::Public).await;
    assert_eq!(sleep_1500ms(public, Some("10000")).await, 504);
}
