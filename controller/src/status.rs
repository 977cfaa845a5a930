//! A Function's status as a pure function of the resource, what the controller observed of
//! its objects, and the previous status (to keep `lastTransitionTime` when a condition did
//! not change). Every condition carries a reason a user can act on.
//!
//! - `ArtifactResolved`: what would run is known (an image; WASM pools come later).
//! - `TriggersReady`: how SQS triggers are served and scaled (present only with triggers).
//! - `ScheduleReady`: the schedules parse and when the next one fires (present only with
//!   schedules); the controller's Lease holder fires them.
//! - `Ready`: the function can take requests now, or why not (among the reasons:
//!   `NotAllowedInCluster`, what the cluster profile refused, naming the field;
//!   `ObjectNotOwned`, an object it needs exists and faas did not make it).
//! - `RouteConflict`: a route it asks for (its short `/function/{name}`, a host, its path)
//!   belongs to an older Function or is refused by the platform (present only then; such a
//!   function has no `status.url`, see [`url`]).

use faas_api::contract::{self, Reason};
use faas_api::scaling::ReplicasOwner;
use faas_api::{Condition, Function, FunctionStatus};
use k8s_openapi::api::apps::v1::Deployment;

/// What the controller saw of the function's objects in this reconcile.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The Deployment as the API server returned it after apply (with its status).
    pub deployment: Option<Deployment>,
    /// KEDA's `ScaledObject` kind exists in the cluster.
    pub keda: bool,
    /// The gateway's public base URL (`https://fn.example.com`), if the chart sets one.
    pub public_url: Option<String>,
    /// A WASM function's pool: its name and its Deployment as applied.
    pub pool: Option<(String, Deployment)>,
    /// A WASM function's artifact: where it was found, or (reason, message) why not.
    pub artifact: Option<Result<String, (String, String)>>,
    /// Why the function cannot join the pool it names.
    pub pool_conflict: Option<String>,
    /// The pool's pods that exist now (their load reports count; others are stale).
    pub pool_pods: Vec<String>,
    /// What the cluster profile refused (`faas_api::validate_for_cluster` with the chart's
    /// policy), each problem naming its field: nothing was rendered.
    pub refused: Option<String>,
    /// An object the Function needs exists and faas did not make it (`Deployment fn-x`).
    pub not_owned: Option<String>,
    /// A `mode: job` function's identity (its ServiceAccount) and NetworkPolicy are applied:
    /// its runs can start.
    pub job_ready: bool,
    /// The routes it asked for and did not get ([`faas_api::routing::Claims`] over every
    /// Function the controller sees).
    pub route_losses: Vec<faas_api::routing::Loss>,
    /// The webhook's token digest, or why there is none ([`crate::webhook`]).
    pub webhook: Option<faas_api::WebhookStatus>,
}

/// `True`, `False` or `Unknown`.
fn flag(ok: bool) -> &'static str {
    if ok { "True" } else { "False" }
}

/// A condition in the making: its transition time comes from [`stamp`].
fn condition(type_: &str, ok: bool, reason: &str, message: String) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: flag(ok).to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_transition_time: None,
    }
}

/// Why what would run is (or is not) known.
fn artifact(function: &Function, observed: &Observed) -> Condition {
    match &function.spec.runtime.container {
        // The cluster contract's verdict on what cannot run here, in its words.
        Some(c) => match contract::workload(function) {
            Err(reason @ (Reason::NoImage | Reason::CgiNotSupportedInCluster)) => {
                condition("ArtifactResolved", false, reason.code(), reason.to_string())
            }
            _ => condition(
                "ArtifactResolved",
                true,
                "Image",
                c.image.clone().unwrap_or_default(),
            ),
        },
        None => match &observed.artifact {
            Some(Ok(found)) => condition("ArtifactResolved", true, "Found", found.clone()),
            Some(Err((reason, message))) => {
                condition("ArtifactResolved", false, reason, message.clone())
            }
            None => condition(
                "ArtifactResolved",
                false,
                "NotChecked",
                "the artifact was not looked for".to_owned(),
            ),
        },
    }
}

