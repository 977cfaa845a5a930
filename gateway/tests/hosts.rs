//! What each host builds: the cluster gateway and the sidecar load no WASM function, so they
//! build no wasmtime engine and start no epoch thread (`faas-epoch`); `faas up` does. One
//! test function, so no other test of this binary starts a runtime while threads are counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_gateway::host::Capabilities;
use faas_gateway::host::cluster::{ClusterOptions, start};
use faas_gateway::{GatewayConfig, Platform};

/// Threads of this process named like the runtime's epoch ticker, once the count is
/// `expected` or after 2 s: a new thread names itself shortly after it is spawned, so a
/// thread that should not exist is given that time to show up too.
async fn epoch_threads(expected: usize) -> usize {
    let count = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "faas-epoch")
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let now = count();
        if (now == expected && expected > 0) || std::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn platform(host: Capabilities, state: &std::path::Path) -> Arc<Platform> {
    let mut config = GatewayConfig::new(state.to_path_buf());
    config.host = host;
    config.wasm.cache_dir = None;
    Platform::new(config).unwrap()
}

fn wasm_function() -> faas_api::Function {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "faas.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": "hello"},
        "spec": {"runtime": {"wasm": {"source": "hello.wasm"}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn only_hosts_that_load_wasm_build_an_engine() {
    let state = tempfile::tempdir().unwrap();
    assert_eq!(epoch_threads(0).await, 0, "no runtime yet");

    // The cluster gateway, as its host starts it (against an API server that never answers).
    let (client, _api) = faas_kube_mock::client("shop");
    let cluster = start(
        &ClusterOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            namespaces: vec!["shop".into()],
            scale_from_zero_timeout: Duration::from_secs(1),
            idle_check_interval: Duration::from_secs(3600),
            async_queue_url: None,
            async_settings: Default::default(),
            drain_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(1),
            remote_management: false,
            platform_hosts: Vec::new(),
            wildcard_host_suffixes: Vec::new(),
            loopback_upstreams: true,
            management_token: None,
            platform_token: None,
            body_budget: faas_gateway::body::DEFAULT_BODY_BUDGET,
            pool_memory_bytes: None,
        },
        client,
    )
    .unwrap();
    assert!(
        cluster.platform.runtime.is_none(),
        "cluster gateway built a WASM runtime"
    );
    assert_eq!(
        epoch_threads(0).await,
        0,
        "cluster gateway started an epoch thread"
    );
    let refused = cluster
        .platform
        .prepare(wasm_function(), Bytes::new(), None)
        .await
        .map(drop)
        .expect_err("the cluster gateway compiles nothing");
    assert!(refused.contains("cluster gateway"), "{refused}");

    // The sidecar of a container function.
    let runtime_api = "127.0.0.1:9001".parse().unwrap();
    let sidecar = platform(Capabilities::sidecar(runtime_api), state.path());
    assert!(sidecar.runtime.is_none(), "sidecar built a WASM runtime");
    assert_eq!(epoch_threads(0).await, 0, "sidecar started an epoch thread");
    let refused = sidecar
        .prepare(wasm_function(), Bytes::new(), None)
        .await
        .map(drop)
        .expect_err("the sidecar serves a container function");
    assert!(
        refused.starts_with("spec.runtime.wasm: faas-runtime sidecar"),
        "{refused}"
    );

    // `faas up` and a pool pod do build one: the count above would have seen it.
    let local = platform(Capabilities::local(), state.path());
    assert!(local.runtime.is_some());
    assert_eq!(epoch_threads(1).await, 1, "faas up runs one epoch thread");
    let pool = platform(Capabilities::pool(), state.path());
    assert!(pool.runtime.is_some());
    assert_eq!(epoch_threads(2).await, 2);
}
