//! A runtime pool pod (`Capabilities::pool()`) hosts functions of many teams: none of them may reach the
//! pod's files, its management API or a sibling's environment. In process, on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use faas_e2e::{get, send};
use faas_gateway::host::Capabilities;
use faas_gateway::registry::Origin;
use faas_gateway::{GatewayConfig, Platform};

fn function(name: &str, artifact: &Path, extra: &str) -> faas_api::Function {
    serde_yaml::from_str(&format!(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\n\
         spec:\n  runtime:\n    wasm:\n      source: {}\n{extra}",
        artifact.display()
    ))
    .unwrap()
}

fn platform(host: Capabilities, state: &Path) -> Arc<Platform> {
    let mut config = GatewayConfig::new(state.to_path_buf());
    config.host = host;
    Platform::new(config).unwrap()
}

async fn prepare(platform: &Platform, function: faas_api::Function) -> Result<(), String> {
    let guest = faas_e2e::guest("hello");
    let bytes = Bytes::from(std::fs::read(guest).unwrap());
    platform.prepare(function, bytes, None).await.map(drop)
}

fn dirs(host: &Path) -> String {
    format!(
        "      dirs:\n      - hostPath: {}\n        guestPath: /data\n",
        host.display()
    )
}

#[tokio::test]
async fn a_pool_refuses_host_directories() {
    let state = tempfile::tempdir().unwrap();
    // What a pool pod holds: its service-account token, say.
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("token"), "pool-token").unwrap();
    let hello = faas_e2e::guest("hello");
    let pool = platform(Capabilities::pool(), state.path());
    let err = prepare(&pool, function("reader", &hello, &dirs(secrets.path())))
        .await
        .expect_err("a pool grants no host path");
    assert!(err.contains("spec.runtime.wasm.dirs"), "{err}");
    // Without dirs the same function loads.
    prepare(&pool, function("reader", &hello, ""))
        .await
        .unwrap();
}

#[tokio::test]
async fn local_mode_refuses_grants_that_reach_the_state_directory() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    std::fs::create_dir_all(state.join("cache")).unwrap();
    let elsewhere = root.path().join("data");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let link = root.path().join("innocent");
    std::os::unix::fs::symlink(state.join("cache"), &link).unwrap();
    let hello = faas_e2e::guest("hello");
    let local = platform(Capabilities::local(), &state);

    for (what, host) in [
        ("the cache", state.join("cache")),
        ("the state directory", state.clone()),
        ("inside it", state.join("cache/sub")),
        ("a directory containing it", root.path().to_path_buf()),
        ("a symlink to the cache", link.clone()),
    ] {
        let err = prepare(&local, function("f", &hello, &dirs(&host)))
            .await
            .expect_err(what);
        assert!(
            err.contains("spec.runtime.wasm.dirs[0].hostPath"),
            "{what}: {err}"
        );
    }
    prepare(&local, function("f", &hello, &dirs(&elsewhere)))
        .await
        .unwrap();
}

/// A pool pod serving `hostile` (allowed to fetch anything, loopback written out) and
/// `sibling` (with a secret in its environment), on a loopback port.
async fn pool_with_sibling(state: &Path) -> (Arc<Platform>, SocketAddr) {
    let pool = platform(Capabilities::pool(), state);
    let hostile = faas_e2e::guest("hostile");
    let rules = "  network:\n    allowedOutboundHosts: ['http://127.0.0.1:*', 'http://[::1]:*', \
                 'http://localhost:*', '*://*:*']\n  timeout: 10s\n";
    pool.apply(
        function("hostile", &hostile, rules),
        Ok(Bytes::from(std::fs::read(&hostile).unwrap())),
        Origin::Api,
        None,
    )
    .await
    .unwrap();
    let hello = faas_e2e::guest("hello");
    pool.apply(
        function(
            "sibling",
            &hello,
            "  env:\n    SECRET: s3cr3t-of-another-team\n",
        ),
        Ok(Bytes::from(std::fs::read(&hello).unwrap())),
        Origin::Api,
        None,
    )
    .await
    .unwrap();
    pool.set_ready();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(faas_gateway::server::serve(
        listener,
        Arc::clone(&pool),
        std::future::pending(),
    ));
    (pool, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_guest_cannot_read_a_siblings_env_through_its_own_pod() {
    let state = tempfile::tempdir().unwrap();
    let (_pool, addr) = pool_with_sibling(state.path()).await;
    let port = addr.port();
    let base = format!("http://{addr}");
    for target in [
        format!("http://127.0.0.1:{port}/system/functions/sibling"),
        format!("http://127.0.0.2:{port}/system/functions/sibling"),
        format!("http://2130706433:{port}/system/functions/sibling"),
        format!("http://[::1]:{port}/system/functions/sibling"),
        format!("http://[::ffff:127.0.0.1]:{port}/system/functions/sibling"),
        format!("http://localhost:{port}/system/functions/sibling"),
        // The sibling itself, past the gateway's routing and limits.
        format!("http://127.0.0.1:{port}/function/sibling/x"),
    ] {
        let reply = send(
            "GET",
            &format!("{base}/function/hostile/fetch"),
            &[("x-target-url", &target)],
            "",
        )
        .await;
        let text = reply.text();
        assert_eq!(reply.status, 502, "{target}: {text}");
        assert!(text.contains("DestinationIpProhibited"), "{target}: {text}");
        assert!(!text.contains("s3cr3t"), "{target}: {text}");
    }
    // Private ranges are refused the same way (`outbound` unit tests: no address outside
    // loopback is ever tried from a test, in case a rule regressed); the metadata endpoint
    // was refused before any connection already.
    for target in ["http://169.254.169.254/latest/meta-data/"] {
        let reply = send(
            "GET",
            &format!("{base}/function/hostile/fetch"),
            &[("x-target-url", target)],
            "",
        )
        .await;
        assert_eq!(reply.status, 502, "{target}: {}", reply.text());
        assert!(
            reply.text().contains("DestinationIpProhibited"),
            "{target}: {}",
            reply.text()
        );
    }
    // And the pool's management API never shows env values, to any client.
    let detail = get(&format!("{base}/system/functions/sibling")).await;
    assert_eq!(detail.status, 200, "{}", detail.text());
    assert!(!detail.text().contains("s3cr3t"), "{}", detail.text());
    assert!(
        detail.json()["function"]["spec"]["env"]["SECRET"].is_string(),
        "the names stay: {}",
        detail.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_keeps_loopback_for_functions_that_list_it() {
    let state = tempfile::tempdir().unwrap();
    let local = platform(Capabilities::local(), state.path());
    let hostile = faas_e2e::guest("hostile");
    local
        .apply(
            function(
                "hostile",
                &hostile,
                "  network:\n    allowedOutboundHosts: ['http://127.0.0.1:*']\n",
            ),
            Ok(Bytes::from(std::fs::read(&hostile).unwrap())),
            Origin::Api,
            None,
        )
        .await
        .unwrap();
    local.set_ready();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(faas_gateway::server::serve(
        listener,
        Arc::clone(&local),
        std::future::pending(),
    ));
    let reply = send(
        "GET",
        &format!("http://{addr}/function/hostile/fetch"),
        &[(
            "x-target-url",
            &format!("http://127.0.0.1:{}/healthz", addr.port()),
        )],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "200\nok\n");
}
