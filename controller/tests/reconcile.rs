//! The reconcile shell, request by request, against a `tower-test` mock of the API server
//! (kube-rs's documented approach: no API server can run here). Each test plays the API
//! server for one pass: it asserts every request the controller makes (method, exact path
//! and query, the body's key fields) and answers as the API server would. A missing request
//! fails the test on a timeout; an unexpected one fails the reconcile (the mock is closed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use faas_api::{
    ContainerMode, ContainerRuntime, Function, FunctionSpec, RuntimeSpec, ScaleSpec, SqsTrigger,
    TriggersSpec,
};
use faas_controller::metrics::Metrics;
use faas_controller::reconcile::{self, Context};
use faas_controller::render::ClusterDefaults;
use faas_kube_mock::{Handle, Reply, expect};
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

const UID: &str = "5d0c7c0e-0000-4000-8000-000000000001";
const APPLY: &str = "?&force=true&fieldManager=faas-controller";

fn context(keda: bool) -> (Arc<Context>, Handle) {
    let (client, handle) = faas_kube_mock::client("default");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "faas-controller".into(),
            instance: None,
        },
    );
    let ctx = Context {
        client,
        defaults: ClusterDefaults {
            runtime_image: "registry.example.com/faas-runtime:0.1".into(),
            region: "eu-west-3".into(),
            policy: faas_api::ClusterPolicy {
                allowed_role_arns: [(
                    "shop".to_owned(),
                    vec!["arn:aws:iam::123456789012:role/shop/*".to_owned()],
                )]
                .into(),
                ..ClusterDefaults::default().policy
            },
            ..ClusterDefaults::default()
        },
        keda,
        public_url: Some("https://fn.example.com".into()),
        recorder,
        metrics: Metrics::new().unwrap(),
        routing: Default::default(),
        functions: None,
        platform_token: None,
    };
    (Arc::new(ctx), handle)
}

fn function(mode: ContainerMode, image: Option<&str>) -> Function {
    let mut f = Function::new(
        "orders",
        FunctionSpec {
            runtime: RuntimeSpec {
                container: Some(ContainerRuntime {
                    image: image.map(str::to_owned),
                    port: (mode == ContainerMode::Http).then_some(8000),
                    mode,
                    ..ContainerRuntime::default()
                }),
                ..RuntimeSpec::default()
            },
            scale: Some(ScaleSpec {
                min: 1,
                max: None,
                idle_after: None,
            }),
            ..FunctionSpec::default()
        },
    );
    f.metadata.namespace = Some("shop".into());
    f.metadata.uid = Some(UID.into());
    f.metadata.generation = Some(3);
    f.metadata.finalizers = Some(vec![reconcile::FINALIZER.into()]);
    f
}

/// The status apply of the Function under test.
async fn expect_status(api: &mut Handle) -> (Value, Reply) {
    expect(
        api,
        "PATCH",
        &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functions/orders/status{APPLY}"),
    )
    .await
}

/// An Event about the Function under test.
async fn expect_event(api: &mut Handle) -> (Value, Reply) {
    expect(
        api,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/shop/events?",
    )
    .await
}

/// The ownership check before an apply: a read of the object's metadata, answered "not
/// there yet".
/// A pass that refuses `function`: its status says `Ready` False with `reason`, then a Warning
/// Event says the same. Returns the status as written and the condition's message.
async fn expect_refused(api: &mut Handle, function: &Function, reason: &str) -> (Value, String) {
    let (status, reply) = expect_status(api).await;
    let ready = &status["status"]["conditions"][0];
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some(reason)),
        "{status}"
    );
    let message = ready["message"].as_str().unwrap_or_default().to_owned();
    reply.json(200, &stored(function, &status));
    let (event, reply) = expect_event(api).await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some(reason)),
        "{event}"
    );
    reply.json(201, &event);
    (status, message)
}

async fn expect_ownership_check(api: &mut Handle, path: &str) {
    let (_, reply) = expect(api, "GET", path).await;
    reply.not_found("not created yet");
}

/// A server-side apply (field manager `faas-controller`, forced) of the object at `path`,
/// after its ownership check.
async fn expect_apply(api: &mut Handle, path: &str) -> (Value, Reply) {
    expect_ownership_check(api, path).await;
    expect(api, "PATCH", &format!("{path}{APPLY}")).await
}

/// The metadata of an object the Function owns (what an ownership check reads).
fn owned_metadata(name: &str, uid: &str) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
           "metadata": {"name": name, "namespace": "shop", "uid": uid,
                        "ownerReferences": [{"apiVersion": "faas.dev/v1alpha1", "kind": "Function",
                                             "name": "orders", "uid": UID, "controller": true}]}})
}

/// What a GET of one of the controller's own unowned objects (a pool's) answers: its
/// metadata with our managed-by label.
fn ours_metadata(name: &str) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
           "metadata": {"name": name, "namespace": "shop", "uid": "ours",
                        "labels": {"app.kubernetes.io/managed-by": "faas-controller"}}})
}

fn owner_is_the_function(body: &Value) {
    let owner = &body["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], UID, "{body}");
    assert_eq!(owner["kind"], "Function");
    assert_eq!(owner["controller"], true);
}

/// A Deployment as the API server returns it after apply: the body plus a status.
fn with_status(mut deployment: Value, ready: i64) -> Value {
    deployment["status"] = json!({
        "replicas": 1, "readyReplicas": ready, "updatedReplicas": 1, "availableReplicas": ready
    });
    deployment
}

/// The Function as the API server stores it after a status apply.
fn stored(function: &Function, patch: &Value) -> Value {
    let mut stored = serde_json::to_value(function).unwrap();
    stored["status"] = patch["status"].clone();
    stored
}

async fn run(
    function: Function,
    ctx: &Arc<Context>,
) -> tokio::task::JoinHandle<Result<kube::runtime::controller::Action, reconcile::Error>> {
    let ctx = Arc::clone(ctx);
    tokio::spawn(async move { reconcile::reconcile(Arc::new(function), ctx).await })
}

#[tokio::test]
async fn the_first_pass_only_adds_the_finalizer() {
    let (ctx, mut api) = context(false);
    let mut f = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    f.metadata.finalizers = None;
    let pass = run(f.clone(), &ctx).await;
    let (patch, reply) = expect(
        &mut api,
        "PATCH",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions/orders?",
    )
    .await;
    assert_eq!(
        patch,
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["faas.dev/cleanup"]}
        ])
    );
    f.metadata.finalizers = Some(vec![reconcile::FINALIZER.into()]);
    reply.json(200, &serde_json::to_value(&f).unwrap());
    pass.await.unwrap().expect("pass succeeds");
}

