//! A runtime pool pod's function source against the shared mock API server (`faas-kube-mock`): the
//! initial list loads each Function with its ConfigMap artifact (a missing one becomes the
//! reason it is not ready), the pod turns ready once the list is loaded, and a deletion from
//! the watch removes the function.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use faas_gateway::{GatewayConfig, Platform};
use faas_kube_mock::{Handle, Reply};
use http::Request;
use kube::client::Body;
use serde_json::{Value, json};

fn function(name: &str, source: &str) -> Value {
    json!({
        "apiVersion": "faas.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": name, "namespace": "shop", "resourceVersion": "10",
                     "labels": {"faas.dev/pool": "default"}},
        "spec": {"runtime": {"wasm": {"source": source}}}
    })
}

/// The next request, checked for its method and the start of its path and query (watches add
/// parameters the test does not pin).
async fn next(handle: &mut Handle, method: &str, path: &str) -> Reply {
    next_with_request(handle, method, path).await.1
}

async fn next_with_request(
    handle: &mut Handle,
    method: &str,
    path: &str,
) -> (Request<Body>, Reply) {
    let (request, reply) = faas_kube_mock::next(handle).await;
    assert_eq!(
        request.method().as_str(),
        method,
        "expected {method} {path}"
    );
    let uri = request.uri().to_string();
    assert!(uri.starts_with(path), "{uri} does not start with {path}");
    (request, reply)
}

async fn next_with_body(handle: &mut Handle, method: &str, path: &str) -> (Value, Reply) {
    let (request, reply) = next_with_request(handle, method, path).await;
    let body = request.into_body().collect_bytes().await.unwrap();
    (serde_json::from_slice(&body).unwrap(), reply)
}

fn reply(send: Reply, status: u16, body: Vec<u8>) {
    send.bytes(status, body);
}

/// What the controller tells the pods of namespace `shop`'s `default` pool.
fn default_pool() -> faas_gateway::source::pool::PoolIdentity {
    let plain: faas_api::Function =
        serde_json::from_value(function("any", "configmap://fn-any/any.wasm")).unwrap();
    let pool = faas_api::pool::pool_of(&plain);
    assert_eq!(pool.name, "default");
    faas_gateway::source::pool::PoolIdentity {
        name: pool.name,
        key: Some(pool.key.digest()),
    }
}