/// Whether something polls the SQS queues now, and how their depth scales it: what is true
/// of the pods, not what was asked (`faas_api::scaling` keeps a poller up without KEDA).
fn triggers(function: &Function, observed: &Observed) -> Option<Condition> {
    let sqs = function.spec.sqs_triggers();
    if sqs.is_empty() {
        return None;
    }
    let queues = sqs.iter().filter(|t| t.enabled != Some(false)).count();
    if queues == 0 {
        return Some(condition(
            "TriggersReady",
            true,
            "Disabled",
            format!(
                "{} SQS queue(s), every one disabled (enabled: false): nothing polls them",
                sqs.len()
            ),
        ));
    }
    let (pollers, workload) = match &observed.pool {
        Some((pool, deployment)) => (
            format!("the pods of {}", contract::pool_object(pool)),
            Some(deployment),
        ),
        None => (
            "the runtime sidecar in the function's pods".to_owned(),
            observed.deployment.as_ref(),
        ),
    };
    let counts = workload.and_then(|d| d.status.as_ref());
    let ready = counts.and_then(|s| s.ready_replicas).unwrap_or(0);
    let current = counts.and_then(|s| s.replicas).unwrap_or(0);
    let keda = observed.pool.is_none()
        && function.spec.replicas_owner(observed.keda) == ReplicasOwner::Keda;
    let min = function.spec.min_replicas(observed.keda);
    let scaling = if observed.pool.is_some() && observed.keda {
        "KEDA scales the pool on the depth of its members' queues and on CPU".to_owned()
    } else if observed.pool.is_some() {
        "KEDA is not installed, so queue depth does not scale the pool (CPU does, within the \
         chart's bounds)"
            .to_owned()
    } else if keda {
        format!(
            "KEDA scales the function on their depth, from {min} replica(s); the first \
             message wakes it at zero"
        )
    } else {
        format!(
            "KEDA is not installed, so queue depth does not scale the function: {min} \
             replica(s) kept (scale.min, at least one for the poller)"
        )
    };
    let polled = format!("{queues} SQS queue(s) polled by {pollers}");
    Some(if ready >= 1 {
        let reason = match (observed.pool.is_some(), keda) {
            (true, _) => "PolledByPool",
            (false, true) => "ScaledByQueueDepth",
            (false, false) => "FixedReplicas",
        };
        condition(
            "TriggersReady",
            true,
            reason,
            format!("{polled} ({ready} ready); {scaling}"),
        )
    } else if keda && current == 0 && min == 0 {
        condition(
            "TriggersReady",
            true,
            "ScaledByQueueDepth",
            format!("{polled}, at zero replicas while the queues are empty; {scaling}"),
        )
    } else {
        condition(
            "TriggersReady",
            false,
            "PollerNotReady",
            format!("{polled}: none of them is ready, nothing polls yet; {scaling}"),
        )
    })
}

/// Whether the schedules can fire, and the next fire time.
fn schedules(function: &Function, now: jiff::Timestamp) -> Option<Condition> {
    let schedules = &function.spec.schedules;
    if schedules.is_empty() {
        return None;
    }
    let mut next: Option<(jiff::Timestamp, String)> = None;
    for (i, schedule) in schedules.iter().enumerate() {
        let zone_name = schedule.time_zone.as_deref().unwrap_or("UTC");
        let parsed = faas_api::cron::CronSchedule::parse(&schedule.cron)
            .map_err(|e| format!("spec.schedules[{i}].cron: {e}"))
            .and_then(|cron| {
                faas_api::cron::time_zone(zone_name)
                    .map(|zone| (cron, zone))
                    .map_err(|e| format!("spec.schedules[{i}].timeZone: {e}"))
            });
        let (cron, zone) = match parsed {
            Ok(parsed) => parsed,
            Err(why) => return Some(condition("ScheduleReady", false, "InvalidSchedule", why)),
        };
        if schedule.suspend {
            continue;
        }
        if let Some(at) = cron.upcoming(now, &zone).next()
            && next.as_ref().is_none_or(|(t, _)| at < *t)
        {
            let local = at.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M %Z");
            next = Some((at, format!("{} at {local} ({at})", schedule.name)));
        }
    }
    Some(match next {
        Some((_, when)) => condition(
            "ScheduleReady",
            true,
            "Scheduled",
            format!("{} schedule(s); next: {when}", schedules.len()),
        ),
        None => condition(
            "ScheduleReady",
            true,
            "Suspended",
            "every schedule is suspended (or never fires again)".to_owned(),
        ),
    })
}

/// A job has nothing running between runs: it is ready once its runs can start.
fn job_ready(observed: &Observed) -> Condition {
    if observed.job_ready {
        condition(
            "Ready",
            true,
            "RunsAsJobs",
            "each run is a Kubernetes Job, started by its schedules or `faas run`".to_owned(),
        )
    } else {
        condition(
            "Ready",
            false,
            "Pending",
            "its ServiceAccount is not applied yet".to_owned(),
        )
    }
}