#[tokio::test]
async fn a_container_function_is_applied_owned_and_its_status_written() {
    let (ctx, mut api) = context(false);
    let f = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    let f_copy = f.clone();
    let pass = run(f, &ctx).await;

    let (sa, reply) = expect_apply(
        &mut api,
        "/api/v1/namespaces/shop/serviceaccounts/fn-orders",
    )
    .await;
    owner_is_the_function(&sa);
    assert_eq!(sa["kind"], "ServiceAccount");
    reply.json(200, &sa);

    let (deployment, reply) = expect_apply(
        &mut api,
        "/apis/apps/v1/namespaces/shop/deployments/fn-orders",
    )
    .await;
    owner_is_the_function(&deployment);
    assert_eq!(deployment["spec"]["replicas"], 1);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "fn-orders");
    assert_eq!(
        pod["containers"][0]["image"],
        "registry.example.com/orders:1"
    );
    assert!(pod["initContainers"].is_null(), "no sidecar for plain http");
    reply.json(200, &with_status(deployment, 1));

    let (service, reply) =
        expect_apply(&mut api, "/api/v1/namespaces/shop/services/fn-orders").await;
    owner_is_the_function(&service);
    reply.json(200, &service);

    // One replica: no PDB wanted, so one left from an earlier spec (ours) is deleted, that
    // very one (its uid as precondition).
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/fn-orders",
    )
    .await;
    reply.json(200, &owned_metadata("fn-orders", "pdb-uid-1"));
    let (delete, reply) = expect(
        &mut api,
        "DELETE",
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/fn-orders?",
    )
    .await;
    assert_eq!(delete["preconditions"]["uid"], "pdb-uid-1", "{delete}");
    reply.not_found("poddisruptionbudgets fn-orders");

    let (status, reply) = expect_status(&mut api).await;
    assert_eq!(status["apiVersion"], "faas.dev/v1alpha1");
    assert_eq!(status["kind"], "Function");
    let s = &status["status"];
    assert_eq!(s["observedGeneration"], 3);
    assert_eq!(s["runtime"], "container-http");
    assert_eq!(s["readyReplicas"], 1);
    assert_eq!(s["url"], "https://fn.example.com/function/orders");
    let ready = &s["conditions"][0];
    assert_eq!(
        (&ready["type"], &ready["status"], &ready["reason"]),
        (&json!("Ready"), &json!("True"), &json!("Available"))
    );
    assert!(ready["lastTransitionTime"].is_string());
    assert_eq!(s["conditions"][1]["type"], "ArtifactResolved");
    reply.json(200, &stored(&f_copy, &status));

    // Ready changed (from nothing): one Event.
    let (event, reply) = expect_event(&mut api).await;
    assert_eq!(event["reason"], "Available");
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["regarding"]["uid"], UID);
    reply.json(201, &event);

    let action = pass.await.unwrap().expect("pass succeeds");
    assert_eq!(
        format!("{action:?}"),
        format!(
            "{:?}",
            kube::runtime::controller::Action::requeue(Duration::from_secs(300))
        )
    );
    assert!(
        ctx.metrics
            .render()
            .contains("faas_controller_reconciles_total{outcome=\"ok\"} 1")
    );
}

#[tokio::test]
async fn an_unchanged_status_is_not_written_again() {
    let (ctx, mut api) = context(false);
    let mut f = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    // The status an earlier pass wrote for this very Deployment.
    let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(with_status(
        serde_json::to_value(
            faas_controller::render::workload::workload(&f, &ctx.defaults)
                .unwrap()
                .deployment,
        )
        .unwrap(),
        1,
    ))
    .unwrap();
    let observed = faas_controller::status::Observed {
        deployment: Some(deployment.clone()),
        keda: false,
        public_url: ctx.public_url.clone(),
        ..Default::default()
    };
    f.status = Some(faas_controller::status::status(
        &f,
        &observed,
        jiff::Timestamp::from_second(1_700_000_000).unwrap(),
    ));
    let pass = run(f, &ctx).await;
    for uri in [
        format!("/api/v1/namespaces/shop/serviceaccounts/fn-orders{APPLY}"),
        format!("/apis/apps/v1/namespaces/shop/deployments/fn-orders{APPLY}"),
        format!("/api/v1/namespaces/shop/services/fn-orders{APPLY}"),
    ] {
        // Ours already (owned by the Function): applied again.
        let (_, reply) = expect(&mut api, "GET", uri.trim_end_matches(APPLY)).await;
        reply.json(
            200,
            &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                    "metadata": {"name": "fn-orders", "namespace": "shop",
                                 "ownerReferences": [{"apiVersion": "faas.dev/v1alpha1", "kind": "Function",
                                                      "name": "orders", "uid": UID, "controller": true}]}}),
        );
        let (body, reply) = expect(&mut api, "PATCH", &uri).await;
        if uri.contains("deployments") {
            reply.json(200, &serde_json::to_value(&deployment).unwrap());
        } else {
            reply.json(200, &body);
        }
    }
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/fn-orders",
    )
    .await;
    reply.not_found("pdb");
    // No status patch, no Event: with the mock gone, any further request would fail the pass.
    drop(api);
    pass.await
        .unwrap()
        .expect("pass succeeds without another request");
}

#[tokio::test]
async fn scale_from_zero_leaves_replicas_to_the_gateway() {
    let (ctx, mut api) = context(false);
    let mut f = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    f.spec.scale = Some(ScaleSpec {
        min: 0,
        max: Some(3),
        idle_after: Some("5m".into()),
    });
    let pass = run(f, &ctx).await;
    let (sa, reply) = expect_apply(
        &mut api,
        "/api/v1/namespaces/shop/serviceaccounts/fn-orders",
    )
    .await;
    reply.json(200, &sa);
    let (deployment, reply) = expect_apply(
        &mut api,
        "/apis/apps/v1/namespaces/shop/deployments/fn-orders",
    )
    .await;
    // The gateway scales it from and to zero: our apply must not own `replicas`, or every
    // reconcile would put back scale.min and stop the replica a request just started.
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "{}",
        deployment["spec"]
    );
    // The rest of the pass is the same as with any container function.
    drop(reply);
    drop(api);
    let _ = pass.await;
}

/// Applies the ServiceAccount and returns the Deployment as applied, replying with
/// `ready` ready replicas; then the Service, and no PDB (none there).
async fn expect_workload(api: &mut Handle, ready: i64) -> Value {
    let (sa, reply) = expect_apply(api, "/api/v1/namespaces/shop/serviceaccounts/fn-orders").await;
    reply.json(200, &sa);
    let (deployment, reply) =
        expect_apply(api, "/apis/apps/v1/namespaces/shop/deployments/fn-orders").await;
    reply.json(200, &with_status(deployment.clone(), ready));
    let (service, reply) = expect_apply(api, "/api/v1/namespaces/shop/services/fn-orders").await;
    reply.json(200, &service);
    let (_, reply) = expect(
        api,
        "GET",
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/fn-orders",
    )
    .await;
    reply.not_found("poddisruptionbudgets fn-orders");
    deployment
}

