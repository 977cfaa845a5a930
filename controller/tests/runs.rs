//! The cluster run store (`FunctionRun` resources) request by request, against a
//! `tower-test` mock of the API server, and where the cluster scheduler sends a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use faas_api::{
    ContainerMode, ContainerRuntime, Function, FunctionRun, FunctionRunSpec, FunctionRunStatus,
    FunctionSpec, FunctionStatus, RunPhase, RuntimeSpec, WasmRuntime,
};
use faas_controller::cron::ServiceTarget;
use faas_controller::runs::KubeRunStore;
use faas_kube_mock::{Handle, expect};
use faas_schedule::store::Prune;
use faas_schedule::{Cursor, JobKey, RunStore};
use serde_json::{Value, json};

const APPLY: &str = "?&force=true&fieldManager=faas-scheduler";
const UID: &str = "0f0f0f0f-0000-4000-8000-000000000002";

fn store() -> (KubeRunStore, Handle) {
    let (client, handle) = faas_kube_mock::client("default");
    (KubeRunStore::new(client, "shop"), handle)
}

fn function() -> Function {
    let mut f = Function::new("orders", FunctionSpec::default());
    f.metadata.namespace = Some("shop".into());
    f.metadata.uid = Some(UID.into());
    f
}

fn run(id: &str, phase: RunPhase) -> FunctionRun {
    let mut run = FunctionRun::new(
        id,
        FunctionRunSpec {
            function: "orders".into(),
            schedule: "nightly".into(),
            trigger: "cron".into(),
            scheduled_time: Some("2026-11-29T03:00:00Z".into()),
            attempt: 1,
        },
    );
    run.metadata.annotations =
        Some([("faas.dev/owner".to_owned(), "controller-0".to_owned())].into());
    run.status = Some(FunctionRunStatus {
        phase,
        ..FunctionRunStatus::default()
    });
    run
}

fn listed(id: &str, created: &str, phase: RunPhase) -> Value {
    let mut value = serde_json::to_value(run(id, phase)).unwrap();
    value["metadata"]["namespace"] = json!("shop");
    value["metadata"]["creationTimestamp"] = json!(created);
    value
}

#[tokio::test]
async fn a_run_is_created_owned_labelled_then_its_status_cursor_and_pruning_follow() {
    let (store, mut api) = store();
    let cursor = Cursor {
        key: JobKey::new("orders", "nightly"),
        timing: "0 3 * * *|Europe/Paris".into(),
        last: "2026-11-29T03:00:00Z".parse().unwrap(),
    };
    let prune = Prune {
        key: JobKey::new("orders", "nightly"),
        history: faas_schedule::job::History {
            succeeded: 1,
            failed: 1,
        },
    };
    let id = "orders.nightly.20261129t030000z";
    let created = tokio::spawn(async move {
        store
            .create(run(id, RunPhase::Running), Some(cursor), Some(prune))
            .await
    });

    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions/orders",
    )
    .await;
    reply.json(200, &serde_json::to_value(function()).unwrap());

    let (object, reply) = expect(
        &mut api,
        "POST",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functionruns?",
    )
    .await;
    assert_eq!(object["metadata"]["name"], id);
    assert_eq!(object["metadata"]["labels"]["faas.dev/function"], "orders");
    assert_eq!(object["metadata"]["labels"]["faas.dev/schedule"], "nightly");
    assert_eq!(
        object["metadata"]["annotations"]["faas.dev/owner"],
        "controller-0"
    );
    assert_eq!(object["metadata"]["ownerReferences"][0]["uid"], UID);
    assert!(
        object["metadata"]["ownerReferences"][0]
            .get("controller")
            .is_none()
    );
    assert!(
        object.get("status").is_none(),
        "status goes through its subresource"
    );
    reply.json(201, &object);

    let (status, reply) = expect(
        &mut api,
        "PATCH",
        &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functionruns/{id}/status{APPLY}"),
    )
    .await;
    assert_eq!(status["status"]["phase"], "Running");
    reply.json(200, &listed(id, "2026-11-29T03:00:01Z", RunPhase::Running));

    let (cursor, reply) = expect(
        &mut api,
        "PATCH",
        &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functions/orders/status{APPLY}"),
    )
    .await;
    assert_eq!(
        cursor["status"],
        json!({"lastSchedules": {"nightly": "2026-11-29T03:00:00Z"},
               "scheduleTimings": {"nightly": "0 3 * * *|Europe/Paris"}})
    );
    reply.json(200, &serde_json::to_value(function()).unwrap());

    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functionruns?&labelSelector=faas.dev%2Ffunction%3Dorders%2Cfaas.dev%2Fschedule%3Dnightly",
    )
    .await;
    // Listed in no particular order: the store sorts newest first itself.
    reply.json(
        200,
        &json!({"apiVersion": "faas.dev/v1alpha1", "kind": "FunctionRunList", "metadata": {},
        "items": [
            listed("orders.nightly.20261127t030000z", "2026-11-27T03:00:01Z", RunPhase::Succeeded),
            listed(id, "2026-11-29T03:00:01Z", RunPhase::Running),
            listed("orders.nightly.20261128t030000z", "2026-11-28T03:00:01Z", RunPhase::Succeeded),
            listed("orders.nightly.20261126t030000z", "2026-11-26T03:00:01Z", RunPhase::Failed),
            listed("orders.nightly.20261125t030000z", "2026-11-25T03:00:01Z", RunPhase::Failed),
        ]}),
    );
    // Keep 1 succeeded (the 28th) and 1 failed (the 26th); the running one is never pruned.
    for doomed in [
        "orders.nightly.20261127t030000z",
        "orders.nightly.20261125t030000z",
    ] {
        let (_, reply) = expect(
            &mut api,
            "DELETE",
            &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functionruns/{doomed}?"),
        )
        .await;
        reply.status(404, "NotFound"); // already gone: fine
    }
    drop(api); // a further request would fail the create
    assert!(created.await.unwrap().expect("stored"));
}

