use super::*;
use faas_api::{ContainerMode, ContainerRuntime, FunctionSpec, PlacementSpec, RuntimeSpec};
use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus, Toleration,
};

fn report(mode: ContainerMode) -> Function {
    let mut f = Function::new(
        "report",
        FunctionSpec {
            runtime: RuntimeSpec {
                container: Some(ContainerRuntime {
                    image: Some("registry.example.com/report:3".into()),
                    command: vec!["sh".into(), "local-only.sh".into()],
                    args: vec!["--full".into()],
                    mode,
                    ..ContainerRuntime::default()
                }),
                ..RuntimeSpec::default()
            },
            memory: Some("512Mi".into()),
            cpu: Some("250m".into()),
            env: [
                ("LOG_LEVEL".to_owned(), "info".to_owned()),
                ("FAAS_RUN_ID".to_owned(), "forged".to_owned()),
            ]
            .into_iter()
            .collect(),
            placement: Some(PlacementSpec {
                security_group: Some("reports".into()),
                ..PlacementSpec::default()
            }),
            ..FunctionSpec::default()
        },
    );
    f.metadata.namespace = Some("finance".into());
    f
}

fn attempt(n: u32) -> Attempt<'static> {
    Attempt {
        run_id: "report.nightly.20261207t030000z",
        attempt: n,
        env: vec![
            (
                "FAAS_RUN_ID".into(),
                "report.nightly.20261207t030000z".into(),
            ),
            ("FAAS_ATTEMPT".into(), n.to_string()),
            ("FAAS_OPTION_DAYS".into(), "7".into()),
        ],
        timeout: Duration::from_millis(90_500),
        owner: OwnerReference {
            api_version: "faas.dev/v1alpha1".into(),
            kind: "FunctionRun".into(),
            name: "report.nightly.20261207t030000z".into(),
            uid: "0000-run".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        },
    }
}

fn defaults() -> ClusterDefaults {
    ClusterDefaults {
        function_tolerations: vec![Toleration {
            key: Some("faas.dev/functions".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Toleration::default()
        }],
        ..ClusterDefaults::default()
    }
}

#[test]
fn a_run_is_one_locked_down_pod_never_retried_by_kubernetes_under_its_deadline() {
    let job = job(&report(ContainerMode::Job), &attempt(2), &defaults()).expect("a job");
    let meta = &job.metadata;
    assert_eq!(
        meta.name.as_deref(),
        Some(job_name("report.nightly.20261207t030000z", 2).as_str())
    );
    assert!(
        meta.name
            .as_deref()
            .is_some_and(|n| n.len() <= 63 && n.starts_with("run-") && n.ends_with("-2"))
    );
    assert_eq!(meta.namespace.as_deref(), Some("finance"));
    assert_eq!(
        meta.owner_references.as_ref().map(|o| o[0].kind.as_str()),
        Some("FunctionRun")
    );
    assert_eq!(
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(RUN_ID_ANNOTATION))
            .map(String::as_str),
        Some("report.nightly.20261207t030000z")
    );
    let spec = job.spec.as_ref().expect("spec");
    assert_eq!(spec.backoff_limit, Some(0), "retries are the schedule's");
    assert_eq!(
        spec.active_deadline_seconds,
        Some(91),
        "the timeout, rounded up"
    );
    assert_eq!(spec.ttl_seconds_after_finished, Some(TTL_AFTER_FINISHED));
    let rules = &spec.pod_failure_policy.as_ref().expect("policy").rules;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].action, "FailJob");
    assert_eq!(
        rules[0]
            .on_pod_conditions
            .as_ref()
            .map(|c| c[0].type_.as_str()),
        Some("DisruptionTarget")
    );

    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .expect("labels");
    assert_eq!(
        labels.get(contract::FUNCTION_LABEL).map(String::as_str),
        Some("report")
    );
    assert_eq!(
        labels.get(contract::COMPONENT_LABEL).map(String::as_str),
        Some("run")
    );
    assert_eq!(labels.get(ATTEMPT_LABEL).map(String::as_str), Some("2"));
    assert_eq!(
        labels.get(RUN_LABEL),
        Some(&run_label("report.nightly.20261207t030000z"))
    );
    assert_eq!(
        labels
            .get(super::super::workload::SECURITY_GROUP_LABEL)
            .map(String::as_str),
        Some("reports"),
        "security groups for pods apply to its runs too"
    );

    let pod = spec.template.spec.as_ref().expect("pod");
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("fn-report"),
        "its IAM role"
    );
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.termination_grace_period_seconds, Some(10));
    assert!(
        pod.tolerations
            .as_ref()
            .is_some_and(|t| t[0].key.as_deref() == Some("faas.dev/functions"))
    );
    assert_eq!(
        pod.security_context
            .as_ref()
            .and_then(|s| s.run_as_non_root),
        Some(true)
    );
    let c = &pod.containers[0];
    assert_eq!(c.name, "function");
    assert_eq!(c.image.as_deref(), Some("registry.example.com/report:3"));
    assert_eq!(
        c.command, None,
        "the image's entrypoint runs; command is local mode's"
    );
    assert_eq!(c.args.as_deref(), Some(&["--full".to_owned()][..]));
    assert_eq!(c.termination_message_path.as_deref(), Some(OUTPUT_PATH));
    let sc = c.security_context.as_ref().expect("locked down");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let resources = c.resources.as_ref().expect("resources");
    assert_eq!(
        resources
            .limits
            .as_ref()
            .and_then(|l| l.get("memory"))
            .map(|q| q.0.as_str()),
        Some("512Mi")
    );
    let env: Vec<(String, String)> = c
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    let want: Vec<(String, String)> = [
        ("LOG_LEVEL", "info"),
        ("FAAS_RUN_ID", "report.nightly.20261207t030000z"),
        ("FAAS_ATTEMPT", "2"),
        ("FAAS_OPTION_DAYS", "7"),
        ("FAAS_OUTPUT", OUTPUT_PATH),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(
        env, want,
        "the run's variables win over the spec's; IMDS stays off"
    );
}