#[tokio::test]
async fn an_sqs_function_without_keda_keeps_a_replica_to_poll_and_says_so() {
    let (ctx, mut api) = context(false);
    let mut f = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    f.spec.scale = Some(ScaleSpec {
        min: 0,
        max: None,
        idle_after: None,
    });
    f.spec.triggers = Some(TriggersSpec {
        sqs: vec![SqsTrigger {
            queue_url: "https://sqs.eu-west-3.amazonaws.com/123456789012/orders".into(),
            ..SqsTrigger::default()
        }],
    });
    let pass = run(f, &ctx).await;
    let deployment = expect_workload(&mut api, 1).await;
    // scale.min 0, but the poller is the sidecar in the pod: the controller keeps one.
    assert_eq!(deployment["spec"]["replicas"], 1, "{}", deployment["spec"]);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["initContainers"][0]["args"],
        json!(["sidecar"])
    );
    // No KEDA: no ScaledObject asked for; the status comes next.
    let (status, reply) = expect_status(&mut api).await;
    let triggers = &status["status"]["conditions"][2];
    assert_eq!(triggers["type"], "TriggersReady");
    assert_eq!(triggers["status"], "True");
    assert_eq!(triggers["reason"], "FixedReplicas");
    let message = triggers["message"].as_str().unwrap_or_default();
    assert!(message.contains("(1 ready)"), "{message}");
    assert!(message.contains("1 replica(s) kept"), "{message}");
    drop(reply);
    drop(api);
    let _ = pass.await;
}

#[tokio::test]
async fn a_scheduled_function_at_scale_min_zero_is_left_to_the_gateway_that_its_fires_wake() {
    let (ctx, mut api) = context(false);
    let mut f = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    f.spec.scale = Some(ScaleSpec {
        min: 0,
        max: None,
        idle_after: None,
    });
    f.spec.schedules = vec![faas_api::Schedule {
        name: "nightly".into(),
        cron: "0 3 * * *".into(),
        ..faas_api::Schedule::default()
    }];
    let pass = run(f, &ctx).await;
    let deployment = expect_workload(&mut api, 1).await;
    // The controller's cron calls it through the gateway, whose scale-from-zero hold wakes
    // it: the gateway owns `replicas`, which the controller leaves out of its apply.
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "{}",
        deployment["spec"]
    );
    drop(api);
    let _ = pass.await;
}

#[tokio::test]
async fn a_lambda_handler_with_sqs_gets_its_sidecar_pdb_and_keda_scaling() {
    let (ctx, mut api) = context(true);
    let mut f = function(ContainerMode::Lambda, Some("registry.example.com/orders:2"));
    f.spec.scale = Some(ScaleSpec {
        min: 2,
        max: Some(30),
        idle_after: None,
    });
    f.spec.triggers = Some(TriggersSpec {
        sqs: vec![SqsTrigger {
            queue_url: "https://sqs.eu-west-3.amazonaws.com/123456789012/orders".into(),
            ..SqsTrigger::default()
        }],
    });
    let f_copy = f.clone();
    let pass = run(f, &ctx).await;
    let (sa, reply) = expect_apply(
        &mut api,
        "/api/v1/namespaces/shop/serviceaccounts/fn-orders",
    )
    .await;
    reply.json(200, &sa);
    let (deployment, reply) = expect_apply(
        &mut api,
        "/apis/apps/v1/namespaces/shop/deployments/fn-orders",
    )
    .await;
    // KEDA's HPA owns replicas: our apply leaves the field out.
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "{}",
        deployment["spec"]
    );
    let sidecar = &deployment["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(sidecar["args"], json!(["sidecar"]));
    assert_eq!(sidecar["restartPolicy"], "Always");
    reply.json(200, &with_status(deployment, 0));
    let (service, reply) =
        expect_apply(&mut api, "/api/v1/namespaces/shop/services/fn-orders").await;
    reply.json(200, &service);
    let (pdb, reply) = expect_apply(
        &mut api,
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/fn-orders",
    )
    .await;
    owner_is_the_function(&pdb);
    reply.json(200, &pdb);
    let (auth, reply) = expect_apply(
        &mut api,
        "/apis/keda.sh/v1alpha1/namespaces/shop/triggerauthentications/fn-orders",
    )
    .await;
    owner_is_the_function(&auth);
    assert_eq!(auth["spec"]["podIdentity"]["identityOwner"], "workload");
    reply.json(200, &auth);
    let (scaled, reply) = expect_apply(
        &mut api,
        "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects/fn-orders",
    )
    .await;
    owner_is_the_function(&scaled);
    assert_eq!(scaled["spec"]["minReplicaCount"], 2);
    assert_eq!(scaled["spec"]["maxReplicaCount"], 30);
    assert_eq!(scaled["spec"]["triggers"][0]["type"], "aws-sqs-queue");
    reply.json(200, &scaled);

    let (status, reply) = expect_status(&mut api).await;
    let conditions = &status["status"]["conditions"];
    assert_eq!(conditions[0]["status"], "False");
    assert_eq!(conditions[0]["reason"], "Progressing");
    assert_eq!(conditions[2]["type"], "TriggersReady");
    // One replica, none ready: nothing polls yet, and the status says so (it used to claim
    // the queue was served).
    assert_eq!(conditions[2]["status"], "False");
    assert_eq!(conditions[2]["reason"], "PollerNotReady");
    assert!(
        conditions[2]["message"]
            .as_str()
            .is_some_and(|m| m.contains("KEDA scales the function")),
        "{conditions}"
    );
    assert_eq!(status["status"]["runtime"], "lambda");
    reply.json(200, &stored(&f_copy, &status));
    let (event, reply) = expect_event(&mut api).await;
    assert_eq!(event["type"], "Warning");
    reply.json(201, &event);
    pass.await.unwrap().expect("pass succeeds");
}

#[tokio::test]
async fn a_function_that_cannot_run_gets_only_a_status_that_says_why() {
    let (ctx, mut api) = context(false);
    // No image: `command` is local mode's stand-in; nothing is created in the cluster.
    let mut f = function(ContainerMode::Http, None);
    if let Some(c) = f.spec.runtime.container.as_mut() {
        c.command = vec!["python3".into(), "server.py".into()];
    }
    let f_copy = f.clone();
    let pass = run(f, &ctx).await;
    let (_, message) = expect_refused(&mut api, &f_copy, "NoImage").await;
    assert!(
        message.contains("spec.runtime.container.image is required"),
        "{message}"
    );
    pass.await.unwrap().expect("pass succeeds");
}

