//! A container function's life at zero: idled down, woken by a request, deleted.

use std::time::Duration;

use super::{
    Cluster, deploy, faas_ok, get, http_function, http_image, objects, pods_matching, replicas,
    selector_of, until,
};

/// The kinds the controller renders for a container function, and what a reader calls them.
const RENDERED: [(&str, &str, &str); 7] = [
    ("", "serviceaccounts", "ServiceAccount"),
    ("", "services", "Service"),
    ("apps", "deployments", "Deployment"),
    ("policy", "poddisruptionbudgets", "PodDisruptionBudget"),
    ("networking.k8s.io", "networkpolicies", "NetworkPolicy"),
    ("discovery.k8s.io", "endpointslices", "EndpointSlice"),
    ("faas.dev", "functions", "Function"),
];

/// What is left in the team's namespace of function `name`: `Kind name` each.
async fn left_of<C: Cluster>(c: &C, name: &str) -> Vec<String> {
    let mut left = Vec::new();
    for (group, plural, kind) in RENDERED {
        for object in objects(c, group, plural, c.team()).await {
            let object_name = object["metadata"]["name"].as_str().unwrap_or_default();
            if object_name == name || object_name.starts_with(&format!("fn-{name}")) {
                left.push(format!("{kind} {object_name}"));
            }
        }
    }
    left
}

/// A container function with `scale.min: 0`: after `scale.idleAfter` without requests the
/// gateway takes it to zero; the next request is held while the gateway scales its
/// Deployment up, answered once the pod is ready, and timed as a cold start. Deleted, every
/// object rendered for it goes, its pod stops, and the gateway stops routing it.
pub async fn idles_to_zero_then_is_woken_by_a_request<C: Cluster>(c: &C) {
    let Some(image) = http_image(c) else { return };
    let (public, admin) = super::gateway(c).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let team = c.team();
    deploy(
        c,
        dir.path(),
        &http_function(
            "orders",
            &image,
            18091,
            "  scale: {min: 0, max: 2, idleAfter: 30s}\n",
        ),
        &[],
    );
    let selector = selector_of(c, team, "fn-orders")
        .await
        .expect("the function's Deployment");
    // Created with the API's default of one replica (so the deploy's Ready is proven on a
    // real pod), left to the gateway (scale.min 0), which takes it to zero once idle for
    // scale.idleAfter (30 s, the shortest allowed) at its next idle check.
    until(
        c,
        "the idle function is taken to zero",
        Duration::from_secs(75),
        || async {
            (replicas(c, team, "fn-orders").await == Some(0)
                && pods_matching(c, team, &selector).await.is_empty())
            .then_some(())
        },
    )
    .await;

    // One request, no retry: held until the pod the gateway asked for is ready.
    let (status, body) = get(&format!("{public}/function/orders/x?y=1")).await;
    assert_eq!(status, 200, "{body}\n{}", c.diagnostics());
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        body["path"], "/x?y=1",
        "as in local mode: below the mount point"
    );
    assert_eq!(replicas(c, team, "fn-orders").await, Some(1));
    assert_eq!(pods_matching(c, team, &selector).await.len(), 1);
    let (_, metrics) = get(&format!("{admin}/metrics")).await;
    // By registry key, as every series of a function in a cluster (two teams' functions of
    // one name never share one).
    let key = format!("function=\"orders.{team}\"");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("faas_cold_start_seconds_count{")
                && l.contains(&key)
                && l.contains("phase=\"scale_from_zero\"")
                && l.ends_with(" 1")),
        "one scale from zero timed:\n{metrics}"
    );
    assert!(
        metrics.contains(&format!("faas_invocations_total{{code=\"200\",{key}}} 1")),
        "{metrics}"
    );

    // Deleted: every object rendered for it goes (owner GC), its pod stops, and the gateway
    // stops routing it.
    let rendered = left_of(c, "orders").await;
    // (A PodDisruptionBudget and NetworkPolicies only for some specs: checked gone, not made.)
    for kind in [
        "ServiceAccount",
        "Service",
        "Deployment",
        "EndpointSlice",
        "Function",
    ] {
        assert!(
            rendered.iter().any(|o| o.starts_with(&format!("{kind} "))),
            "{kind} in {rendered:?}"
        );
    }
    faas_ok(c, ["delete", "orders"]);
    until(
        c,
        "nothing of orders is left",
        Duration::from_secs(60),
        || async {
            (left_of(c, "orders").await.is_empty()
                && pods_matching(c, team, &selector).await.is_empty())
            .then_some(())
        },
    )
    .await;
    let (status, _) = get(&format!("{public}/function/orders/x")).await;
    assert_eq!(status, 404, "a deleted function is not routed");
}
