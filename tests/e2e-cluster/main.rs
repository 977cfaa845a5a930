//! The platform against a real cluster: run when `KUBECONFIG` is set (kind, k3d, EKS),
//! skipped, saying so, otherwise. No API server can run on the CI machine, so this suite is
//! the only place the platform meets a real one; `tests/system` runs the same scenarios on
//! the stand-ins everywhere, and the exact requests are covered by `controller/tests/`.
//!
//! Two parts:
//! - **The whole-system scenarios** (`faas_e2e::scenarios`, the ones `tests/system` runs),
//!   against the chart as installed on the cluster (see `real.rs` for the release it looks
//!   for and what the environment may add: the HTTP test function's image, a queue, a role).
//!   A scenario whose needs the cluster does not meet is skipped, saying which.
//! - **The controller alone** (`a_container_function_becomes_...`): the reconciler run in
//!   this process for one namespace, on a cluster *without* the chart (with it, the chart's
//!   controller would reconcile the same Functions; the test then skips).
//!
//! ```sh
//! KUBECONFIG=~/.kube/config cargo test -p faas-e2e --test e2e-cluster -- --nocapture
//! # an EKS test cluster (not named kind-/k3d-...):
//! FAAS_E2E_CLUSTER=1 KUBECONFIG=... cargo test -p faas-e2e --test e2e-cluster -- --nocapture
//! ```
//!
//! Either part runs only against a context named like a disposable cluster (`kind-`, `k3d-`,
//! `minikube`...) unless `FAAS_E2E_CLUSTER=1` says otherwise. What it does to the cluster: server-side applies the two CRDs (field manager
//! `faas-e2e`), creates a namespace `faas-e2e-<pid>`, runs the reconciler in this process for
//! that namespace only (no Lease, no chart needed), and deletes the namespace at the end.
//! The function image is `FAAS_E2E_IMAGE` (default `python:3.12-alpine`, started as
//! `python3 -m http.server 8000`), pulled by the cluster's nodes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod real;

use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_api::{Function, FunctionRun};
use faas_controller::metrics::Metrics;
use faas_controller::reconcile::{self, Context};
use faas_controller::render::ClusterDefaults;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client, ResourceExt};

const MANAGER: &str = "faas-e2e";

/// Contexts that are disposable by their name; any other needs `FAAS_E2E_CLUSTER=1`, so a
/// KUBECONFIG left pointing at a shared cluster is never changed by `scripts/test.sh`.
const DISPOSABLE: &[&str] = &[
    "kind-",
    "k3d-",
    "minikube",
    "docker-desktop",
    "rancher-desktop",
];

fn cluster_configured() -> bool {
    if std::env::var_os("KUBECONFIG").is_none() {
        faas_e2e::skip::deliberate(
            "KUBECONFIG is not set. Point it at a disposable cluster (kind, k3d, EKS) to run \
             the controller against a real API server.",
        );
        return false;
    }
    let context = kube::config::Kubeconfig::read()
        .ok()
        .and_then(|c| c.current_context)
        .unwrap_or_default();
    let allowed = std::env::var("FAAS_E2E_CLUSTER").is_ok_and(|v| v == "1")
        || DISPOSABLE.iter().any(|p| context.starts_with(p));
    if !allowed {
        faas_e2e::skip::deliberate(&format!(
            "context {context:?} does not look disposable (kind-, k3d-, minikube...); set \
             FAAS_E2E_CLUSTER=1 to run this suite against it anyway (it applies the CRDs and \
             creates and deletes a namespace)."
        ));
    }
    allowed
}

