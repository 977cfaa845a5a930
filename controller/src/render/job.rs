//! A `mode: job` function's run in a cluster: one Kubernetes `Job` per attempt, owned by the
//! run's `FunctionRun`, and what its end means for the run.
//!
//! The Job runs one pod, never retried by Kubernetes (`backoffLimit: 0`: retries are the
//! schedule's policy, each a new attempt and a new Job), under the run's timeout
//! (`activeDeadlineSeconds`), on the functions node group as the function's ServiceAccount
//! (its IAM role through IRSA), with the same locked-down container as the function's other
//! pods and the environment of `faas_api::job_env`. A spot interruption (the pod condition
//! `DisruptionTarget`) fails the Job by the first rule of its `podFailurePolicy`, which
//! [`outcome`] reads as `Interrupted`, so the schedule's retries decide what comes next.
//! Finished Jobs are deleted by Kubernetes after [`TTL_AFTER_FINISHED`]; the run record keeps
//! what they said.

use std::collections::BTreeMap;
use std::time::Duration;

use faas_api::{Function, contract};
use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::Digest as _;

use super::placement::placement;
use super::workload::{
    TMP_SIZE_LIMIT, locked_down, pod_labels, pod_security, resources, spec_env, tmp_mount,
    tmp_volume,
};
use super::{ClusterDefaults, imds_disabled, object_name};

/// Label of a run's Jobs and their pods: a digest of the run's id (an id can be longer than a
/// label value may be).
pub const RUN_LABEL: &str = "faas.dev/run";
/// Label of a Job: the attempt it runs.
pub const ATTEMPT_LABEL: &str = "faas.dev/attempt";
/// Annotation of a Job: the run's id in full.
pub const RUN_ID_ANNOTATION: &str = "faas.dev/run-id";
/// `app.kubernetes.io/component` of a run's Job and pod.
pub const JOB_COMPONENT: &str = "run";
/// Where the container writes its output: the termination message Kubernetes keeps (4 KiB).
pub const OUTPUT_PATH: &str = "/dev/termination-log";
/// How long a finished Job (and its pod, with its log) stays for `kubectl` to look at.
pub const TTL_AFTER_FINISHED: i32 = 3600;

/// One attempt of a run, as the scheduler asked for it.
#[derive(Clone, Debug)]
pub struct Attempt<'a> {
    /// The run's id (the `FunctionRun`'s name).
    pub run_id: &'a str,
    pub attempt: u32,
    /// The run's environment (`faas_api::job_env::environment` of its request).
    pub env: Vec<(String, String)>,
    /// The run's timeout: the Job's deadline.
    pub timeout: Duration,
    /// The `FunctionRun`: the Job goes with it.
    pub owner: OwnerReference,
}

/// The digest of a run id that labels its Jobs.
pub fn run_label(run_id: &str) -> String {
    hex::encode(&sha2::Sha256::digest(run_id.as_bytes())[..8])
}

/// The name of the Job of attempt `attempt` of run `run_id`: `run-<digest>-<attempt>`.
pub fn job_name(run_id: &str, attempt: u32) -> String {
    format!("run-{}-{attempt}", run_label(run_id))
}

