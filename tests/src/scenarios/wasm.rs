//! A team's first WASM function, from `faas deploy` to its deletion.

use std::time::Duration;

use super::{Cluster, answered, deploy_wasm, faas_ok, get, object, ready_pods, until};

/// A team deploys a WASM module with `faas deploy`: the controller puts it in a pool, the pool
/// pod loads it and reports, the Function turns Ready, and the gateway answers through the
/// pool pod. Left out, `spec.concurrency` is what fits the pool pod, and the gateway admits
/// exactly what the pool pod runs. Deleting the Function takes the pool, which no other
/// Function uses, along.
pub async fn deployed_served_deleted<C: Cluster>(c: &C) {
    let (public, admin) = super::gateway(c).await;
    deploy_wasm(c, "hello", "hello", &[]);
    let team = c.team();
    let answer = answered(
        c,
        "hello answers through the gateway",
        &format!("{public}/function/hello/abc?x=1"),
    )
    .await;
    // As in local mode, the guest sees the path below its mount point.
    assert_eq!(answer, "Hello from faas: GET /abc?x=1\n");
    // The Lambda Invoke API answers on the admin listener, never on the public one.
    let invoke = |base: &str| format!("{base}/2015-03-31/functions/hello/invocations");
    let reply = crate::send("POST", &invoke(&admin), &[], "{\"n\": 1}").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "Hello from faas: POST /\n");
    assert_eq!(reply.headers["x-amz-executed-version"], "$LATEST");
    let public_reply = crate::send("POST", &invoke(&public), &[], "{}").await;
    assert_eq!(public_reply.status, 404, "{}", public_reply.text());
    let pool_pods = ready_pods(c, team, "pool-default").await;
    assert!(!pool_pods.is_empty(), "a ready pool pod");
    let pool_pod = c.reach(team, &pool_pods[0], 8080).await;
    // 128Mi instances in the pool pod's memory (1Gi by default): 8.
    let pool_memory = object(c, "apps", "deployments", team, "pool-default")
        .await
        .and_then(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let fits: u64 = match pool_memory.as_str() {
        "1Gi" => 8,
        "2Gi" => 16,
        other => {
            if !c.meets(
                false,
                &format!("a pool pod of 1Gi or 2Gi (it has {other:?})"),
            ) {
                return;
            }
            0
        }
    };
    for system_api in [admin.clone(), pool_pod] {
        let (status, functions) = get(&format!("{system_api}/system/functions")).await;
        assert_eq!(status, 200, "{system_api}: {functions}");
        let functions: serde_json::Value = serde_json::from_str(&functions).expect("JSON");
        let hello = functions
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["name"] == "hello" && f["namespace"].as_str().is_none_or(|n| n == team))
            .unwrap_or_else(|| panic!("{system_api}: hello in {functions}"));
        assert_eq!(hello["concurrency"], fits, "{system_api}: {functions}");
    }

    let pool_selector = super::selector_of(c, team, "pool-default")
        .await
        .expect("the pool's Deployment");
    faas_ok(c, ["delete", "hello"]);
    until(
        c,
        "the unused pool is deleted",
        Duration::from_secs(30),
        || async {
            let gone = object(c, "apps", "deployments", team, "pool-default")
                .await
                .is_none()
                && object(c, "", "services", team, "pool-default")
                    .await
                    .is_none()
                && object(c, "faas.dev", "functions", team, "hello")
                    .await
                    .is_none();
            gone.then_some(())
        },
    )
    .await;
    until(
        c,
        "the pool pod is stopped",
        Duration::from_secs(30),
        || async {
            super::pods_matching(c, team, &pool_selector)
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let (status, _) = get(&format!("{public}/function/hello")).await;
    assert_eq!(status, 404, "a deleted function is not routed");
}