/// Readiness from the Deployment's own status.
fn ready_from(deployment: Option<&Deployment>) -> Condition {
    let Some(deployment) = deployment else {
        return condition(
            "Ready",
            false,
            "Pending",
            "the Deployment is not created yet".to_owned(),
        );
    };
    let desired = deployment.spec.replicas.unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let stalled = status.conditions.unwrap_or_default().into_iter().find(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.status.as_deref() == Some("False")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if let Some(stalled) = stalled {
        return condition(
            "Ready",
            false,
            "ProgressDeadlineExceeded",
            format!(
                "the rollout is stuck ({}); look at the pods' events (image pull, crash \
                 loop, unschedulable on the functions node group)",
                stalled.message.unwrap_or_default()
            ),
        );
    }
    if desired == 0 {
        return condition(
            "Ready",
            true,
            "ScaledToZero",
            "no replicas (scale.min is 0); one starts when work arrives".to_owned(),
        );
    }
    if ready >= 1 && updated >= desired {
        return condition(
            "Ready",
            true,
            "Available",
            format!("{ready}/{desired} replicas ready"),
        );
    }
    condition(
        "Ready",
        false,
        "Progressing",
        format!("{ready}/{desired} replicas ready, {updated} updated"),
    )
}

/// Readiness of a WASM function: its pool's Deployment, then what the pool's live pods
/// reported about this function's current generation.
fn pool_ready(
    pool: &str,
    deployment: &Deployment,
    function: &Function,
    observed: &Observed,
) -> Condition {
    let object = contract::pool_object(pool);
    let mut ready = ready_from(Some(deployment));
    if let Some(message) = ready.message.as_mut() {
        *message = format!("{object}: {message}");
    }
    if ready.status != "True" || ready.reason.as_deref() == Some("ScaledToZero") {
        return ready;
    }
    let generation = function.metadata.generation;
    let no_reports = Default::default();
    let reports = function
        .status
        .as_ref()
        .map_or(&no_reports, |s| &s.load_state);
    let current: Vec<_> = reports
        .iter()
        .filter(|(pod, report)| observed.pool_pods.contains(pod) && report.generation == generation)
        .collect();
    if let Some((pod, report)) = current.iter().find(|(_, r)| !r.loaded) {
        return condition(
            "Ready",
            false,
            "LoadFailed",
            format!(
                "pod {pod} of {object} could not load it: {}",
                report.reason.clone().unwrap_or_default()
            ),
        );
    }
    let loaded = current.len();
    let serving = deployment
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let serving = usize::try_from(serving).unwrap_or(0);
    if loaded < serving.max(1) {
        return condition(
            "Ready",
            false,
            "Loading",
            format!("loaded in {loaded} of {serving} ready pods of {object}"),
        );
    }
    condition(
        "Ready",
        true,
        "Available",
        format!("loaded in {loaded}/{serving} pods of {object}"),
    )
}

/// A WASM function's `Degraded` condition: `True` when a live pool pod serving its current
/// generation reports it serves without something it should have (its role's credentials, a
/// secret), naming the pod; `False` while they all serve it whole; none outside a pool or
/// before any pod reported.
fn pool_degraded(function: &Function, observed: &Observed) -> Option<Condition> {
    let (pool, _) = observed.pool.as_ref()?;
    let reports = &function.status.as_ref()?.load_state;
    let generation = function.metadata.generation;
    let current = reports.iter().filter(|(pod, report)| {
        observed.pool_pods.contains(pod) && report.generation == generation && report.loaded
    });
    let mut any = false;
    for (pod, report) in current {
        any = true;
        if let Some(why) = &report.degraded {
            return Some(condition(
                "Degraded",
                true,
                &why.reason,
                format!(
                    "pod {pod} of {}: {}",
                    contract::pool_object(pool),
                    why.message
                ),
            ));
        }
    }
    any.then(|| condition("Degraded", false, "Serving", "served whole".to_owned()))
}

/// Why nothing was (or may be) applied for this function in this cluster, if so.
fn refusal(observed: &Observed) -> Option<Condition> {
    if let Some(why) = &observed.refused {
        return Some(condition(
            "Ready",
            false,
            "NotAllowedInCluster",
            why.clone(),
        ));
    }
    observed.not_owned.as_ref().map(|object| {
        condition(
            "Ready",
            false,
            "ObjectNotOwned",
            format!(
                "{object} exists and was not made by faas; it is left alone (rename the \
                 Function, or remove that object)"
            ),
        )
    })
}

/// Why some of its routes are not the function's, if any did not go its way.
fn route_conflict(function: &Function, observed: &Observed) -> Option<Condition> {
    if observed.route_losses.is_empty() {
        return None;
    }
    let taken = observed
        .route_losses
        .iter()
        .any(|l| matches!(l, faas_api::routing::Loss::Taken { .. }));
    let lost: Vec<String> = observed
        .route_losses
        .iter()
        .map(|l| l.to_string())
        .collect();
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let namespace = function.metadata.namespace.as_deref().unwrap_or_default();
    let qualified = faas_api::routing::qualified_name(name, namespace);
    // A condition that is there only while something is wrong: status True says "conflict".
    Some(condition(
        "RouteConflict",
        true,
        if taken {
            "RouteTaken"
        } else {
            "RouteNotAllowed"
        },
        format!(
            "{}; the function is still reachable at /function/{qualified}",
            lost.join("; ")
        ),
    ))
}

/// `status.url`: the short `/function/{name}` under the public base URL, only for a
/// function that the public can reach (`spec.http.public` not false) and that got every
/// route it asked for; a loser's short URL would be another Function's.
fn url(function: &Function, observed: &Observed) -> Option<String> {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let base = observed.public_url.as_ref()?;
    (faas_api::routing::is_public(function) && observed.route_losses.is_empty())
        .then(|| format!("{}/function/{name}", base.trim_end_matches('/')))
}

/// The status to write.
pub fn status(function: &Function, observed: &Observed, now: jiff::Timestamp) -> FunctionStatus {
    let previous = function.status.clone().unwrap_or_default();
    let mut conditions = Vec::new();
    let ready = match faas_api::validate(function) {
        Err(errors) => condition("Ready", false, "InvalidSpec", errors.to_string()),
        Ok(()) => {
            let artifact = artifact(function, observed);
            let resolved = artifact.status == "True";
            let blocker = (!resolved).then(|| {
                condition(
                    "Ready",
                    false,
                    artifact.reason.as_deref().unwrap_or("ArtifactNotResolved"),
                    artifact.message.clone().unwrap_or_default(),
                )
            });
            conditions.push(artifact);
            conditions.extend(triggers(function, observed));
            let conflict = observed
                .pool_conflict
                .as_ref()
                .map(|why| condition("Ready", false, "PoolConflict", why.clone()));
            refusal(observed)
                .or(blocker)
                .or(conflict)
                .unwrap_or_else(|| match &observed.pool {
                    Some((name, deployment)) => pool_ready(name, deployment, function, observed),
                    None if function.spec.is_job() => job_ready(observed),
                    None => ready_from(observed.deployment.as_ref()),
                })
        }
    };
    conditions.insert(0, ready);
    conditions.extend(pool_degraded(function, observed));
    conditions.extend(schedules(function, now));
    conditions.extend(route_conflict(function, observed));
    let workload = observed
        .deployment
        .as_ref()
        .or(observed.pool.as_ref().map(|(_, d)| d));
    let deployment_status = workload.and_then(|d| d.status.clone()).unwrap_or_default();
    FunctionStatus {
        conditions: stamp(conditions, &previous.conditions, now),
        url: url(function, observed),
        // The scheduler's fields (its own field manager): never part of the reconciler's apply.
        last_schedules: Default::default(),
        schedule_timings: Default::default(),
        observed_generation: function.metadata.generation,
        runtime: Some(faas_api::replace::runtime_kind(function).to_owned()),
        replicas: workload.map(|_| deployment_status.replicas.unwrap_or(0)),
        ready_replicas: workload.map(|_| deployment_status.ready_replicas.unwrap_or(0)),
        pool: observed.pool.as_ref().map(|(name, _)| name.clone()),
        // The pool pods' field (their own field managers), never the reconciler's.
        load_state: Default::default(),
        webhook: observed.webhook.clone(),
    }
}

/// Sets each condition's `lastTransitionTime`: kept from `previous` when its status did not
/// change, `now` otherwise.
pub fn stamp(
    mut conditions: Vec<Condition>,
    previous: &[Condition],
    now: jiff::Timestamp,
) -> Vec<Condition> {
    for c in &mut conditions {
        let before = previous.iter().find(|p| p.type_ == c.type_);
        c.last_transition_time = match before {
            Some(p) if p.status == c.status && p.last_transition_time.is_some() => {
                p.last_transition_time.clone()
            }
            _ => Some(now.to_string()),
        };
    }
    conditions
}

/// `status` without the scheduler's fields: what the reconciler compares and applies.
pub fn reconciler_part(status: &FunctionStatus) -> FunctionStatus {
    FunctionStatus {
        last_schedules: Default::default(),
        schedule_timings: Default::default(),
        load_state: Default::default(),
        ..status.clone()
    }
}

/// The condition of `type_`, if present.
pub fn find<'a>(status: &'a FunctionStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::{
        ContainerMode, ContainerRuntime, FunctionSpec, RuntimeSpec, ScaleSpec, SqsTrigger,
        TriggersSpec,
    };
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

    fn function(container: Option<ContainerRuntime>) -> Function {
        let mut f = Function::new(
            "orders",
            FunctionSpec {
                runtime: RuntimeSpec {
                    container,
                    wasm: None,
                },
                ..FunctionSpec::default()
            },
        );
        f.metadata.generation = Some(7);
        f
    }

    fn http() -> Option<ContainerRuntime> {
        Some(ContainerRuntime {
            image: Some("registry.example.com/orders:1".into()),
            port: Some(8080),
            ..ContainerRuntime::default()
        })
    }

    fn deployment(replicas: i32, ready: i32, updated: i32) -> Deployment {
        Deployment {
            spec: DeploymentSpec {
                replicas: Some(replicas),
                ..DeploymentSpec::default()
            },
            status: Some(DeploymentStatus {
                replicas: Some(replicas),
                ready_replicas: Some(ready),
                updated_replicas: Some(updated),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        }
    }

    fn ready(status: &FunctionStatus) -> (String, String) {
        let c = find(status, "Ready").expect("Ready");
        (c.status.clone(), c.reason.clone().unwrap_or_default())
    }

    fn at(second: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(second).expect("valid")
    }

    #[test]
    fn ready_follows_the_deployment() {
        let f = function(http());
        let seen = |d: Option<Deployment>| Observed {
            deployment: d,
            ..Observed::default()
        };
        let cases = [
            (None, ("False", "Pending")),
            (Some(deployment(2, 0, 2)), ("False", "Progressing")),
            (Some(deployment(2, 2, 1)), ("False", "Progressing")),
            (Some(deployment(2, 1, 2)), ("True", "Available")),
            (Some(deployment(0, 0, 0)), ("True", "ScaledToZero")),
        ];
        for (d, (want_status, want_reason)) in cases {
            let s = status(&f, &seen(d.clone()), at(0));
            assert_eq!(
                ready(&s),
                (want_status.to_owned(), want_reason.to_owned()),
                "{d:?}"
            );
            assert_eq!(s.observed_generation, Some(7));
        }
        let mut stuck = deployment(1, 0, 1);
        if let Some(st) = stuck.status.as_mut() {
            st.conditions = Some(vec![DeploymentCondition {
                type_: Some("Progressing".into()),
                status: Some("False".into()),
                reason: Some("ProgressDeadlineExceeded".into()),
                message: Some("ReplicaSet \"fn-orders-1\" has timed out progressing.".into()),
                ..DeploymentCondition::default()
            }]);
        }
        let s = status(&f, &seen(Some(stuck)), at(0));
        assert_eq!(ready(&s).1, "ProgressDeadlineExceeded");
        assert!(
            find(&s, "Ready")
                .and_then(|c| c.message.clone())
                .is_some_and(|m| m.contains("timed out progressing")),
            "{s:?}"
        );
    }

    #[test]
    fn what_cannot_run_in_a_cluster_says_why() {
        let no_image = function(Some(ContainerRuntime {
            command: vec!["python3".into()],
            port: Some(8080),
            ..ContainerRuntime::default()
        }));
        assert_eq!(
            ready(&status(&no_image, &Observed::default(), at(0))).1,
            "NoImage"
        );
        let cgi = function(Some(ContainerRuntime {
            image: Some("a:1".into()),
            mode: ContainerMode::Cgi,
            ..ContainerRuntime::default()
        }));
        assert_eq!(
            ready(&status(&cgi, &Observed::default(), at(0))).1,
            "CgiNotSupportedInCluster"
        );
        let mut wasm = function(None);
        wasm.spec.runtime.wasm = Some(faas_api::WasmRuntime {
            source: "oci://registry.example.com/fn/hello:1".into(),
            ..faas_api::WasmRuntime::default()
        });
        let s = status(&wasm, &Observed::default(), at(0));
        assert_eq!(ready(&s).1, "NotChecked");
        assert_eq!(s.runtime.as_deref(), Some("wasm"));
        let missing = Observed {
            artifact: Some(Err((
                "ArtifactNotFound".into(),
                "ConfigMap fn-a has no key a.wasm".into(),
            ))),
            ..Observed::default()
        };
        assert_eq!(ready(&status(&wasm, &missing, at(0))).1, "ArtifactNotFound");
        let pooled = Observed {
            artifact: Some(Ok("ConfigMap fn-a, key a.wasm".into())),
            pool: Some(("default".into(), deployment(2, 2, 2))),
            pool_pods: vec!["pool-default-a".into(), "pool-default-b".into()],
            ..Observed::default()
        };
        // No pod reported yet: loading.
        let s = status(&wasm, &pooled, at(0));
        assert_eq!(ready(&s).1, "Loading");
        assert_eq!(s.pool.as_deref(), Some("default"));
        assert_eq!(s.ready_replicas, Some(2));
        let report = |loaded: bool, generation: i64| faas_api::PodLoadState {
            loaded,
            generation: Some(generation),
            reason: (!loaded).then(|| "invalid wasm: bad magic".to_owned()),
            ..faas_api::PodLoadState::default()
        };
        let mut reported = wasm.clone();
        reported.status = Some(FunctionStatus {
            load_state: [
                ("pool-default-a".to_owned(), report(true, 7)),
                ("pool-default-b".to_owned(), report(true, 7)),
                // A pod that is gone: its word does not count.
                ("pool-default-old".to_owned(), report(false, 7)),
            ]
            .into(),
            ..FunctionStatus::default()
        });
        let s = status(&reported, &pooled, at(0));
        assert_eq!(ready(&s).1, "Available");
        assert!(
            find(&s, "Ready")
                .and_then(|c| c.message.clone())
                .is_some_and(|m| m == "loaded in 2/2 pods of pool-default"),
            "{s:?}"
        );
        assert!(
            s.load_state.is_empty(),
            "the pods' field, not the reconciler's"
        );
        // An older generation does not count; a failure of the current one says why.
        if let Some(st) = reported.status.as_mut() {
            st.load_state
                .insert("pool-default-b".into(), report(true, 6));
        }
        assert_eq!(ready(&status(&reported, &pooled, at(0))).1, "Loading");
        if let Some(st) = reported.status.as_mut() {
            st.load_state
                .insert("pool-default-b".into(), report(false, 7));
        }
        let s = status(&reported, &pooled, at(0));
        assert_eq!(ready(&s).1, "LoadFailed");
        assert!(
            find(&s, "Ready")
                .and_then(|c| c.message.clone())
                .is_some_and(|m| m.contains("pool-default-b") && m.contains("bad magic")),
            "{s:?}"
        );
        let conflicted = Observed {
            pool_conflict: Some("pool batch already hosts...".into()),
            ..pooled
        };
        assert_eq!(ready(&status(&wasm, &conflicted, at(0))).1, "PoolConflict");
        let mut invalid = function(http());
        invalid.spec.timeout = Some("soon".into());
        let s = status(&invalid, &Observed::default(), at(0));
        assert_eq!(ready(&s).1, "InvalidSpec");
        assert!(
            find(&s, "Ready")
                .and_then(|c| c.message.clone())
                .is_some_and(|m| m.contains("spec.timeout")),
            "{s:?}"
        );
    }

    #[test]
    fn a_pool_pod_serving_a_function_without_its_role_or_secret_makes_it_degraded() {
        let mut wasm = function(None);
        wasm.spec.runtime.wasm = Some(faas_api::WasmRuntime {
            source: "oci://registry.example.com/fn/hello:1".into(),
            ..faas_api::WasmRuntime::default()
        });
        let pooled = Observed {
            artifact: Some(Ok("ConfigMap fn-a, key a.wasm".into())),
            pool: Some(("default".into(), deployment(2, 2, 2))),
            pool_pods: vec!["pool-default-a".into(), "pool-default-b".into()],
            ..Observed::default()
        };
        let degraded = |reason: &str| {
            Some(faas_api::PodDegradation {
                reason: reason.into(),
                message: "Secret db: no Secret db in namespace team-a".into(),
            })
        };
        let report =
            |generation: i64, degraded: Option<faas_api::PodDegradation>| faas_api::PodLoadState {
                loaded: true,
                generation: Some(generation),
                degraded,
                ..faas_api::PodLoadState::default()
            };
        let with = |reports: Vec<(&str, faas_api::PodLoadState)>| {
            let mut f = wasm.clone();
            f.status = Some(FunctionStatus {
                load_state: reports
                    .into_iter()
                    .map(|(pod, r)| (pod.to_owned(), r))
                    .collect(),
                ..FunctionStatus::default()
            });
            status(&f, &pooled, at(0))
        };
        let flag = |s: &FunctionStatus| {
            find(s, "Degraded").map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
        };

        // No report yet: nothing to say.
        assert_eq!(flag(&with(vec![])), None);
        // All whole: False.
        let whole = with(vec![
            ("pool-default-a", report(7, None)),
            ("pool-default-b", report(7, None)),
        ]);
        assert_eq!(flag(&whole), Some(("False".into(), "Serving".into())));
        // One live pod without its secret: True, naming the pod and the secret; still Ready.
        let s = with(vec![
            ("pool-default-a", report(7, None)),
            ("pool-default-b", report(7, degraded("SecretUnavailable"))),
        ]);
        assert_eq!(flag(&s), Some(("True".into(), "SecretUnavailable".into())));
        let message = find(&s, "Degraded").and_then(|c| c.message.clone());
        assert!(
            message.as_deref().is_some_and(
                |m| m.contains("pod pool-default-b of pool-default") && m.contains("Secret db")
            ),
            "{message:?}"
        );
        assert_eq!(ready(&s).1, "Available");
        // A gone pod's or an older generation's word does not count.
        let stale = with(vec![
            ("pool-default-a", report(7, None)),
            (
                "pool-default-old",
                report(7, degraded("IdentityUnavailable")),
            ),
            ("pool-default-b", report(6, degraded("IdentityUnavailable"))),
        ]);
        assert_eq!(flag(&stale), Some(("False".into(), "Serving".into())));
        // A container function has no pool: no such condition.
        assert_eq!(
            flag(&status(&function(http()), &Observed::default(), at(0))),
            None
        );
    }

    #[test]
    fn sqs_triggers_say_what_polls_them_and_how_they_scale() {
        let mut f = function(http());
        f.spec.triggers = Some(TriggersSpec {
            sqs: vec![SqsTrigger {
                queue_url: "https://sqs.eu-west-3.amazonaws.com/123456789012/q".into(),
                ..SqsTrigger::default()
            }],
        });
        f.spec.scale = Some(ScaleSpec {
            min: 0,
            max: None,
            idle_after: None,
        });
        let triggers_of = |f: &Function, observed: Observed| {
            let s = status(f, &observed, at(0));
            let c = find(&s, "TriggersReady").expect("condition").clone();
            (
                c.status,
                c.reason.unwrap_or_default(),
                c.message.unwrap_or_default(),
            )
        };
        // Without KEDA: one replica kept although scale.min is 0, and the status says how
        // many are really up.
        let triggers = |observed| triggers_of(&f, observed);
        let (ok, reason, message) = triggers(Observed {
            deployment: Some(deployment(1, 1, 1)),
            ..Observed::default()
        });
        assert_eq!((ok.as_str(), reason.as_str()), ("True", "FixedReplicas"));
        assert!(message.contains("KEDA is not installed"), "{message}");
        assert!(message.contains("1 replica(s) kept"), "{message}");
        assert!(message.contains("(1 ready)"), "{message}");
        // Nothing ready: nothing polls, and it says so.
        let (ok, reason, message) = triggers(Observed {
            deployment: Some(deployment(1, 0, 1)),
            ..Observed::default()
        });
        assert_eq!((ok.as_str(), reason.as_str()), ("False", "PollerNotReady"));
        assert!(message.contains("nothing polls yet"), "{message}");
        assert_eq!(triggers(Observed::default()).1, "PollerNotReady");
        // With KEDA: at zero while the queues are empty is fine; starting is not polling.
        let keda = |d| Observed {
            keda: true,
            deployment: Some(d),
            ..Observed::default()
        };
        let (ok, reason, message) = triggers(keda(deployment(0, 0, 0)));
        assert_eq!(
            (ok.as_str(), reason.as_str()),
            ("True", "ScaledByQueueDepth")
        );
        assert!(message.contains("the first message wakes it"), "{message}");
        assert_eq!(triggers(keda(deployment(2, 2, 2))).1, "ScaledByQueueDepth");
        assert_eq!(triggers(keda(deployment(1, 0, 1))).1, "PollerNotReady");
        // A WASM function's queues are polled by its pool, which KEDA does not scale.
        let mut pooled = f.clone();
        pooled.spec.runtime = RuntimeSpec {
            wasm: Some(faas_api::WasmRuntime {
                source: "configmap://fn-orders/a.wasm".into(),
                ..faas_api::WasmRuntime::default()
            }),
            container: None,
        };
        let s = status(
            &pooled,
            &Observed {
                keda: true,
                pool: Some(("default".into(), deployment(2, 2, 2))),
                ..Observed::default()
            },
            at(0),
        );
        let c = find(&s, "TriggersReady").expect("condition");
        assert_eq!(c.reason.as_deref(), Some("PolledByPool"));
        assert!(
            c.message
                .as_deref()
                .is_some_and(|m| m.contains("pool-default")
                    && m.contains("KEDA scales the pool on the depth of its members' queues")),
            "{c:?}"
        );
        // Without KEDA: CPU alone, and the status says so.
        let s = status(
            &pooled,
            &Observed {
                pool: Some(("default".into(), deployment(2, 2, 2))),
                ..Observed::default()
            },
            at(0),
        );
        let c = find(&s, "TriggersReady").expect("condition");
        assert!(
            c.message
                .as_deref()
                .is_some_and(|m| m.contains("queue depth does not scale the pool")),
            "{c:?}"
        );
        // Every queue disabled.
        let mut disabled = f.clone();
        if let Some(t) = disabled.spec.triggers.as_mut() {
            t.sqs[0].enabled = Some(false);
        }
        assert_eq!(triggers_of(&disabled, Observed::default()).1, "Disabled");
        let plain = status(&function(http()), &Observed::default(), at(0));
        assert!(find(&plain, "TriggersReady").is_none());
    }

    #[test]
    fn schedules_say_when_they_fire_next_or_why_they_cannot() {
        let mut f = function(http());
        assert!(find(&status(&f, &Observed::default(), at(0)), "ScheduleReady").is_none());
        f.spec.schedules = vec![
            faas_api::Schedule {
                name: "hourly".into(),
                cron: "0 * * * *".into(),
                ..Default::default()
            },
            faas_api::Schedule {
                name: "nightly".into(),
                cron: "30 2 * * *".into(),
                time_zone: Some("Europe/Paris".into()),
                ..Default::default()
            },
        ];
        // 1970-01-01T00:10:00Z: hourly fires first, at 01:00 UTC.
        let s = status(&f, &Observed::default(), at(600));
        let c = find(&s, "ScheduleReady").expect("condition");
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("True", Some("Scheduled"))
        );
        let message = c.message.as_deref().unwrap_or_default();
        assert!(
            message.starts_with("2 schedule(s); next: hourly at 1970-01-01 01:00 UTC"),
            "{message}"
        );
        f.spec.schedules[0].suspend = true;
        let s = status(&f, &Observed::default(), at(600));
        let message = find(&s, "ScheduleReady")
            .and_then(|c| c.message.clone())
            .unwrap_or_default();
        assert!(
            message.contains("next: nightly at 1970-01-01 02:30 CET"),
            "{message}"
        );
        f.spec.schedules[1].suspend = true;
        let s = status(&f, &Observed::default(), at(600));
        assert_eq!(
            find(&s, "ScheduleReady")
                .and_then(|c| c.reason.clone())
                .as_deref(),
            Some("Suspended")
        );
        f.spec.schedules[1].cron = "61 * * * *".into();
        let s = status(&f, &Observed::default(), at(600));
        let c = find(&s, "ScheduleReady").expect("condition");
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some("InvalidSchedule"))
        );
        assert!(
            c.message
                .as_deref()
                .unwrap_or_default()
                .contains("spec.schedules[1].cron")
        );
    }

    /// Two namespaces' Functions claiming the same host, `*.com`, the public host, a path and
    /// a name: the status of each is computed from [`faas_api::routing::Claims`] as the
    /// reconcile shell does, whatever order the Functions are listed in.
    #[test]
    fn the_loser_of_a_route_gets_a_conflict_and_no_url() {
        use faas_api::routing::{Claims, FunctionId, RoutingPolicy};
        let claimant = |namespace: &str, created: i64, routes: faas_api::HttpSpec| {
            let mut f = function(http());
            f.metadata.namespace = Some(namespace.into());
            f.metadata.uid = Some(format!("uid-{namespace}"));
            f.metadata.creation_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(1_700_000_000 + created)),
            );
            f.spec.http = Some(routes);
            f
        };
        let owner = claimant(
            "shop",
            0,
            faas_api::HttpSpec {
                hosts: vec!["shop.example.com".into()],
                path: Some("/shop".into()),
                ..Default::default()
            },
        );
        let attacker = claimant(
            "attacker",
            60,
            faas_api::HttpSpec {
                hosts: vec![
                    "shop.example.com".into(),
                    "*.com".into(),
                    "fn.example.com".into(),
                ],
                path: Some("/shop/checkout".into()),
                ..Default::default()
            },
        );
        let policy = RoutingPolicy::cluster(&["fn.example.com"], &[] as &[&str]);
        for order in [[&owner, &attacker], [&attacker, &owner]] {
            let claims = Claims::decide(order, &policy);
            let observed_for = |f: &Function| Observed {
                public_url: Some("https://fn.example.com".into()),
                route_losses: claims.losses_of(&FunctionId::of(f)).to_vec(),
                deployment: Some(deployment(1, 1, 1)),
                ..Observed::default()
            };
            let lost = status(&attacker, &observed_for(&attacker), at(0));
            let c = find(&lost, "RouteConflict").expect("the loser is told");
            assert_eq!(
                (c.status.as_str(), c.reason.as_deref()),
                ("True", Some("RouteTaken"))
            );
            let message = c.message.as_deref().unwrap_or_default();
            for part in [
                "host shop.example.com belongs to shop/orders",
                "host *.com is refused",
                "host fn.example.com is refused",
                "path /shop/checkout belongs to shop/orders",
                "/function/orders belongs to shop/orders",
                "/function/orders.attacker",
            ] {
                assert!(message.contains(part), "{part}: {message}");
            }
            assert_eq!(lost.url, None, "no URL for the loser");
            // Still running: a conflict is about routes, not readiness.
            assert_eq!(ready(&lost).0, "True");
            let kept = status(&owner, &observed_for(&owner), at(0));
            assert!(find(&kept, "RouteConflict").is_none());
            assert_eq!(
                kept.url.as_deref(),
                Some("https://fn.example.com/function/orders")
            );
        }
    }

    #[test]
    fn a_private_function_has_no_url() {
        let mut f = function(http());
        let seen = Observed {
            public_url: Some("https://fn.example.com/".into()),
            ..Observed::default()
        };
        assert_eq!(
            status(&f, &seen, at(0)).url.as_deref(),
            Some("https://fn.example.com/function/orders")
        );
        f.spec.http = Some(faas_api::HttpSpec {
            public: Some(false),
            ..Default::default()
        });
        assert_eq!(status(&f, &seen, at(0)).url, None);
    }

    #[test]
    fn transition_times_move_only_when_a_condition_changes() {
        let mut f = function(http());
        let seen = |ready| Observed {
            deployment: Some(deployment(1, ready, 1)),
            ..Observed::default()
        };
        let first = status(&f, &seen(0), at(100));
        f.status = Some(first.clone());
        let same = status(&f, &seen(0), at(200));
        assert_eq!(same, first, "nothing changed: same status, same times");
        let up = status(&f, &seen(1), at(300));
        let ready_time = find(&up, "Ready").and_then(|c| c.last_transition_time.clone());
        assert_eq!(ready_time, Some(at(300).to_string()));
        let artifact_time =
            find(&up, "ArtifactResolved").and_then(|c| c.last_transition_time.clone());
        assert_eq!(artifact_time, Some(at(100).to_string()));
    }
}