/// The shell judges a Function's routes against every Function its watch sees (the
/// reflector store it shares with cron): an older Function of another namespace holds the
/// short name and the host this one asks for, so this one gets `RouteConflict` and no URL.
#[tokio::test]
async fn a_function_whose_routes_an_older_one_holds_gets_route_conflict_and_no_url() {
    let (ctx, mut api) = context(false);
    let (store, mut writer) = kube::runtime::reflector::store::<Function>();
    let mut older = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    older.metadata.namespace = Some("billing".into());
    older.metadata.uid = Some("5d0c7c0e-0000-4000-8000-0000000000b0".into());
    older.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::from_second(1_700_000_000).unwrap(),
    ));
    older.spec.http = Some(faas_api::HttpSpec {
        hosts: vec!["orders.example.com".into()],
        ..Default::default()
    });
    let mut f = function(ContainerMode::Http, None);
    if let Some(c) = f.spec.runtime.container.as_mut() {
        c.command = vec!["python3".into(), "server.py".into()];
    }
    f.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::from_second(1_700_000_100).unwrap(),
    ));
    f.spec.http = Some(faas_api::HttpSpec {
        hosts: vec!["orders.example.com".into()],
        ..Default::default()
    });
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(older));
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(f.clone()));
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    let ctx = Arc::new(Context {
        client: ctx.client.clone(),
        defaults: ctx.defaults.clone(),
        keda: false,
        public_url: ctx.public_url.clone(),
        recorder: ctx.recorder.clone(),
        metrics: Metrics::new().unwrap(),
        routing: faas_api::routing::RoutingPolicy::cluster(&["fn.example.com"], &[] as &[&str]),
        functions: Some(store),
        platform_token: None,
    });
    let f_copy = f.clone();
    let pass = run(f, &ctx).await;
    let (status, reply) = expect_status(&mut api).await;
    let s = &status["status"];
    assert!(s["url"].is_null(), "no URL for the loser: {s}");
    let conflict = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "RouteConflict")
        .unwrap_or_else(|| panic!("no RouteConflict in {s}"));
    assert_eq!(conflict["status"], "True");
    assert_eq!(conflict["reason"], "RouteTaken");
    let message = conflict["message"].as_str().unwrap();
    assert!(
        message.contains("host orders.example.com belongs to billing/orders")
            && message.contains("/function/orders belongs to billing/orders")
            && message.contains("/function/orders.shop"),
        "{message}"
    );
    reply.json(200, &stored(&f_copy, &status));
    let (_, reply) = expect_event(&mut api).await;
    reply.json(201, &json!({}));
    pass.await.unwrap().expect("pass succeeds");
}

#[tokio::test]
async fn deleting_records_an_event_and_removes_the_finalizer() {
    let (ctx, mut api) = context(false);
    let mut f = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    f.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    // Another controller's finalizer first: ours is removed, at its index, only if it is
    // still there (the `test`), and the other one is left alone.
    f.metadata.finalizers = Some(vec!["other.example/x".into(), reconcile::FINALIZER.into()]);
    let pass = run(f.clone(), &ctx).await;
    let (event, reply) = expect_event(&mut api).await;
    assert_eq!(event["reason"], "Deleting");
    reply.json(201, &event);
    let (patch, reply) = expect(
        &mut api,
        "PATCH",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions/orders?",
    )
    .await;
    assert_eq!(
        patch,
        json!([
            {"op": "test", "path": "/metadata/finalizers/1", "value": "faas.dev/cleanup"},
            {"op": "remove", "path": "/metadata/finalizers/1"}
        ])
    );
    f.metadata.finalizers = Some(vec!["other.example/x".into()]);
    reply.json(200, &serde_json::to_value(&f).unwrap());
    pass.await.unwrap().expect("cleanup succeeds");
}

#[tokio::test]
async fn an_api_error_fails_the_pass_with_its_cause_and_is_retried() {
    let (ctx, mut api) = context(false);
    let f = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    let pass = run(f.clone(), &ctx).await;
    let (sa, reply) = expect_apply(
        &mut api,
        "/api/v1/namespaces/shop/serviceaccounts/fn-orders",
    )
    .await;
    reply.json(200, &sa);
    let (_, reply) = expect_apply(
        &mut api,
        "/apis/apps/v1/namespaces/shop/deployments/fn-orders",
    )
    .await;
    reply.json(
        409,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict",
                "code": 409, "message": "Operation cannot be fulfilled: the object has been modified"}),
    );
    let error = pass.await.unwrap().expect_err("the pass fails");
    assert!(
        error.to_string().contains("applying Deployment fn-orders"),
        "{error}"
    );
    assert_eq!(error.metric_label(), "api");
    let action = reconcile::error_policy(Arc::new(f), &error, Arc::clone(&ctx));
    assert_eq!(
        format!("{action:?}"),
        format!(
            "{:?}",
            kube::runtime::controller::Action::requeue(Duration::from_secs(15))
        )
    );
    assert!(
        ctx.metrics
            .render()
            .contains("faas_controller_reconciles_total{outcome=\"api\"} 1")
    );
}

/// A WASM function joining `pool-default`: its pool's members are listed (none yet).
/// The WASM function's own ServiceAccount (`fn-orders`, owned by it): the identity its pool
/// exchanges for its IAM role. Applied before it joins a pool.
async fn expect_own_service_account(api: &mut Handle) -> Value {
    let (sa, reply) = expect_apply(api, "/api/v1/namespaces/shop/serviceaccounts/fn-orders").await;
    owner_is_the_function(&sa);
    assert_eq!(sa["kind"], "ServiceAccount");
    reply.json(200, &sa);
    sa
}

async fn expect_no_other_members(api: &mut Handle) {
    let (_, reply) = expect(
        api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions?&labelSelector=faas.dev%2Fpool%3Ddefault",
    )
    .await;
    reply.json(200, &list("FunctionList", vec![]));
}

/// The look for pool-default's HorizontalPodAutoscaler (to remove one left from other bounds),
/// answered: none.
async fn expect_no_pool_autoscaler(api: &mut Handle) {
    let (_, reply) = expect(
        api,
        "GET",
        "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/pool-default",
    )
    .await;
    reply.not_found("absent");
}

/// The apply of the `faas.dev/pool` label on Function `orders` (never ownership-checked: it
/// is the owner), answered with `function`; returns what was applied.
async fn expect_pool_label(api: &mut Handle, function: &Function) -> Value {
    let (label, reply) = expect(
        api,
        "PATCH",
        &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functions/orders{APPLY}"),
    )
    .await;
    reply.json(200, &serde_json::to_value(function).unwrap());
    label
}

/// The eight objects of a new pool (Role, RoleBinding, token Role and RoleBinding,
/// ServiceAccount, Deployment, Service, PDB), each found absent, then applied and answered as applied; `inspect` sees each apply's
/// path and body.
async fn answer_new_pool_objects(api: &mut Handle, mut inspect: impl FnMut(&str, &Value)) {
    for _ in 0..8 {
        let (request, reply) = faas_kube_mock::next(api).await;
        assert_eq!(request.method(), "GET", "{}", request.uri());
        reply.not_found("new");
        let (request, reply) = faas_kube_mock::next(api).await;
        assert_eq!(request.method(), "PATCH", "{}", request.uri());
        let uri = request.uri().to_string();
        let body: Value =
            serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap();
        inspect(&uri, &body);
        reply.json(200, &body);
    }
}

fn wasm_function(source: &str, sha256: Option<&str>) -> Function {
    let mut f = function(ContainerMode::Http, None);
    f.spec.runtime = RuntimeSpec {
        wasm: Some(faas_api::WasmRuntime {
            source: source.into(),
            sha256: sha256.map(str::to_owned),
            ..faas_api::WasmRuntime::default()
        }),
        container: None,
    };
    f.spec.scale = None;
    // 128Mi x 4 fits the default 1Gi pool pod.
    f.spec.concurrency = Some(4);
    f
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {}, "items": items})
}