async fn eventually<F, Fut, T>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        faas_api::crd::function_crd(),
        faas_api::crd::function_run_crd(),
    ] {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply the CRDs (cluster-admin needed for this suite)");
    }
    // Established before use.
    tokio::time::sleep(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_function_becomes_a_ready_workload_and_goes_with_its_function() {
    if !cluster_configured() {
        return;
    }
    let client = Client::try_default()
        .await
        .expect("a client from KUBECONFIG");
    let release = std::env::var("FAAS_E2E_RELEASE").unwrap_or_else(|_| "faas".into());
    let release_namespace =
        std::env::var("FAAS_E2E_RELEASE_NAMESPACE").unwrap_or_else(|_| "faas-system".into());
    if real::chart_installed(&client, &release, &release_namespace).await {
        faas_e2e::skip::deliberate(
            "the in-process controller test: the chart is installed, and its controller would \
             reconcile the test's Functions too (the scenarios run)",
        );
        return;
    }
    install_crds(&client).await;
    let namespace = format!("faas-e2e-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(namespace.clone());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the test namespace");

    let ctx = Arc::new(Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: None,
            },
        ),
        client: client.clone(),
        defaults: ClusterDefaults {
            runtime_image: std::env::var("FAAS_RUNTIME_IMAGE")
                .unwrap_or_else(|_| "ghcr.io/faas-dev/faas-runtime:latest".into()),
            ..ClusterDefaults::default()
        },
        keda: reconcile::keda_installed(&client).await,
        public_url: None,
        metrics: Metrics::new().unwrap(),
        routing: Default::default(),
        functions: None,
        platform_token: None,
    });
    let functions: Api<Function> = Api::namespaced(client.clone(), &namespace);
    let controller = tokio::spawn({
        let namespace = namespace.clone();
        async move { reconcile::run(ctx, Some(&namespace), false).await }
    });

    let image = std::env::var("FAAS_E2E_IMAGE").unwrap_or_else(|_| "python:3.12-alpine".into());
    let manifest = format!(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: web, namespace: {namespace}}}\n\
         spec:\n  runtime:\n    container:\n      image: {image}\n      args: [python3, -m, http.server, '8000']\n      port: 8000\n\
         \x20 placement: {{capacity: any}}\n  scale: {{min: 1}}\n"
    );
    let function = faas_api::manifest::parse_functions(&manifest, "e2e")
        .expect("valid")
        .remove(0);
    functions
        .patch(
            "web",
            &PatchParams::apply(MANAGER),
            &Patch::Apply(&function),
        )
        .await
        .expect("apply the Function");

    let ready = eventually("Ready=True", Duration::from_secs(300), || async {
        let f = functions.get("web").await.ok()?;
        let status = f.status?;
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
        (ready.status == "True").then(|| (ready.reason.clone(), status.ready_replicas))
    })
    .await;
    assert_eq!(ready.0.as_deref(), Some("Available"));
    assert_eq!(ready.1, Some(1));
    let function = functions.get("web").await.unwrap();
    assert!(
        function
            .finalizers()
            .iter()
            .any(|f| f == reconcile::FINALIZER)
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let deployment = deployments.get("fn-web").await.expect("Deployment");
    assert_eq!(
        deployment.owner_references()[0].uid,
        function.uid().unwrap()
    );
    Api::<Service>::namespaced(client.clone(), &namespace)
        .get("fn-web")
        .await
        .expect("Service");
    Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
        .get("fn-web")
        .await
        .expect("ServiceAccount");
    // Runs are namespaced resources the CRD now serves.
    Api::<FunctionRun>::namespaced(client.clone(), &namespace)
        .list(&Default::default())
        .await
        .expect("FunctionRuns are served");

    functions
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete the Function");
    eventually(
        "the Function gone (finalizer removed)",
        Duration::from_secs(60),
        || async { functions.get_opt("web").await.ok()?.is_none().then_some(()) },
    )
    .await;
    eventually(
        "its Deployment garbage-collected",
        Duration::from_secs(120),
        || async {
            deployments
                .get_opt("fn-web")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;

    // The same function through the CLI, as a feature team deploys it: applied with the
    // user's kubeconfig, Ready awaited, then listed and deleted.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yaml");
    std::fs::write(&file, &manifest).unwrap();
    // The in-process reconciler keeps the other worker thread.
    let faas = |args: &[&str]| {
        let out = tokio::task::block_in_place(|| {
            std::process::Command::new(faas_e2e::faas_bin())
                .args(args)
                .args(["-n", &namespace])
                .env_remove("FAAS_GATEWAY")
                .output()
        })
        .expect("run faas");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "faas {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let deployed = faas(&["deploy", "-f", file.to_str().unwrap(), "--timeout", "5m"]);
    assert!(deployed.starts_with("web: "), "{deployed}");
    let listed = faas(&["list", "-o", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(listed[0]["metadata"]["name"], "web");
    faas(&["delete", "web"]);

    controller.abort();
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
}

// The shared scenarios (`faas_e2e::scenarios`), as `tests/system` runs them on the stand-ins.

use faas_e2e::scenarios::{self, controllers::Loss};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_chart_comes_up_ready() {
    let Some(c) = real::RealCluster::connect("chart").await else {
        return;
    };
    scenarios::chart::comes_up_ready(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_wasm_deployed_served_deleted() {
    let Some(c) = real::RealCluster::connect("wasm").await else {
        return;
    };
    scenarios::wasm::deployed_served_deleted(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_container_idles_to_zero_then_is_woken() {
    let Some(c) = real::RealCluster::connect("container").await else {
        return;
    };
    scenarios::container::idles_to_zero_then_is_woken_by_a_request(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_schedule_wakes_a_function_at_zero() {
    let Some(c) = real::RealCluster::connect("schedule").await else {
        return;
    };
    scenarios::schedule::wakes_a_function_at_zero_with_its_longer_timeout(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_pool_pod_lost_under_traffic() {
    let Some(c) = real::RealCluster::connect("pool-lost").await else {
        return;
    };
    scenarios::pools::a_killed_pool_pod_costs_only_its_requests_in_flight(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_hostile_pool_label() {
    let Some(c) = real::RealCluster::connect("hostile").await else {
        return;
    };
    scenarios::pools::a_function_labelled_into_another_pool_is_not_loaded_there(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_pooled_function_identity() {
    let Some(c) = real::RealCluster::connect("identity").await else {
        return;
    };
    scenarios::identity::a_pooled_function_holds_its_own_role_and_its_pool_only_its_members_tokens(
        &c,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_pooled_function_secrets() {
    let Some(c) = real::RealCluster::connect("secrets").await else {
        return;
    };
    scenarios::secrets::a_pooled_function_reads_its_secrets_and_its_pool_no_others(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_sqs_without_keda() {
    let Some(c) = real::RealCluster::connect("sqs").await else {
        return;
    };
    scenarios::sqs::without_keda_a_poller_drains_the_queue(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_sqs_with_keda() {
    let Some(c) = real::RealCluster::connect("keda").await else {
        return;
    };
    scenarios::sqs::with_keda_the_scaled_object_is_what_the_docs_describe(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_controller_pod_lost_mid_run() {
    let Some(c) = real::RealCluster::connect("controller-lost").await else {
        return;
    };
    scenarios::controllers::a_run_of_a_lost_controller_is_resumed_by_the_next_leader_once(
        &c,
        Loss::Pod,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_wasm_run_log_tail() {
    let Some(c) = real::RealCluster::connect("log-tail").await else {
        return;
    };
    scenarios::logs::a_wasm_run_records_the_log_tail_of_its_guest(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_container_run_log_tail() {
    let Some(c) = real::RealCluster::connect("container-log-tail").await else {
        return;
    };
    scenarios::logs::a_container_run_records_the_log_tail_of_its_pod(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_job_runs_to_its_exit_code() {
    let Some(c) = real::RealCluster::connect("jobs").await else {
        return;
    };
    scenarios::jobs::a_job_runs_as_a_kubernetes_job_to_its_exit_code(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_job_log_in_s3() {
    // The chart's controller.runLogs.bucket, installed with the release.
    let Ok(bucket) = std::env::var("FAAS_E2E_RUN_LOG_BUCKET") else {
        faas_e2e::skip::deliberate(
            "FAAS_E2E_RUN_LOG_BUCKET (the chart's controller.runLogs.bucket) is not set",
        );
        return;
    };
    let Some(c) = real::RealCluster::connect("job-logs").await else {
        return;
    };
    scenarios::jobs::a_job_runs_whole_log_is_kept_in_s3(&c, &bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_webhook_starts_a_job_run() {
    let Some(c) = real::RealCluster::connect("webhooks").await else {
        return;
    };
    scenarios::jobs::a_webhook_starts_a_job_run_through_the_public_listener(&c).await;
}
