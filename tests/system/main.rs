//! The platform as one system: the chart installed into the Kubernetes API stand-in
//! (`tests/kube-standin`), its controller and gateway and the pods the controller renders run
//! as the real binaries by the kubelet stand-in (`faas_e2e::cluster`), a team deploying with
//! the real `faas` CLI, and requests sent through the gateway's pod address as the ALB would.
//! What the two stand-ins do not emulate is listed in their module docs; everything else is
//! the code that ships.
//!
//! The scenarios themselves are `faas_e2e::scenarios`, shared with `tests/e2e-cluster`, which
//! runs them on a real cluster; each test here starts a system that meets its scenario's needs.
//!
//! ```sh
//! cargo test -p faas-e2e --test system -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use faas_e2e::cluster::{System, SystemOptions};
use faas_e2e::scenarios::{self, controllers::Loss};
use serde_json::json;

/// A CustomResourceDefinition that stores whatever it is given (the stand-in does not
/// validate), for operators' kinds the controller writes.
fn crd(group: &str, kind: &str, plural: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(),
                      "listKind": format!("{kind}List")},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_function_deployed_with_the_cli_is_served_then_deleted_with_its_pool() {
    let system = System::start(SystemOptions::default()).await;
    scenarios::wasm::deployed_served_deleted(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_function_idles_to_zero_then_a_request_is_held_scaled_up_and_answered() {
    let system = System::start(SystemOptions::default()).await;
    scenarios::container::idles_to_zero_then_is_woken_by_a_request(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_wakes_a_function_at_zero_and_its_longer_timeout_is_honoured() {
    let system = System::start(SystemOptions::default()).await;
    scenarios::schedule::wakes_a_function_at_zero_with_its_longer_timeout(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_pod_killed_under_traffic_costs_only_its_requests_in_flight() {
    let system = System::start(SystemOptions {
        values: json!({"runtime": {"pools": {"replicas": 2, "maxReplicas": 2}}}),
        ..SystemOptions::default()
    })
    .await;
    scenarios::pools::a_killed_pool_pod_costs_only_its_requests_in_flight(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_function_without_keda_keeps_a_poller_that_drains_its_queue() {
    let system = System::start(SystemOptions {
        moto: true,
        ..SystemOptions::default()
    })
    .await;
    scenarios::sqs::without_keda_a_poller_drains_the_queue(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keda_an_sqs_function_gets_the_scaled_object_the_docs_describe() {
    let system = System::start(SystemOptions {
        objects: vec![
            crd("keda.sh", "ScaledObject", "scaledobjects"),
            crd("keda.sh", "TriggerAuthentication", "triggerauthentications"),
        ],
        ..SystemOptions::default()
    })
    .await;
    scenarios::sqs::with_keda_the_scaled_object_is_what_the_docs_describe(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_function_runs_as_a_kubernetes_job_to_its_exit_code() {
    let system = System::start(SystemOptions::default()).await;
    scenarios::jobs::a_job_runs_as_a_kubernetes_job_to_its_exit_code(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_whole_log_is_kept_in_s3() {
    let bucket = format!("run-logs-{}", std::process::id());
    let system = System::start(SystemOptions {
        moto: true,
        values: json!({"controller": {"runLogs": {"bucket": bucket}}}),
        env: [("FAAS_RUN_LOG_PATH_STYLE".to_owned(), "true".to_owned())].into(),
        ..SystemOptions::default()
    })
    .await;
    scenarios::jobs::a_job_runs_whole_log_is_kept_in_s3(&system, &bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_starts_a_job_run_through_the_public_listener() {
    let system = System::start(SystemOptions::default()).await;
    scenarios::jobs::a_webhook_starts_a_job_run_through_the_public_listener(&system).await;
}

/// Two controllers for the scenarios that lose one.
fn two_controllers() -> SystemOptions {
    SystemOptions {
        values: json!({"controller": {"replicas": 2}}),
        ..SystemOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_controller_pod_is_lost_is_resumed_by_another_once_the_lease_expires() {
    let system = System::start(two_controllers()).await;
    scenarios::controllers::a_run_of_a_lost_controller_is_resumed_by_the_next_leader_once(
        &system,
        Loss::Pod,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_controller_process_is_killed_is_resumed_by_the_next_leader_once() {
    let system = System::start(two_controllers()).await;
    scenarios::controllers::a_run_of_a_lost_controller_is_resumed_by_the_next_leader_once(
        &system,
        Loss::Process,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_labels_itself_into_another_pool_is_not_loaded_there() {
    let system = System::start(SystemOptions::default()).await;
    scenarios::pools::a_function_labelled_into_another_pool_is_not_loaded_there(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_function_holds_its_own_role_and_its_pool_only_its_members_tokens() {
    let system = System::start(SystemOptions {
        moto: true,
        allowed_roles: vec![
            "arn:aws:iam::123456789012:role/faas/team-a/reader".into(),
            "arn:aws:iam::123456789012:role/faas/team-a/writer".into(),
        ],
        ..SystemOptions::default()
    })
    .await;
    scenarios::identity::a_pooled_function_holds_its_own_role_and_its_pool_only_its_members_tokens(
        &system,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_function_reads_its_secrets_and_its_pool_no_others() {
    let system = System::start(SystemOptions {
        moto: true,
        allowed_roles: vec!["arn:aws:iam::123456789012:role/faas/team-a/secretive".into()],
        ..SystemOptions::default()
    })
    .await;
    scenarios::secrets::a_pooled_function_reads_its_secrets_and_its_pool_no_others(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_run_records_the_log_tail_of_its_guest() {
    let system = System::start(SystemOptions::default()).await;
    scenarios::logs::a_wasm_run_records_the_log_tail_of_its_guest(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_functions_cluster_run_records_the_log_tail_of_its_pod() {
    let system = System::start(SystemOptions::default()).await;
    scenarios::logs::a_container_run_records_the_log_tail_of_its_pod(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_comes_up_ready() {
    let system = System::start(SystemOptions::default()).await;
    scenarios::chart::comes_up_ready(&system).await;
}