#[tokio::test]
async fn a_wasm_function_joins_its_pool_and_is_ready_when_the_pool_and_artifact_are() {
    let (ctx, mut api) = context(false);
    let module = b"\0asm\x01\0\0\0".to_vec();
    let digest = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&module))
    };
    let mut f = wasm_function("configmap://fn-hello/hello.wasm", Some(&digest));
    // What the pool's pods reported (one of them is gone since).
    let loaded = |generation: i64| faas_api::PodLoadState {
        loaded: true,
        generation: Some(generation),
        sha256: Some(digest.clone()),
        reason: None,
        degraded: None,
    };
    f.status = Some(faas_api::FunctionStatus {
        load_state: [
            ("pool-default-a".to_owned(), loaded(3)),
            ("pool-default-b".to_owned(), loaded(3)),
            ("pool-default-gone".to_owned(), loaded(2)),
        ]
        .into(),
        ..faas_api::FunctionStatus::default()
    });
    let f_copy = f.clone();
    let pass = run(f, &ctx).await;

    // Its own identity first: the ServiceAccount its pool exchanges for its role.
    expect_own_service_account(&mut api).await;
    expect_no_other_members(&mut api).await;
    // The label pool pods watch.
    let label = expect_pool_label(&mut api, &f_copy).await;
    assert_eq!(label["metadata"]["labels"]["faas.dev/pool"], "default");
    assert!(label.get("spec").is_none(), "only the label is ours");

    for (kind, uri) in [
        (
            "Role",
            format!("/apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles/faas-pool{APPLY}"),
        ),
        (
            "RoleBinding",
            format!(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings/pool-default{APPLY}"
            ),
        ),
        (
            "Role",
            format!(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles/pool-default-members{APPLY}"
            ),
        ),
        (
            "RoleBinding",
            format!(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings/pool-default-members{APPLY}"
            ),
        ),
        (
            "ServiceAccount",
            format!("/api/v1/namespaces/shop/serviceaccounts/pool-default{APPLY}"),
        ),
        (
            "Deployment",
            format!("/apis/apps/v1/namespaces/shop/deployments/pool-default{APPLY}"),
        ),
        (
            "Service",
            format!("/api/v1/namespaces/shop/services/pool-default{APPLY}"),
        ),
        (
            "PodDisruptionBudget",
            format!("/apis/policy/v1/namespaces/shop/poddisruptionbudgets/pool-default{APPLY}"),
        ),
    ] {
        expect_ownership_check(&mut api, uri.trim_end_matches(APPLY)).await;
        let (body, reply) = expect(&mut api, "PATCH", &uri).await;
        assert_eq!(body["kind"], kind);
        assert!(
            body["metadata"].get("ownerReferences").is_none(),
            "a pool is shared: no single owner ({kind})"
        );
        if uri.contains("/roles/pool-default-members") {
            // Its only member has no IAM role: no token of anyone's (`resourceNames: []`
            // would be everyone's).
            assert_eq!(body["rules"], json!([]), "{body}");
        }
        if kind == "Deployment" {
            let args = &body["spec"]["template"]["spec"]["containers"][0]["args"];
            assert_eq!(args[0], "serve");
            assert_eq!(args[2], "default");
            let mut stored = body.clone();
            stored["spec"]["replicas"] = json!(2);
            stored["status"] = json!({"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2});
            reply.json(200, &stored);
        } else {
            reply.json(200, &body);
        }
    }
    // Fixed replicas (the default bounds): no autoscaler, and none left behind.
    expect_no_pool_autoscaler(&mut api).await;
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/api/v1/namespaces/shop/pods?&labelSelector=faas.dev%2Fpool%3Ddefault",
    )
    .await;
    let pod = |name: &str| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"}});
    reply.json(
        200,
        &list(
            "PodList",
            vec![pod("pool-default-a"), pod("pool-default-b")],
        ),
    );
    // The gone pod's report is dropped (a merge patch: it is the pod's field, not ours).
    let (forget, reply) = expect(
        &mut api,
        "PATCH",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions/orders/status?",
    )
    .await;
    assert_eq!(
        forget,
        json!({"status": {"loadState": {"pool-default-gone": null}}})
    );
    reply.json(200, &serde_json::to_value(&f_copy).unwrap());
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/api/v1/namespaces/shop/configmaps/fn-hello",
    )
    .await;
    use base64::Engine as _;
    reply.json(
        200,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "fn-hello", "namespace": "shop"},
                "binaryData": {"hello.wasm": base64::engine::general_purpose::STANDARD.encode(&module)}}),
    );

    let (status, reply) = expect_status(&mut api).await;
    let s = &status["status"];
    assert_eq!(s["pool"], "default");
    assert_eq!(s["runtime"], "wasm");
    assert_eq!(s["readyReplicas"], 2);
    assert_eq!(s["conditions"][0]["reason"], "Available");
    assert_eq!(
        s["conditions"][0]["message"],
        "loaded in 2/2 pods of pool-default"
    );
    assert!(
        s.get("loadState").is_none(),
        "never written by the reconciler"
    );
    assert_eq!(s["conditions"][1]["type"], "ArtifactResolved");
    assert_eq!(s["conditions"][1]["status"], "True");
    assert!(
        s["conditions"][1]["message"]
            .as_str()
            .unwrap()
            .contains(&digest),
        "{s}"
    );
    reply.json(200, &stored(&f_copy, &status));
    let (event, reply) = expect_event(&mut api).await;
    reply.json(201, &event);
    drop(api);
    pass.await.unwrap().expect("pass succeeds");
}

/// Answers a pass over a Function already labelled into the default pool with a ConfigMap
/// artifact, up to the read of the ConfigMap `fn-hello`, whose reply is given back.
async fn answer_up_to_the_configmap(api: &mut Handle) -> Reply {
    expect_own_service_account(api).await;
    expect_no_other_members(api).await;
    // Already labelled: no label patch. The pool objects (each checked, then applied), then
    // the artifact.
    answer_new_pool_objects(api, |_, _| {}).await;
    // Fixed replicas (the default bounds): no autoscaler, and none left behind.
    expect_no_pool_autoscaler(api).await;
    let (_, reply) = expect(
        api,
        "GET",
        "/api/v1/namespaces/shop/pods?&labelSelector=faas.dev%2Fpool%3Ddefault",
    )
    .await;
    reply.json(200, &list("PodList", vec![]));
    let (_, reply) = expect(api, "GET", "/api/v1/namespaces/shop/configmaps/fn-hello").await;
    reply
}

