//! A pool pod pulls from a private registry with the chart's `runtime.pools.registrySecret`:
//! the controller mounts the Secret's `.dockerconfigjson` as `config.json` and points
//! `DOCKER_CONFIG` at it; here the pod's source (as in `pool_source.rs`) runs in a process
//! whose `DOCKER_CONFIG` is such a folder, against Debian's `docker-registry` with htpasswd.
//!
//! The process environment is read once per process (the pod's registry client is made once),
//! so the test runs its pod half in a child process of this test binary with the environment
//! a pool pod gets; the parent starts the registry and pushes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine as _;
use faas_e2e::registry::{PASSWORD, RegistryServer, USER};
use faas_gateway::{GatewayConfig, Platform};
use serde_json::json;

const REFERENCE_ENV: &str = "FAAS_TEST_POOL_REFERENCE";
const SHA_ENV: &str = "FAAS_TEST_POOL_SHA256";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_pulls_with_the_registry_secret_mounted_as_its_docker_config() {
    let registry = RegistryServer::start(true);
    let hello = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hello.wasm"),
    )
    .unwrap();
    let reference =
        faas_oci::Reference::parse(&format!("{}/functions/hello:v1", registry.host)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pusher = registry.docker_config(dir.path(), PASSWORD);
    let pushed = faas_oci::Registry::new(Some(pusher), Vec::new())
        .unwrap()
        .push_wasm(&reference, hello.into(), &[])
        .await
        .unwrap();

    // What `kubectl create secret docker-registry` puts in `.dockerconfigjson`, mounted as
    // `config.json` in the folder `DOCKER_CONFIG` names.
    let mounted = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        mounted.path().join("config.json"),
        json!({"auths": {registry.host.clone(): {
            "username": USER, "password": PASSWORD, "auth": auth}}})
        .to_string(),
    )
    .unwrap();
    let run_pod = |docker_config: &std::path::Path| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "pod_half", "--ignored", "--nocapture"])
            .env("DOCKER_CONFIG", docker_config)
            .env(REFERENCE_ENV, format!("oci://{}", pushed.reference))
            .env(SHA_ENV, &pushed.wasm_sha256)
            .output()
            .unwrap()
    };
    let out = run_pod(mounted.path());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("loaded: true"), "{text}");

    // Without the Secret (the mount is optional: an empty folder) the pull is refused, and
    // the reason names the registry.
    let empty = tempfile::tempdir().unwrap();
    let out = run_pod(empty.path());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("loaded: false"), "{text}");
    assert!(text.contains(&registry.host), "{text}");
}

/// The pool pod: loads one Function whose artifact is the pushed reference and prints whether
/// it loaded (and why not). Run by the test above in a child process; alone it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the pod half of a_pool_pulls_with_the_registry_secret_mounted_as_its_docker_config"]
async fn pod_half() {
    let (Ok(source), Ok(sha)) = (std::env::var(REFERENCE_ENV), std::env::var(SHA_ENV)) else {
        return;
    };
    let function = json!({
        "apiVersion": "faas.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": "hello", "namespace": "shop", "resourceVersion": "10",
                     "labels": {"faas.dev/pool": "default"}},
        "spec": {"runtime": {"wasm": {"source": source, "sha256": sha}}}
    });
    let parsed: faas_api::Function = serde_json::from_value(function.clone()).unwrap();
    let pool = faas_api::pool::pool_of(&parsed);
    let identity = faas_gateway::source::pool::PoolIdentity {
        name: pool.name,
        key: Some(pool.key.digest()),
    };
    let state = tempfile::tempdir().unwrap();
    let platform: Arc<Platform> =
        Platform::new(GatewayConfig::new(state.path().to_path_buf())).unwrap();
    let (client, mut api) = faas_kube_mock::client("shop");
    tokio::spawn(faas_gateway::source::pool::follow(
        Arc::downgrade(&platform),
        client,
        "shop".into(),
        identity,
        Some("pool-default-7d9f".into()),
    ));
    let (_, list) = faas_kube_mock::next(&mut api).await;
    list.json(
        200,
        &json!({"apiVersion": "faas.dev/v1alpha1", "kind": "FunctionList",
                "metadata": {"resourceVersion": "10"}, "items": [function]}),
    );
    let (request, send) = faas_kube_mock::next(&mut api).await;
    assert!(request.uri().path().ends_with("/functions/hello/status"));
    let body = request.into_body().collect_bytes().await.unwrap();
    let report: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let entry = &report["status"]["loadState"]["pool-default-7d9f"];
    println!("loaded: {} reason: {}", entry["loaded"], entry["reason"]);
    send.json(200, &function);
}
