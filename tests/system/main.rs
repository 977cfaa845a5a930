//! The platform as one system: the chart installed into the Kubernetes API stand-in
//! (`tests/kube-standin`), its controller and gateway and the pods the controller renders run
//! as the real binaries by the kubelet stand-in (`faas_e2e::cluster`), a team deploying with
//! the real `faas` CLI, and requests sent through the gateway's pod address as the ALB would.
//! What the two stand-ins do not emulate is listed in their module docs; everything else is
//! the code that ships.
//!
//! ```sh
//! cargo test -p faas-e2e --test system -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use faas_e2e::cluster::{RELEASE_NAMESPACE, System, SystemOptions};
use serde_json::json;

const TEAM: &str = "team-a";

async fn get(url: &str) -> (u16, String) {
    let reply = faas_e2e::get(url).await;
    (reply.status, reply.text())
}

/// A team deploys a WASM module with `faas deploy`: the controller puts it in a pool, the pool
/// pod loads it and reports, the Function turns Ready, and the gateway answers through the
/// pool pod. Deleting the Function takes the pool, which no other Function uses, along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_function_deployed_with_the_cli_is_served_then_deleted_with_its_pool() {
    let system = System::start(SystemOptions::default()).await;
    let (public, admin) = system.gateway().await;
    let hello = faas_e2e::guest("hello");
    let out = system
        .faas()
        .args(["deploy", "hello", "--wasm"])
        .arg(&hello)
        .args(["--context", "standin", "-n", TEAM, "--timeout", "90s"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "deploy: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        system.logs()
    );
    let pool = format!("{TEAM}/pool-default");
    assert_eq!(
        system.pods(&pool).len(),
        1,
        "one pool pod (chart test values)"
    );
    let answer = system
        .until(
            "hello answers through the gateway",
            Duration::from_secs(30),
            || async {
                let (status, body) = get(&format!("{public}/function/hello/abc?x=1")).await;
                (status == 200).then_some(body)
            },
        )
        .await;
    // As in local mode, the guest sees the path below its mount point.
    assert_eq!(answer, "Hello from faas: GET /abc?x=1\n");
    // Left out, spec.concurrency is what fits the pool pod (128Mi instances in 1Gi), and
    // the gateway admits exactly what the pool pod runs.
    let pool_ip = system.ready(&pool)[0].clone();
    for system_api in [admin.clone(), format!("http://{pool_ip}:8080")] {
        let (status, functions) = get(&format!("{system_api}/system/functions")).await;
        assert_eq!(status, 200, "{system_api}: {functions}");
        let functions: serde_json::Value = serde_json::from_str(&functions).unwrap();
        assert_eq!(functions[0]["name"], "hello", "{system_api}: {functions}");
        assert_eq!(functions[0]["concurrency"], 8, "{system_api}: {functions}");
    }

    let out = system
        .faas()
        .args(["delete", "hello", "--context", "standin", "-n", TEAM])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    system
        .until(
            "the unused pool is deleted",
            Duration::from_secs(30),
            || async {
                let gone = system
                    .api
                    .object("apps", "deployments", TEAM, "pool-default")
                    .is_none()
                    && system
                        .api
                        .object("", "services", TEAM, "pool-default")
                        .is_none()
                    && system
                        .api
                        .object("faas.dev", "functions", TEAM, "hello")
                        .is_none();
                gone.then_some(())
            },
        )
        .await;
    system
        .until(
            "the pool pod is stopped",
            Duration::from_secs(20),
            || async { system.pods(&pool).is_empty().then_some(()) },
        )
        .await;
    let (status, _) = get(&format!("{public}/function/hello")).await;
    assert_eq!(status, 404, "a deleted function is not routed");
}

/// The chart alone: controller and gateway come up Ready from the rendered Deployments, with
/// the platform token from the chart's Secret, and the gateway's readiness is what the
/// EndpointSlice of its Service says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_comes_up_ready() {
    let system = System::start(SystemOptions {
        values: json!({"controller": {"replicas": 1}}),
        ..SystemOptions::default()
    })
    .await;
    let (public, admin) = system.gateway().await;
    assert_eq!(get(&format!("{public}/readyz")).await.0, 200);
    assert_eq!(get(&format!("{admin}/readyz")).await.0, 200);
    system
        .until(
            "the controller is ready",
            Duration::from_secs(60),
            || async {
                (!system
                    .ready(&format!("{RELEASE_NAMESPACE}/faas-controller"))
                    .is_empty())
                .then_some(())
            },
        )
        .await;
    let slice = system
        .api
        .object(
            "discovery.k8s.io",
            "endpointslices",
            RELEASE_NAMESPACE,
            "faas-gateway-standin",
        )
        .expect("the gateway Service's EndpointSlice");
    assert_eq!(
        slice["endpoints"][0]["conditions"]["ready"], true,
        "{slice}"
    );
}