/// The store's create of a run whose record exists: the Function read for the owner, then
/// the POST answered 409.
async fn create_conflicts(api: &mut Handle) {
    let (_, reply) = expect(
        api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions/orders",
    )
    .await;
    reply.json(200, &serde_json::to_value(function()).unwrap());
    let (_, reply) = expect(
        api,
        "POST",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functionruns?",
    )
    .await;
    reply.status(409, "AlreadyExists");
}

#[tokio::test]
async fn a_fire_time_claimed_elsewhere_is_not_run_twice() {
    let (store, mut api) = store();
    let id = "orders.nightly.20261129t030000z";
    let created =
        tokio::spawn(async move { store.create(run(id, RunPhase::Running), None, None).await });
    create_conflicts(&mut api).await;
    // Is it a request to adopt? No: another scheduler's run, with a status.
    let (_, reply) = expect(
        &mut api,
        "GET",
        &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functionruns/{id}"),
    )
    .await;
    reply.json(200, &listed(id, "2026-11-29T03:00:01Z", RunPhase::Running));
    drop(api); // nothing else may be asked
    assert!(
        !created
            .await
            .unwrap()
            .expect("a conflict is an answer, not an error")
    );
}

#[tokio::test]
async fn a_requested_run_is_adopted_under_its_name_exactly_once() {
    let (store, mut api) = store();
    let id = "orders.manual.00000000000000aa";
    let mut manual = run(id, RunPhase::Running);
    manual.spec.schedule = "manual".into();
    manual.spec.trigger = "manual".into();
    manual.spec.scheduled_time = None;
    let created = tokio::spawn(async move { store.create(manual, None, None).await });
    create_conflicts(&mut api).await;
    // What `faas run` created: labelled as a request, no status.
    let (_, reply) = expect(
        &mut api,
        "GET",
        &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functionruns/{id}"),
    )
    .await;
    reply.json(
        200,
        &json!({"apiVersion": "faas.dev/v1alpha1", "kind": "FunctionRun",
                "metadata": {"name": id, "namespace": "shop", "resourceVersion": "41",
                             "labels": {"faas.dev/requested": "true", "faas.dev/function": "orders"}},
                "spec": {"function": "orders", "schedule": "manual", "trigger": "manual"}}),
    );
    let (patch, reply) = expect(
        &mut api,
        "PATCH",
        &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functionruns/{id}?"),
    )
    .await;
    // Guarded by the resourceVersion read: a second adopter gets 409 and backs off.
    assert_eq!(patch["metadata"]["resourceVersion"], "41");
    assert_eq!(
        patch["metadata"]["labels"]["faas.dev/requested"],
        Value::Null
    );
    assert_eq!(patch["metadata"]["labels"]["faas.dev/schedule"], "manual");
    assert_eq!(
        patch["metadata"]["annotations"]["faas.dev/owner"],
        "controller-0"
    );
    assert_eq!(patch["metadata"]["ownerReferences"][0]["uid"], UID);
    reply.json(200, &listed(id, "2026-11-29T03:00:01Z", RunPhase::Pending));
    let (status, reply) = expect(
        &mut api,
        "PATCH",
        &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functionruns/{id}/status{APPLY}"),
    )
    .await;
    assert_eq!(status["status"]["phase"], "Running");
    reply.json(200, &listed(id, "2026-11-29T03:00:01Z", RunPhase::Running));
    drop(api);
    assert!(created.await.unwrap().expect("adopted"));
}

