//! The chart alone.

use std::time::Duration;

use super::{Cluster, get, objects, ready_pods, until};

/// Controller and gateway come up Ready from the chart's Deployments, with the platform token
/// from the chart's Secret, and the gateway's readiness is what the EndpointSlices of its
/// Service say.
pub async fn comes_up_ready<C: Cluster>(c: &C) {
    let (public, admin) = super::gateway(c).await;
    assert_eq!(get(&format!("{public}/readyz")).await.0, 200);
    assert_eq!(get(&format!("{admin}/readyz")).await.0, 200);
    let release = c.release_namespace();
    let controller = format!("{}-controller", c.release());
    until(
        c,
        "the controller is ready",
        Duration::from_secs(60),
        || async { ready_pods(c, release, &controller).await.pop() },
    )
    .await;
    let service = format!("{}-gateway", c.release());
    let ready_endpoints = until(
        c,
        "the gateway Service's EndpointSlice",
        Duration::from_secs(30),
        || async {
            let ready: usize = objects(c, "discovery.k8s.io", "endpointslices", release)
                .await
                .iter()
                .filter(|s| {
                    s["metadata"]["labels"]["kubernetes.io/service-name"] == service.as_str()
                })
                .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                .filter(|e| e["conditions"]["ready"] == true)
                .count();
            (ready > 0).then_some(ready)
        },
    )
    .await;
    let gateways = ready_pods(c, release, &service).await.len();
    assert_eq!(
        ready_endpoints, gateways,
        "one ready endpoint per ready gateway pod"
    );
}