#[tokio::test]
async fn a_tampered_or_missing_artifact_keeps_the_function_not_ready_with_the_reason() {
    let (ctx, mut api) = context(false);
    let f = wasm_function("configmap://fn-hello/hello.wasm", Some(&"0".repeat(64)));
    let f_copy = f.clone();
    let mut labelled = f.clone();
    labelled.metadata.labels = Some([("faas.dev/pool".to_owned(), "default".to_owned())].into());

    // Tampered: the ConfigMap holds other bytes than the pinned digest.
    let pass = run(labelled.clone(), &ctx).await;
    let reply = answer_up_to_the_configmap(&mut api).await;
    reply.json(
        200,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "fn-hello", "namespace": "shop"},
                "binaryData": {"hello.wasm": "AGFzbQEAAAA="}}),
    );
    let (_, message) = expect_refused(&mut api, &f_copy, "ArtifactDigestMismatch").await;
    assert!(message.contains("pins 0000"), "{message}");
    pass.await.unwrap().expect("pass succeeds");

    // Missing: the ConfigMap does not exist.
    let pass = run(labelled, &ctx).await;
    let reply = answer_up_to_the_configmap(&mut api).await;
    reply.not_found("configmaps \"fn-hello\" not found");
    let (_, message) = expect_refused(&mut api, &f_copy, "ArtifactNotFound").await;
    assert!(
        message.contains("ConfigMap fn-hello does not exist in namespace shop"),
        "{message}"
    );
    pass.await.unwrap().expect("pass succeeds");
}

#[tokio::test]
async fn the_last_member_of_a_pool_takes_it_along_when_deleted() {
    let (ctx, mut api) = context(false);
    let mut f = wasm_function("configmap://fn-hello/hello.wasm", None);
    f.metadata.labels = Some([("faas.dev/pool".to_owned(), "default".to_owned())].into());
    f.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    let pass = run(f.clone(), &ctx).await;
    // The members it leaves behind: none but itself, so nothing is rendered again.
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions?&labelSelector=faas.dev%2Fpool%3Ddefault",
    )
    .await;
    reply.json(
        200,
        &list("FunctionList", vec![serde_json::to_value(&f).unwrap()]),
    );
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions?&labelSelector=faas.dev%2Fpool",
    )
    .await;
    // Only itself, being deleted: the pool is unused.
    reply.json(
        200,
        &list("FunctionList", vec![serde_json::to_value(&f).unwrap()]),
    );
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/apps/v1/namespaces/shop/deployments?&labelSelector=app.kubernetes.io%2Fcomponent%3Druntime-pool%2Capp.kubernetes.io%2Fmanaged-by%3Dfaas-controller",
    )
    .await;
    reply.json(
        200,
        &list(
            "DeploymentList",
            vec![json!({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "pool-default", "namespace": "shop",
                                     "labels": {"faas.dev/pool": "default"}},
                        "spec": {"selector": {}, "template": {}}})],
        ),
    );
    // Each object is read first: ours is deleted (gone meanwhile is fine), absent is fine, and
    // one faas did not make (a Service someone named pool-default) is left alone.
    for (path, present) in [
        (
            "/apis/apps/v1/namespaces/shop/deployments/pool-default",
            Some(true),
        ),
        ("/api/v1/namespaces/shop/services/pool-default", Some(false)),
        (
            "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/pool-default",
            None,
        ),
        (
            "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/pool-default",
            Some(true),
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings/pool-default",
            Some(true),
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings/pool-default-members",
            Some(true),
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles/pool-default-members",
            None,
        ),
        (
            "/api/v1/namespaces/shop/serviceaccounts/pool-default",
            Some(true),
        ),
    ] {
        let (_, reply) = expect(&mut api, "GET", path).await;
        match present {
            None => reply.not_found("absent"),
            Some(false) => reply.json(
                200,
                &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                        "metadata": {"name": "pool-default", "namespace": "shop", "uid": "theirs"}}),
            ),
            Some(true) => {
                reply.json(200, &ours_metadata("pool-default"));
                let (_, reply) = expect(&mut api, "DELETE", &format!("{path}?")).await;
                reply.not_found("gone already is fine");
            }
        }
    }
    let (event, reply) = expect_event(&mut api).await;
    reply.json(201, &event);
    // Only after the pool objects went: our finalizer, guarded by a test of its place.
    let (patch, reply) = expect(
        &mut api,
        "PATCH",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions/orders?",
    )
    .await;
    assert_eq!(
        patch,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": "faas.dev/cleanup"},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ])
    );
    f.metadata.finalizers = None;
    reply.json(200, &serde_json::to_value(&f).unwrap());
    pass.await.unwrap().expect("cleanup succeeds");
}

/// A Function naming an IAM role its namespace may not use (another team's) is refused with a
/// condition naming the field, and nothing is rendered: no pool is even looked at.
#[tokio::test]
async fn a_foreign_role_arn_is_refused_with_a_condition_and_nothing_rendered() {
    let (ctx, mut api) = context(false);
    let mut f = wasm_function("configmap://fn-hello/hello.wasm", None);
    f.spec.iam = Some(faas_api::IamSpec {
        role_arn: "arn:aws:iam::123456789012:role/faas-payments".into(),
    });
    let f_copy = f.clone();
    let pass = run(f, &ctx).await;
    let (status, message) = expect_refused(&mut api, &f_copy, "NotAllowedInCluster").await;
    assert!(message.starts_with("spec.iam.roleArn: "), "{message}");
    assert!(status["status"].get("pool").is_none(), "{status}");
    drop(api);
    pass.await.unwrap().expect("pass succeeds");
}

/// A Function that labelled itself into a pool, and that the cluster refuses (here: it asks
/// for the pool pod's service-account token as a host directory), loses the label; nothing
/// of the pool is applied.
#[tokio::test]
async fn a_self_set_pool_label_is_stripped_from_a_refused_function() {
    let (ctx, mut api) = context(false);
    let mut f = wasm_function("configmap://fn-hello/hello.wasm", None);
    if let Some(w) = f.spec.runtime.wasm.as_mut() {
        w.dirs = vec![faas_api::DirGrant {
            host_path: "/var/run/secrets/kubernetes.io/serviceaccount".into(),
            guest_path: "/s".into(),
            read_only: true,
        }];
    }
    f.metadata.labels = Some([("faas.dev/pool".to_owned(), "default".to_owned())].into());
    let f_copy = f.clone();
    let pass = run(f, &ctx).await;
    let (patch, reply) = expect(
        &mut api,
        "PATCH",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions/orders?",
    )
    .await;
    assert_eq!(
        patch,
        json!({"metadata": {"labels": {"faas.dev/pool": null}}}),
        "a merge patch: the label is someone else's field"
    );
    reply.json(200, &serde_json::to_value(&f_copy).unwrap());
    // The pool it claimed keeps no member to render it for, and may be unused now.
    expect_no_other_members(&mut api).await;
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions?&labelSelector=faas.dev%2Fpool",
    )
    .await;
    reply.json(200, &list("FunctionList", vec![]));
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/apps/v1/namespaces/shop/deployments?&labelSelector=app.kubernetes.io%2Fcomponent%3Druntime-pool%2Capp.kubernetes.io%2Fmanaged-by%3Dfaas-controller",
    )
    .await;
    reply.json(200, &list("DeploymentList", vec![]));
    let (_, message) = expect_refused(&mut api, &f_copy, "NotAllowedInCluster").await;
    assert!(
        message.contains("spec.runtime.wasm.dirs[0].hostPath"),
        "{message}"
    );
    drop(api);
    pass.await.unwrap().expect("pass succeeds");
}