/// The Job of `attempt` of a run of `function`; `None` when the function is not a job with
/// an image (the cluster profile refuses such a Function before it has runs).
pub fn job(function: &Function, attempt: &Attempt<'_>, defaults: &ClusterDefaults) -> Option<Job> {
    let container = function
        .spec
        .runtime
        .container
        .as_ref()
        .filter(|_| function.spec.is_job())?;
    let image = container.image.clone()?;
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let limits = function.spec.limits().unwrap_or_default();
    let value = |name: &str, value: String| EnvVar {
        name: name.to_owned(),
        value: Some(value),
        ..EnvVar::default()
    };
    // The function's own variables, then the run's (the platform's win), then IMDS off.
    let mut env = spec_env(function);
    env.retain(|e| !attempt.env.iter().any(|(k, _)| *k == e.name));
    env.extend(attempt.env.iter().map(|(k, v)| value(k, v.clone())));
    env.push(value(
        faas_api::job_env::OUTPUT_VARIABLE,
        OUTPUT_PATH.to_owned(),
    ));
    env.push(imds_disabled());
    let mut labels = pod_labels(function);
    labels.insert(
        contract::COMPONENT_LABEL.to_owned(),
        JOB_COMPONENT.to_owned(),
    );
    labels.insert(RUN_LABEL.to_owned(), run_label(attempt.run_id));
    labels.insert(ATTEMPT_LABEL.to_owned(), attempt.attempt.to_string());
    let place = placement(function, defaults);
    let grace = i64::try_from(faas_api::job_env::STOP_GRACE.as_secs()).unwrap_or(10);
    let pod = PodSpec {
        service_account_name: Some(object_name(name)),
        // The function's IAM role comes from IRSA's own projected token, not this one.
        automount_service_account_token: Some(false),
        restart_policy: Some("Never".to_owned()),
        security_context: Some(pod_security()),
        volumes: Some(vec![tmp_volume(TMP_SIZE_LIMIT)]),
        termination_grace_period_seconds: Some(grace),
        tolerations: (!place.tolerations.is_empty()).then_some(place.tolerations),
        affinity: Some(place.affinity),
        containers: vec![Container {
            name: contract::FUNCTION_CONTAINER.to_owned(),
            image: Some(image),
            // The image's entrypoint runs: `command` is local mode's stand-in for it.
            args: (!container.args.is_empty()).then(|| container.args.clone()),
            working_dir: container.working_dir.clone(),
            env: Some(env),
            resources: Some(resources(function, limits, defaults)),
            security_context: Some(locked_down()),
            volume_mounts: Some(vec![tmp_mount()]),
            termination_message_path: Some(OUTPUT_PATH.to_owned()),
            termination_message_policy: Some("File".to_owned()),
            ..Container::default()
        }],
        ..PodSpec::default()
    };
    let deadline = i64::try_from(attempt.timeout.as_secs().max(1)).unwrap_or(i64::MAX / 4)
        + i64::from(attempt.timeout.subsec_nanos() > 0);
    Some(Job {
        metadata: ObjectMeta {
            name: Some(job_name(attempt.run_id, attempt.attempt)),
            namespace: function.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(
                RUN_ID_ANNOTATION.to_owned(),
                attempt.run_id.to_owned(),
            )])),
            owner_references: Some(vec![attempt.owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(deadline),
            ttl_seconds_after_finished: Some(TTL_AFTER_FINISHED),
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![PodFailurePolicyRule {
                    action: "FailJob".to_owned(),
                    on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                        type_: "DisruptionTarget".to_owned(),
                        status: Some("True".to_owned()),
                    }]),
                    on_exit_codes: None,
                }],
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

/// How an attempt's Job stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished (or its pod not started yet).
    Running,
    /// Exit code 0; the container's termination message is the output.
    Succeeded { output: String },
    /// It ended otherwise: the exit code when the container reported one, else the signal,
    /// and what Kubernetes said.
    Failed {
        exit_code: Option<i32>,
        signal: Option<i32>,
        message: String,
    },
    /// Past its deadline (`activeDeadlineSeconds`).
    TimedOut { message: String },
    /// Its pod was taken away (a spot interruption, a drain): the run is `Interrupted` and
    /// the schedule's retries decide.
    Interrupted { message: String },
}

/// What `job` (and its `pod`, when found) says about the attempt.
pub fn outcome(job: &Job, pod: Option<&Pod>) -> Outcome {
    let status = job.status.clone().unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let finished = |type_: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == "True")
    };
    let terminated = pod
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|all| all.iter().find(|c| c.name == contract::FUNCTION_CONTAINER))
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.clone());
    if finished("Complete").is_some() {
        return Outcome::Succeeded {
            output: terminated.and_then(|t| t.message).unwrap_or_default(),
        };
    }
    let Some(failed) = finished("Failed") else {
        return Outcome::Running;
    };
    let reason = failed.reason.clone().unwrap_or_default();
    let message = failed.message.clone().unwrap_or_default();
    match reason.as_str() {
        "DeadlineExceeded" => Outcome::TimedOut {
            message: format!("the Job ran past its deadline: {message}"),
        },
        // The first rule of the Job's podFailurePolicy: its pod was disrupted.
        "PodFailurePolicy" if message.contains("DisruptionTarget") => Outcome::Interrupted {
            message: format!(
                "the run's pod was disrupted (a spot interruption, a drain): {message}"
            ),
        },
        _ => {
            let (exit_code, signal) = match &terminated {
                Some(t) => (Some(t.exit_code), t.signal),
                None => (None, None),
            };
            let said = terminated
                .and_then(|t| t.reason)
                .filter(|r| r != "Error")
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            Outcome::Failed {
                exit_code,
                signal,
                message: format!("{reason}{said}: {message}"),
            }
        }
    }
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