/// A pool pod's source (pod `pool-default-7d9f` of pool `default` in `shop`) against the mock,
/// up to its first list request.
async fn start_pool(state: &std::path::Path) -> (Arc<Platform>, Handle, Reply) {
    let platform = Platform::new(GatewayConfig::new(state.to_path_buf())).unwrap();
    let (client, mut api) = faas_kube_mock::client("shop");
    tokio::spawn(faas_gateway::source::pool::follow(
        Arc::downgrade(&platform),
        client,
        "shop".into(),
        default_pool(),
        Some("pool-default-7d9f".into()),
    ));
    let list = next(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions?&labelSelector=faas.dev%2Fpool%3Ddefault",
    )
    .await;
    (platform, api, list)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_loads_its_functions_from_the_api_and_follows_deletions() {
    let state = tempfile::tempdir().unwrap();
    let (platform, mut api, list) = start_pool(state.path()).await;
    reply(
        list,
        200,
        serde_json::to_vec(&json!({
            "apiVersion": "faas.dev/v1alpha1", "kind": "FunctionList",
            "metadata": {"resourceVersion": "10"},
            "items": [function("hello", "configmap://fn-hello/hello.wasm"),
                      function("broken", "configmap://fn-missing/broken.wasm")]
        }))
        .unwrap(),
    );
    let hello = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hello.wasm"),
    )
    .unwrap();
    let map = next(
        &mut api,
        "GET",
        "/api/v1/namespaces/shop/configmaps/fn-hello",
    )
    .await;
    reply(
        map,
        200,
        serde_json::to_vec(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "fn-hello", "namespace": "shop"},
            "binaryData": {"hello.wasm": base64::engine::general_purpose::STANDARD.encode(&hello)}
        }))
        .unwrap(),
    );
    // The pod reports the outcome, in its own entry, as its own field manager.
    let (report, send) = next_with_body(
        &mut api,
        "PATCH",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions/hello/status?&force=true&fieldManager=faas-pool-pool-default-7d9f",
    )
    .await;
    let entry = &report["status"]["loadState"]["pool-default-7d9f"];
    assert_eq!(entry["loaded"], true, "{report}");
    assert_eq!(entry["sha256"].as_str().map(str::len), Some(64));
    reply(
        send,
        200,
        serde_json::to_vec(&function("hello", "configmap://fn-hello/hello.wasm")).unwrap(),
    );
    let missing = next(
        &mut api,
        "GET",
        "/api/v1/namespaces/shop/configmaps/fn-missing",
    )
    .await;
    reply(
        missing,
        404,
        serde_json::to_vec(
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                   "reason": "NotFound", "code": 404, "message": "not found"}),
        )
        .unwrap(),
    );

    let (report, send) = next_with_body(
        &mut api,
        "PATCH",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions/broken/status?",
    )
    .await;
    let entry = &report["status"]["loadState"]["pool-default-7d9f"];
    assert_eq!(entry["loaded"], false);
    assert!(
        entry["reason"].as_str().unwrap().contains("fn-missing"),
        "{report}"
    );
    reply(
        send,
        200,
        serde_json::to_vec(&function("broken", "configmap://fn-missing/broken.wasm")).unwrap(),
    );

    // The watch opens once the list is loaded: by then the pod is ready.
    let watch = next(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions?&watch=true",
    )
    .await;
    assert!(platform.is_ready(), "ready once the first list is loaded");
    let loaded = platform.registry.get("hello").expect("hello registered");
    assert!(loaded.state.is_ok(), "{:?}", loaded.state.as_ref().err());
    let broken = platform.registry.get("broken").expect("broken registered");
    let reason = broken.state.as_ref().err().expect("not ready");
    assert!(
        reason.contains("ConfigMap fn-missing does not exist"),
        "{reason}"
    );

    // A deletion arrives on the watch.
    let mut event = serde_json::to_vec(&json!({
        "type": "DELETED", "object": function("hello", "configmap://fn-hello/hello.wasm")
    }))
    .unwrap();
    event.push(b'\n');
    reply(watch, 200, event);
    for _ in 0..100 {
        if platform.registry.get("hello").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        platform.registry.get("hello").is_none(),
        "deleted from the pool"
    );
    assert!(platform.registry.get("broken").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_pulls_oci_artifacts_and_refuses_one_that_does_not_match_its_pin() {
    // A real registry on loopback (plain HTTP, as for any loopback registry), anonymous.
    let registry = faas_e2e::registry::RegistryServer::start(false);
    let hello = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hello.wasm"),
    )
    .unwrap();
    let reference =
        faas_oci::Reference::parse(&format!("{}/functions/hello:v1", registry.host)).unwrap();
    let pushed = faas_oci::Registry::new(None, Vec::new())
        .unwrap()
        .push_wasm(&reference, hello.into(), &[])
        .await
        .unwrap();
    let pinned = format!("oci://{}", pushed.reference);
    let mut good = function("hello", &pinned);
    good["spec"]["runtime"]["wasm"]["sha256"] = json!(pushed.wasm_sha256);
    let mut wrong = function("wrong", &pinned);
    wrong["spec"]["runtime"]["wasm"]["sha256"] = json!("0".repeat(64));

    let state = tempfile::tempdir().unwrap();
    let (platform, mut api, list) = start_pool(state.path()).await;
    reply(
        list,
        200,
        serde_json::to_vec(&json!({
            "apiVersion": "faas.dev/v1alpha1", "kind": "FunctionList",
            "metadata": {"resourceVersion": "10"}, "items": [good, wrong]
        }))
        .unwrap(),
    );
    for (name, loaded) in [("hello", true), ("wrong", false)] {
        let (report, send) = next_with_body(
            &mut api,
            "PATCH",
            &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functions/{name}/status?"),
        )
        .await;
        let entry = &report["status"]["loadState"]["pool-default-7d9f"];
        assert_eq!(entry["loaded"], loaded, "{report}");
        if !loaded {
            let reason = entry["reason"].as_str().unwrap();
            assert!(reason.contains("digest mismatch"), "{reason}");
            assert!(reason.contains("spec.runtime.wasm.sha256"), "{reason}");
        }
        reply(
            send,
            200,
            serde_json::to_vec(&function(name, &pinned)).unwrap(),
        );
    }
    let _watch = next(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions?&watch=true",
    )
    .await;
    let call = platform.registry.get("hello").expect("hello registered");
    assert!(call.state.is_ok(), "{:?}", call.state.as_ref().err());
}