/// A Deployment named like the Function's (`fn-orders`) that faas did not make is never taken
/// over by the forced apply: no PATCH reaches it, the status and an Event say why.
#[tokio::test]
async fn a_foreign_deployment_is_not_taken_over() {
    let (ctx, mut api) = context(false);
    let f = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    let f_copy = f.clone();
    let pass = run(f, &ctx).await;
    let (sa, reply) = expect_apply(
        &mut api,
        "/api/v1/namespaces/shop/serviceaccounts/fn-orders",
    )
    .await;
    reply.json(200, &sa);
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/apps/v1/namespaces/shop/deployments/fn-orders",
    )
    .await;
    reply.json(
        200,
        &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                "metadata": {"name": "fn-orders", "namespace": "shop",
                             "labels": {"app": "orders", "app.kubernetes.io/managed-by": "Helm"}}}),
    );
    // Next is the status, not an apply of the Deployment.
    let (_, message) = expect_refused(&mut api, &f_copy, "ObjectNotOwned").await;
    assert!(
        message.contains("Deployment fn-orders exists and was not made by faas"),
        "{message}"
    );
    drop(api);
    pass.await.unwrap().expect("pass succeeds");
}

#[tokio::test]
async fn with_network_policies_on_the_pods_policy_is_applied_before_the_pods() {
    let (ctx, mut api) = context(false);
    let mut ctx = Arc::into_inner(ctx).unwrap();
    ctx.defaults.network = Some(faas_controller::render::network::NetworkDefaults {
        platform_namespace: "faas-system".into(),
        ingress_from: vec![
            [(
                "app.kubernetes.io/name".to_owned(),
                "faas-gateway".to_owned(),
            )]
            .into(),
        ],
    });
    let ctx = Arc::new(ctx);
    let mut f = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    f.spec.network = Some(faas_api::NetworkSpec {
        allowed_outbound_hosts: vec!["https://203.0.113.7".into()],
    });
    let pass = run(f, &ctx).await;

    let (sa, reply) = expect_apply(
        &mut api,
        "/api/v1/namespaces/shop/serviceaccounts/fn-orders",
    )
    .await;
    reply.json(200, &sa);
    let (policy, reply) = expect_apply(
        &mut api,
        "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/fn-orders",
    )
    .await;
    owner_is_the_function(&policy);
    assert_eq!(policy["kind"], "NetworkPolicy");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "faas-gateway"})
    );
    assert_eq!(
        policy["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"],
        "203.0.113.7/32"
    );
    reply.json(200, &policy);
    let (deployment, _reply) = expect_apply(
        &mut api,
        "/apis/apps/v1/namespaces/shop/deployments/fn-orders",
    )
    .await;
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["faas.dev/egress"],
        "restricted"
    );
    pass.abort();
}

#[tokio::test]
async fn a_container_function_naming_a_host_is_refused_with_the_field_and_gets_no_pods() {
    let (ctx, mut api) = context(false);
    let mut f = function(ContainerMode::Http, Some("registry.example.com/orders:1"));
    f.spec.network = Some(faas_api::NetworkSpec {
        allowed_outbound_hosts: vec!["https://api.example.com".into()],
    });
    let pass = run(f, &ctx).await;
    // Straight to the status: no ServiceAccount, no Deployment.
    let (status, _reply) = expect_status(&mut api).await;
    let ready = &status["status"]["conditions"][0];
    assert_eq!(ready["reason"], "NotAllowedInCluster");
    assert!(
        ready["message"].as_str().unwrap().starts_with(
            "spec.network.allowedOutboundHosts[0]: \"https://api.example.com\" names a host"
        ),
        "{ready}"
    );
    pass.abort();
}

#[tokio::test]
async fn with_network_policies_on_a_pools_policy_is_applied_before_its_pods() {
    let (ctx, mut api) = context(false);
    let mut ctx = Arc::into_inner(ctx).unwrap();
    ctx.defaults.network = Some(faas_controller::render::network::NetworkDefaults {
        platform_namespace: "faas-system".into(),
        ingress_from: vec![
            [(
                "app.kubernetes.io/name".to_owned(),
                "faas-gateway".to_owned(),
            )]
            .into(),
        ],
    });
    let ctx = Arc::new(ctx);
    let f = wasm_function("configmap://fn-hello/hello.wasm", None);
    let f_copy = f.clone();
    let pass = run(f, &ctx).await;
    expect_own_service_account(&mut api).await;
    expect_no_other_members(&mut api).await;
    // The label pool pods watch: the Function is never checked for ownership, it is the owner.
    expect_pool_label(&mut api, &f_copy).await;
    // Shared like the pool's other objects (no owner), and first.
    let (policy, _reply) = expect_apply(
        &mut api,
        "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/pool-default",
    )
    .await;
    assert!(policy["metadata"].get("ownerReferences").is_none());
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"]["faas.dev/pool"],
        "default"
    );
    assert_eq!(
        policy["spec"]["egress"][0]["to"][0]["ipBlock"]["except"],
        json!(["169.254.0.0/16"])
    );
    pass.abort();
}

/// Where KEDA is installed, a pool whose members have SQS triggers is scaled by KEDA on their
/// queues and on CPU: a ScaledObject read with the pool's role, no autoscaler of our own, and
/// the pool Deployment's `replicas` left to it.
#[tokio::test]
async fn a_pool_with_queued_members_is_scaled_by_keda_alone() {
    let (ctx, mut api) = context(true);
    let mut f = wasm_function("configmap://fn-hello/hello.wasm", None);
    f.spec.triggers = Some(TriggersSpec {
        sqs: vec![SqsTrigger {
            queue_url: "https://sqs.eu-west-3.amazonaws.com/123456789012/hello".into(),
            ..SqsTrigger::default()
        }],
    });
    // A pooled function reads its queues with its own role.
    f.spec.iam = Some(faas_api::IamSpec {
        role_arn: "arn:aws:iam::123456789012:role/shop/hello".into(),
    });
    let f_copy = f.clone();
    let pass = run(f, &ctx).await;
    expect_own_service_account(&mut api).await;
    expect_no_other_members(&mut api).await;
    expect_pool_label(&mut api, &f_copy).await;
    // Role, RoleBinding, ServiceAccount, Deployment, Service, PDB.
    answer_new_pool_objects(&mut api, |uri, body| {
        if uri.contains("/deployments/pool-default") {
            assert!(
                body["spec"].get("replicas").is_none(),
                "KEDA's: {}",
                body["spec"]
            );
        }
    })
    .await;
    // No autoscaler of ours: only made sure there is none.
    expect_no_pool_autoscaler(&mut api).await;
    let (auth, reply) = expect_apply(
        &mut api,
        "/apis/keda.sh/v1alpha1/namespaces/shop/triggerauthentications/pool-default",
    )
    .await;
    // Members each hold their own role, the pool none: KEDA reads depths as itself.
    assert_eq!(
        auth["spec"]["podIdentity"],
        json!({"provider": "aws", "identityOwner": "keda"})
    );
    reply.json(200, &auth);
    let (scaled, reply) = expect_apply(
        &mut api,
        "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects/pool-default",
    )
    .await;
    assert_eq!(scaled["spec"]["scaleTargetRef"]["name"], "pool-default");
    let triggers = &scaled["spec"]["triggers"];
    assert_eq!(
        triggers[0]["metadata"]["queueURL"],
        "https://sqs.eu-west-3.amazonaws.com/123456789012/hello"
    );
    assert_eq!(triggers[1]["type"], "cpu");
    assert!(
        scaled["metadata"].get("ownerReferences").is_none(),
        "a pool is shared: no single owner"
    );
    reply.json(200, &scaled);
    drop(api);
    let _ = pass.await;
}

