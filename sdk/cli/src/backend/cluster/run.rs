//! `faas run NAME` against a cluster: a `FunctionRun` created as a request (labelled
//! `faas.dev/requested`, payload in an annotation); the leading controller's scheduler adopts
//! it under that very name and runs it, so the CLI follows the resource it made.

use std::time::{Duration, Instant};

use faas_api::FunctionRun;
use faas_schedule::plan::{MANUAL, is_final, manual_run_id};
use kube::Api;
use kube::api::PostParams;

use super::Progress;
use crate::backend::RunRequest;
use crate::target::{Cluster, explain};

/// How long a run request waits, and how often it looks.
pub struct Timing {
    /// How long a request may wait for a scheduler to take it.
    pub pickup: Duration,
    pub poll: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            pickup: Duration::from_secs(30),
            poll: Duration::from_secs(1),
        }
    }
}

/// Requests the run; unless detached, follows it to its end and returns it.
pub async fn run(
    cluster: &Cluster,
    request: RunRequest<'_>,
    options: &Timing,
) -> anyhow::Result<FunctionRun> {
    let name = request.function;
    let function = super::read::get(cluster, name).await?;
    if let Some(schedule) = request.schedule
        && !function.spec.schedules.iter().any(|s| s.name == schedule)
    {
        let names: Vec<&str> = function
            .spec
            .schedules
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        anyhow::bail!(
            "function {name} has no schedule named {schedule:?} (it has: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        );
    }
    // Checked here as the controller will check them, so a bad option never makes a request.
    let given: std::collections::BTreeMap<String, serde_json::Value> = request
        .options
        .iter()
        .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
        .collect();
    let resolved = faas_api::options::for_run(&function, request.schedule, &given)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let schedule = request.schedule.unwrap_or(MANUAL);
    let id = manual_run_id(name, schedule);
    let asked = faas_api::requested_run(faas_api::RunRequest {
        id: &id,
        function: name,
        schedule,
        given: &given,
        shown: resolved.shown(),
        payload: request.payload.as_deref(),
        parent: None,
        trigger: "manual",
    })
    .map_err(|e| anyhow::anyhow!("{e} (put larger inputs in S3 and pass the key)"))?;
    let runs: Api<FunctionRun> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let created = runs
        .create(&PostParams::default(), &asked)
        .await
        .map_err(|e| explain(e, &format!("creating FunctionRun {id}")))?;
    if request.detach {
        return Ok(created);
    }
    let progress = Progress::new();
    progress.done("requested", &format!("run {id}"));
    let started = Instant::now();
    let mut said_running = false;
    loop {
        tokio::time::sleep(options.poll).await;
        let run = runs
            .get(&id)
            .await
            .map_err(|e| explain(e, &format!("reading FunctionRun {id}")))?;
        match run.status.as_ref().map(|s| s.phase) {
            None if started.elapsed() > options.pickup => anyhow::bail!(
                "no scheduler took run {id} within {:?}; hint: is faas-controller running and leading (`kubectl get lease -n faas-system`)? The request stays and runs when one does: `faas runs show {id}`",
                options.pickup
            ),
            Some(phase) if is_final(phase) => return Ok(run),
            Some(_) if !said_running => {
                progress.waiting("running");
                said_running = true;
            }
            _ => {}
        }
    }
}