#[test]
fn attempts_of_a_run_are_distinct_jobs_and_runs_never_share_one() {
    assert_ne!(
        job_name("a.nightly.20261207t030000z", 1),
        job_name("a.nightly.20261207t030000z", 2)
    );
    assert_ne!(
        job_name("a.nightly.20261207t030000z", 1),
        job_name("a.nightly.20261208t030000z", 1)
    );
    let long = format!("{}.{}.run.0123456789abcdef", "f".repeat(63), "s".repeat(63));
    assert!(job_name(&long, 10).len() <= 63);
}

#[test]
fn only_a_job_with_an_image_gets_a_job() {
    assert!(job(&report(ContainerMode::Http), &attempt(1), &defaults()).is_none());
    let mut no_image = report(ContainerMode::Job);
    if let Some(c) = no_image.spec.runtime.container.as_mut() {
        c.image = None;
    }
    assert!(job(&no_image, &attempt(1), &defaults()).is_none());
}

fn finished(type_: &str, reason: &str, message: &str) -> Job {
    Job {
        status: Some(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: type_.into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        }),
        ..Job::default()
    }
}

fn pod_ended(exit_code: i32, signal: Option<i32>, reason: &str, message: Option<&str>) -> Pod {
    Pod {
        status: Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "function".into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code,
                        signal,
                        reason: Some(reason.into()),
                        message: message.map(Into::into),
                        ..ContainerStateTerminated::default()
                    }),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        }),
        ..Pod::default()
    }
}

#[test]
fn the_end_of_a_job_is_read_branch_by_branch() {
    assert_eq!(outcome(&Job::default(), None), Outcome::Running);
    let mut not_yet = finished("Failed", "BackoffLimitExceeded", "x");
    if let Some(c) = not_yet.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        c[0].status = "False".into();
    }
    assert_eq!(
        outcome(&not_yet, None),
        Outcome::Running,
        "a condition that is not True"
    );
    assert_eq!(
        outcome(
            &finished("Complete", "CompletionsReached", ""),
            Some(&pod_ended(0, None, "Completed", Some("{\"rows\": 3}")))
        ),
        Outcome::Succeeded {
            output: "{\"rows\": 3}".into()
        }
    );
    assert_eq!(
        outcome(&finished("Complete", "CompletionsReached", ""), None),
        Outcome::Succeeded {
            output: String::new()
        },
        "a pod already gone still leaves a success"
    );
    assert_eq!(
        outcome(
            &finished(
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit"
            ),
            Some(&pod_ended(3, None, "Error", None))
        ),
        Outcome::Failed {
            exit_code: Some(3),
            signal: None,
            message: "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
        }
    );
    assert_eq!(
        outcome(
            &finished("Failed", "BackoffLimitExceeded", "limit"),
            Some(&pod_ended(137, Some(9), "OOMKilled", None))
        ),
        Outcome::Failed {
            exit_code: Some(137),
            signal: Some(9),
            message: "BackoffLimitExceeded (OOMKilled): limit".into()
        }
    );
    assert!(matches!(
        outcome(
            &finished(
                "Failed",
                "DeadlineExceeded",
                "Job was active longer than specified deadline"
            ),
            None
        ),
        Outcome::TimedOut { .. }
    ));
    assert!(matches!(
        outcome(
            &finished(
                "Failed",
                "PodFailurePolicy",
                "Pod finance/run-x-1-abcde has condition DisruptionTarget matching FailJob rule at index 0"
            ),
            Some(&pod_ended(143, None, "Error", None))
        ),
        Outcome::Interrupted { .. }
    ));
    // Any other failure with the policy's reason is a failure, not an interruption.
    assert!(matches!(
        outcome(&finished("Failed", "PodFailurePolicy", "exit code 2"), None),
        Outcome::Failed {
            exit_code: None,
            ..
        }
    ));
}