/// A Function that labels itself into the pool (with another team's role, or naming a pool
/// it does not belong to) or asks for host directories is never fetched nor loaded: the pod
/// reports why, and serves only its real member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_loads_only_functions_its_own_rule_puts_in_it() {
    let state = tempfile::tempdir().unwrap();
    let (platform, mut api, list) = start_pool(state.path()).await;
    // Another placement, self-labelled into this pool.
    let mut elsewhere = function("intruder", "configmap://fn-intruder/a.wasm");
    elsewhere["spec"]["placement"] = json!({"capacity": "on-demand"});
    // Names this pool explicitly but with another placement: same name, another key.
    let mut other_key = function("sneaky", "configmap://fn-sneaky/a.wasm");
    other_key["spec"]["placement"] = json!({"pool": "default", "capacity": "on-demand"});
    // Host directories: the pod's service-account token, the compile cache.
    let mut secrets = function("secrets", "configmap://fn-secrets/a.wasm");
    secrets["spec"]["runtime"]["wasm"]["dirs"] =
        json!([{"hostPath": "/var/run/secrets/kubernetes.io/serviceaccount", "guestPath": "/s"}]);
    let mut cache = function("cache", "configmap://fn-cache/a.wasm");
    cache["spec"]["runtime"]["wasm"]["dirs"] =
        json!([{"hostPath": "/tmp/faas", "guestPath": "/cache"}]);
    // An unpinned registry artifact.
    let unpinned = function("unpinned", "oci://registry.example.com/fn/a:latest");
    // Not even valid.
    let mut invalid = function("invalid", "configmap://fn-invalid/a.wasm");
    invalid["spec"]["timeout"] = json!("forever");
    reply(
        list,
        200,
        serde_json::to_vec(&json!({
            "apiVersion": "faas.dev/v1alpha1", "kind": "FunctionList",
            "metadata": {"resourceVersion": "10"},
            "items": [elsewhere, other_key, secrets, cache, unpinned, invalid,
                      function("hello", "configmap://fn-hello/hello.wasm")]
        }))
        .unwrap(),
    );
    for (name, why) in [
        ("intruder", "not a member of pool default"),
        ("sneaky", "with another placement"),
        ("secrets", "spec.runtime.wasm.dirs[0].hostPath"),
        ("cache", "spec.runtime.wasm.dirs[0].hostPath"),
        ("unpinned", "pinned by digest"),
        ("invalid", "spec.timeout"),
    ] {
        // No ConfigMap read first: the next request is the report.
        let (report, send) = next_with_body(
            &mut api,
            "PATCH",
            &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functions/{name}/status?"),
        )
        .await;
        let entry = &report["status"]["loadState"]["pool-default-7d9f"];
        assert_eq!(entry["loaded"], false, "{name}: {report}");
        let reason = entry["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{name}: {reason}");
        reply(send, 200, serde_json::to_vec(&function(name, "x")).unwrap());
    }
    let hello = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hello.wasm"),
    )
    .unwrap();
    let map = next(
        &mut api,
        "GET",
        "/api/v1/namespaces/shop/configmaps/fn-hello",
    )
    .await;
    reply(
        map,
        200,
        serde_json::to_vec(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "fn-hello", "namespace": "shop"},
            "binaryData": {"hello.wasm": base64::engine::general_purpose::STANDARD.encode(&hello)}
        }))
        .unwrap(),
    );
    let (report, send) = next_with_body(
        &mut api,
        "PATCH",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions/hello/status?",
    )
    .await;
    assert_eq!(
        report["status"]["loadState"]["pool-default-7d9f"]["loaded"],
        true
    );
    reply(
        send,
        200,
        serde_json::to_vec(&function("hello", "x")).unwrap(),
    );
    let _watch = next(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions?&watch=true",
    )
    .await;
    assert!(
        platform
            .registry
            .get("hello")
            .is_some_and(|e| e.state.is_ok())
    );
    for name in [
        "intruder", "sneaky", "secrets", "cache", "unpinned", "invalid",
    ] {
        assert!(
            platform.registry.get(name).is_none(),
            "{name} must not be loaded"
        );
    }
}
