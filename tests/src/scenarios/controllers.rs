//! Two controllers and a schedule: only the Lease holder fires, and a run survives the loss of
//! its controller.

use std::time::Duration;

use super::{
    Cluster, delete_pod, deploy, fires_in, http_function, http_image, object, runs_of, until,
};

/// How the Lease holder is lost in the middle of a run.
#[derive(Clone, Copy, Debug)]
pub enum Loss {
    /// Its pod is deleted at once (a lost node): the run is taken over, once the Lease
    /// expires, by the other replica or by the replacement pod, both other identities.
    Pod,
    /// Its process is SIGKILLed and the kubelet restarts it in the same pod (an OOM kill):
    /// the same pod may lead again at once, and must still take the run over as orphaned.
    Process,
}

impl Loss {
    /// The test function's port: one per variant, as every scenario has its own, because
    /// the two variants may run at once and the stand-in's pods share the host's ports (a
    /// shared one let one system's readiness probe pass on the other system's pod).
    fn port(self) -> u16 {
        match self {
            Loss::Pod => 18095,
            Loss::Process => 18097,
        }
    }
}

/// Two controllers: the Lease holder fires a schedule; lost in the middle of the run, the run
/// is taken over by whoever leads next as its next attempt under the schedule's retry policy:
/// the fire time keeps exactly one FunctionRun, which succeeds.
pub async fn a_run_of_a_lost_controller_is_resumed_by_the_next_leader_once<C: Cluster>(
    c: &C,
    loss: Loss,
) {
    let Some(image) = http_image(c) else { return };
    let release = c.release_namespace();
    let controller = format!("{}-controller", c.release());
    let two = super::has_ready_pods(c, release, &controller, 2, Duration::from_secs(60)).await;
    if !c.meets(two, "two ready controllers (controller.replicas: 2)") {
        return;
    }
    let _ = super::gateway(c).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Serving first, then scheduled: the run's first attempt must meet a ready replica, or
    // it fails (NoReadyReplica) and the retry hides what this test looks at.
    deploy(
        c,
        dir.path(),
        &http_function("slow", &image, loss.port(), "  scale: {min: 1}\n"),
        &[],
    );
    until(c, "slow is ready", Duration::from_secs(90), || async {
        let function = object(c, "faas.dev", "functions", c.team(), "slow").await?;
        let ready = super::condition(&function, "Ready")?;
        (ready["status"] == "True").then_some(())
    })
    .await;
    let cron = fires_in(Duration::from_secs(10));
    let spec = format!(
        "  scale: {{min: 1}}\n  schedules:\n  - name: hourly\n    cron: \"{cron}\"\n    \
         timeout: 90s\n    payload: {{sleep: 6}}\n    retries: {{limit: 2, backoff: 1s}}\n"
    );
    deploy(
        c,
        dir.path(),
        &http_function("slow", &image, loss.port(), &spec),
        &[],
    );
    let running = until(c, "the run starts", Duration::from_secs(40), || async {
        runs_of(c, "slow")
            .await
            .into_iter()
            .find(|r| r["status"]["phase"] == "Running")
    })
    .await;
    let lease = object(
        c,
        "coordination.k8s.io",
        "leases",
        release,
        faas_api::contract::CONTROLLER_LEASE,
    )
    .await
    .expect("the controllers' Lease");
    let holder = lease["spec"]["holderIdentity"]
        .as_str()
        .expect("a holder")
        .to_owned();
    let first_owner = running["metadata"]["annotations"]["faas.dev/owner"]
        .as_str()
        .expect("an owner")
        .to_owned();
    assert!(
        first_owner.starts_with(&holder),
        "the Lease holder {holder} fired it, not {first_owner}"
    );
    assert_eq!(running["spec"]["attempt"], 1, "{running}");
    match loss {
        Loss::Pod => delete_pod(c, release, &holder).await,
        Loss::Process => {
            if !c.meets(
                c.kill_processes(release, &holder),
                "killing a pod's processes (the stand-in only)",
            ) {
                return;
            }
        }
    }

    let ended = until(c, "the run ends", Duration::from_secs(120), || async {
        runs_of(c, "slow")
            .await
            .into_iter()
            .find(|r| !matches!(r["status"]["phase"].as_str(), None | Some("Running")))
    })
    .await;
    assert_eq!(
        ended["status"]["phase"],
        "Succeeded",
        "{ended}\n{}",
        c.diagnostics()
    );
    assert_eq!(
        ended["spec"]["attempt"], 2,
        "resumed as the next attempt: {ended}"
    );
    assert_eq!(ended["metadata"]["name"], running["metadata"]["name"]);
    let owner = ended["metadata"]["annotations"]["faas.dev/owner"]
        .as_str()
        .unwrap_or_default();
    assert_ne!(owner, first_owner, "{ended}");
    if let Loss::Pod = loss {
        assert!(
            !owner.starts_with(&holder),
            "the deleted pod {holder} cannot have resumed it: {ended}"
        );
    }
    let runs = runs_of(c, "slow").await;
    assert_eq!(runs.len(), 1, "one run for the fire time: {runs:?}");
}
