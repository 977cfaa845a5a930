//! Schedules in a cluster: through the gateway, waking a function at zero, with their own
//! timeout; and the same run started by hand with the CLI.

use std::time::Duration;

use serde_json::json;

use super::{
    Cluster, deploy, faas_ok, fires_in, http_function, http_image, pods_matching, replicas,
    runs_of, selector_of, until,
};

/// A schedule-only container function sits at zero; its schedule's fire goes through the
/// gateway, which scales it up and holds the call, and the run takes longer than the
/// function's own timeout because the schedule's is longer: it succeeds, recorded as a
/// FunctionRun. A direct call is still cut at the function's own timeout; `faas run` runs the
/// schedule by hand, and `faas runs` lists both runs.
pub async fn wakes_a_function_at_zero_with_its_longer_timeout<C: Cluster>(c: &C) {
    let Some(image) = http_image(c) else { return };
    let (public, _) = super::gateway(c).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let team = c.team();
    // Deploy and the scale-down below take a few seconds; the fire comes after them.
    let cron = fires_in(Duration::from_secs(25));
    let spec = format!(
        "  timeout: 2s\n  scale: {{min: 0}}\n  schedules:\n  - name: nightly\n    cron: \
         \"{cron}\"\n    timeout: 15s\n    payload: {{sleep: 4}}\n"
    );
    deploy(
        c,
        dir.path(),
        &http_function("report", &image, 18092, &spec),
        &[],
    );
    let selector = selector_of(c, team, "fn-report")
        .await
        .expect("the function's Deployment");
    // At zero, as the gateway leaves an idle function (scale.idleAfter is 30 s at least).
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(c.client(), team);
    deployments
        .patch_scale(
            "fn-report",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .expect("scale to zero");
    until(c, "no pod left", Duration::from_secs(30), || async {
        pods_matching(c, team, &selector)
            .await
            .is_empty()
            .then_some(())
    })
    .await;

    let run = until(
        c,
        "the scheduled run ends",
        Duration::from_secs(90),
        || async {
            runs_of(c, "report")
                .await
                .into_iter()
                .find(|r| !matches!(r["status"]["phase"].as_str(), None | Some("Running")))
        },
    )
    .await;
    assert_eq!(run["spec"]["schedule"], "nightly", "{run}");
    assert_eq!(run["spec"]["trigger"], "cron", "{run}");
    assert_eq!(
        run["status"]["phase"],
        "Succeeded",
        "{run}\n{}",
        c.diagnostics()
    );
    assert_eq!(run["status"]["httpStatus"], 200, "{run}");
    assert_eq!(
        replicas(c, team, "fn-report").await,
        Some(1),
        "woken by its schedule"
    );

    // A call without the schedule's timeout is cut at the function's own (2 s) by the
    // gateway, the only part in front of a plain HTTP container: before the 4 s sleep ends
    // (a margin for a pod that enforces deadlines itself would let it answer 200).
    let reply = crate::send(
        "POST",
        &format!("{public}/function/report"),
        &[("content-type", "application/json")],
        r#"{"sleep": 4}"#,
    )
    .await;
    assert_eq!(reply.status, 504, "{}", reply.text());

    // Run by hand with the CLI, with the schedule's settings: the leading controller runs
    // it (the same path as the schedule), the CLI follows it to its end, and `faas runs`
    // lists both runs from the cluster.
    let stdout = faas_ok(c, ["run", "report", "--schedule", "nightly", "-o", "json"]);
    assert!(stdout.contains("Succeeded"), "{stdout}");
    let listed: serde_json::Value =
        serde_json::from_str(&faas_ok(c, ["runs", "report", "-o", "json"])).expect("JSON");
    let triggers: Vec<&str> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["spec"]["trigger"].as_str())
        .collect();
    assert_eq!(triggers, ["manual", "cron"], "newest first: {listed}");
}