/// A queued member leaves a pool that KEDA scales on its queue (deleted here) while another,
/// unqueued member stays: the pool is rendered again for the member it keeps, so KEDA's
/// objects go and the Deployment's replicas are the pool's own again, instead of the pool
/// scaling on a queue no member reads.
#[tokio::test]
async fn a_queued_member_leaving_takes_its_queue_out_of_the_pools_scaling() {
    let (ctx, mut api) = context(true);
    let mut leaving = wasm_function("configmap://fn-hello/hello.wasm", None);
    leaving.spec.triggers = Some(TriggersSpec {
        sqs: vec![SqsTrigger {
            queue_url: "https://sqs.eu-west-3.amazonaws.com/123456789012/hello".into(),
            ..SqsTrigger::default()
        }],
    });
    leaving.spec.iam = Some(faas_api::IamSpec {
        role_arn: "arn:aws:iam::123456789012:role/shop/hello".into(),
    });
    leaving.metadata.labels = Some([("faas.dev/pool".to_owned(), "default".to_owned())].into());
    leaving.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        ));
    let mut staying = wasm_function("configmap://fn-hello/hello.wasm", None);
    staying.metadata.name = Some("catalog".into());
    staying.metadata.labels = leaving.metadata.labels.clone();
    let pass = run(leaving.clone(), &ctx).await;
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions?&labelSelector=faas.dev%2Fpool%3Ddefault",
    )
    .await;
    reply.json(
        200,
        &list(
            "FunctionList",
            vec![
                serde_json::to_value(&leaving).unwrap(),
                serde_json::to_value(&staying).unwrap(),
            ],
        ),
    );
    // Role, RoleBindings, token Role, ServiceAccount, Deployment, Service, PDB, for `catalog`
    // alone.
    answer_new_pool_objects(&mut api, |uri, body| {
        if uri.contains("/deployments/pool-default") {
            assert_eq!(body["spec"]["replicas"], 2, "ours again: {}", body["spec"]);
        }
    })
    .await;
    // KEDA's objects go (before any autoscaler of ours would come: never two on one Deployment).
    for kind in ["scaledobjects", "triggerauthentications"] {
        let path = format!("/apis/keda.sh/v1alpha1/namespaces/shop/{kind}/pool-default");
        let (_, reply) = expect(&mut api, "GET", &path).await;
        reply.json(200, &ours_metadata("pool-default"));
        let (_, reply) = expect(&mut api, "DELETE", &format!("{path}?")).await;
        reply.json(
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        );
    }
    // This context's pools have fixed replicas (no CPU bounds): none of ours either.
    expect_no_pool_autoscaler(&mut api).await;
    // Then: is any pool unused now? Not this one.
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions?&labelSelector=faas.dev%2Fpool",
    )
    .await;
    reply.json(
        200,
        &list(
            "FunctionList",
            vec![serde_json::to_value(&staying).unwrap()],
        ),
    );
    drop(api);
    let _ = pass.await;
}

/// A pool's Deployment is owned by no Function, so its status changes reach its members
/// through `pool_members`: those labelled into that pool in that namespace, no others.
#[test]
fn a_pool_deployment_maps_to_the_members_of_that_pool_in_its_namespace() {
    let (reader, mut writer) = kube::runtime::reflector::store::<Function>();
    let member = |namespace: &str, name: &str, pool: Option<&str>| {
        let mut f = wasm_function("configmap://fn-a/a.wasm", None);
        f.metadata.name = Some(name.into());
        f.metadata.namespace = Some(namespace.into());
        f.metadata.labels = pool.map(|p| [("faas.dev/pool".to_owned(), p.to_owned())].into());
        f
    };
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    for f in [
        member("team-a", "in-default", Some("default")),
        member("team-a", "in-other", Some("other")),
        member("team-a", "unplaced", None),
        member("team-b", "same-pool-name", Some("default")),
        member("team-a", "also-in-default", Some("default")),
    ] {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(f));
    }
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    let deployment = |labels: Value| -> k8s_openapi::api::apps::v1::Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "pool-default", "namespace": "team-a", "labels": labels}
        }))
        .unwrap()
    };
    let mut names: Vec<String> =
        reconcile::pool_members(&reader, &deployment(json!({"faas.dev/pool": "default"})))
            .into_iter()
            .map(|r| r.name)
            .collect();
    names.sort();
    assert_eq!(names, ["also-in-default", "in-default"]);
    assert!(reconcile::pool_members(&reader, &deployment(json!({}))).is_empty());
}

/// A `mode: job` function gets its identity and nothing that runs: each run is a Job the
/// scheduler creates. It is ready once its runs can start.
#[tokio::test]
async fn a_job_gets_its_identity_and_no_workload_and_is_ready_to_run() {
    let (ctx, mut api) = context(false);
    let mut f = function(ContainerMode::Job, Some("registry.example.com/report:1"));
    f.spec.scale = None;
    let f_copy = f.clone();
    let pass = run(f, &ctx).await;

    let (sa, reply) = expect_apply(
        &mut api,
        "/api/v1/namespaces/shop/serviceaccounts/fn-orders",
    )
    .await;
    owner_is_the_function(&sa);
    reply.json(200, &sa);

    // No Deployment, Service or PDB: the next request is the status.
    let (status, reply) = expect_status(&mut api).await;
    let ready = &status["status"]["conditions"][0];
    assert_eq!(ready["type"], "Ready");
    assert_eq!(ready["status"], "True", "{status}");
    assert_eq!(ready["reason"], "RunsAsJobs");
    assert_eq!(status["status"]["runtime"], "job");
    reply.json(200, &stored(&f_copy, &status));
    let (event, reply) = expect_event(&mut api).await;
    assert_eq!(event["reason"], "RunsAsJobs", "{event}");
    reply.json(201, &event);
    pass.await.unwrap().expect("pass succeeds");
}