#[tokio::test]
async fn cursors_come_from_the_functions_status_and_errors_name_the_action() {
    let (store, mut api) = store();
    let store = std::sync::Arc::new(store);
    let reading = tokio::spawn({
        let store = std::sync::Arc::clone(&store);
        async move { store.cursors().await }
    });
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functions?",
    )
    .await;
    let mut f = function();
    f.status = Some(FunctionStatus {
        last_schedules: [
            ("nightly".to_owned(), "2026-11-29T03:00:00Z".to_owned()),
            ("hourly".to_owned(), "2026-11-29T14:00:00Z".to_owned()),
        ]
        .into(),
        schedule_timings: [("nightly".to_owned(), "0 3 * * *|UTC".to_owned())].into(),
        ..FunctionStatus::default()
    });
    reply.json(
        200,
        &json!({"apiVersion": "faas.dev/v1alpha1", "kind": "FunctionList", "metadata": {},
                "items": [serde_json::to_value(&f).unwrap()]}),
    );
    let mut cursors = reading.await.unwrap().expect("cursors");
    cursors.sort_by(|a, b| a.key.schedule.cmp(&b.key.schedule));
    assert_eq!(cursors.len(), 2);
    assert_eq!(&*cursors[0].key.schedule, "hourly");
    assert_eq!(
        cursors[0].timing, "",
        "no timing recorded: treated as changed"
    );
    assert_eq!(cursors[1].timing, "0 3 * * *|UTC");
    assert_eq!(cursors[1].last.to_string(), "2026-11-29T03:00:00Z");

    let failing = tokio::spawn({
        let store = std::sync::Arc::clone(&store);
        async move { store.get("orders.nightly.x".into()).await }
    });
    let (_, reply) = expect(
        &mut api,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/shop/functionruns/orders.nightly.x",
    )
    .await;
    reply.status(403, "Forbidden");
    let error = failing.await.unwrap().expect_err("forbidden");
    assert!(
        error.to_string().contains("reading a FunctionRun"),
        "{error}"
    );
}

#[test]
fn runs_go_to_the_functions_service_or_say_why_they_cannot() {
    let (reader, _writer) = kube::runtime::reflector::store::<Function>();
    let target = ServiceTarget::new("shop", reader, "svc.cluster.local");
    let with = |container: Option<ContainerRuntime>, wasm: Option<WasmRuntime>| {
        let mut f = function();
        f.spec.runtime = RuntimeSpec { container, wasm };
        f
    };
    let container = |mode| {
        Some(ContainerRuntime {
            image: Some("r.example.com/orders:1".into()),
            port: Some(8000),
            mode,
            ..ContainerRuntime::default()
        })
    };
    assert_eq!(
        target
            .url_of(&with(container(ContainerMode::Http), None), "/")
            .unwrap(),
        "http://fn-orders.shop.svc.cluster.local/"
    );
    assert_eq!(
        target
            .url_of(&with(container(ContainerMode::Lambda), None), "/")
            .unwrap(),
        "http://fn-orders.shop.svc.cluster.local/function/orders/"
    );
    let wasm = WasmRuntime {
        source: format!("oci://r.example.com/fn/orders@sha256:{}", "0".repeat(64)),
        ..WasmRuntime::default()
    };
    // Where the controller placed it (`status.pool`), as the gateway sends it; not placed
    // yet: the run says so instead of calling a pool that does not load it.
    let mut placed = with(None, Some(wasm));
    let (status, reason, _) = target.url_of(&placed, "/").unwrap_err();
    assert_eq!((status, reason), (503, "NotPlaced"));
    placed.status = Some(faas_api::FunctionStatus {
        pool: Some("default".into()),
        ..faas_api::FunctionStatus::default()
    });
    assert_eq!(
        target.url_of(&placed, "/").unwrap(),
        "http://pool-default.shop.svc.cluster.local/function/orders/"
    );
    let (status, reason, _) = target
        .url_of(&with(container(ContainerMode::Cgi), None), "/")
        .unwrap_err();
    assert_eq!((status, reason), (503, "CgiNotSupportedInCluster"));
}
