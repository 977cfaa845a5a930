//! The cluster run store (`FunctionRun` resources) request by request, against a
//! `tower-test` mock of the API server, and where the cluster scheduler sends a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use faas_api::{
    Function, FunctionRun, FunctionRunSpec, FunctionRunStatus, FunctionSpec, FunctionStatus,
    RunPhase,
};
use faas_controller::cron::GatewayTarget;
use faas_controller::runs::KubeRunStore;
use faas_kube_mock::{Handle, expect};
use faas_schedule::store::Prune;
use faas_schedule::{Cursor, FunctionTarget as _, JobKey, RunStore};
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
            options: Default::default(),
            ..Default::default()
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

/// The status subresource write of run `id` (server-side apply as the scheduler), which
/// must say `phase`; answered with the stored run.
async fn expect_status_write(api: &mut Handle, id: &str, phase: RunPhase) {
    let (status, reply) = expect(
        api,
        "PATCH",
        &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functionruns/{id}/status{APPLY}"),
    )
    .await;
    assert_eq!(status["status"]["phase"], phase.as_str());
    reply.json(200, &listed(id, "2026-11-29T03:00:01Z", phase));
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
            keep_for: None,
        },
        now: "2026-11-29T03:00:00Z".parse().unwrap(),
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

    expect_status_write(&mut api, id, RunPhase::Running).await;

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
    expect_status_write(&mut api, id, RunPhase::Running).await;
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

/// A stand-in for the gateway's admin listener: answers 200 to each request and hands the
/// test its head (request line and headers) as it came over the wire.
async fn gateway() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    gateway_answering("").await
}

/// [`gateway`], its answers carrying the header lines `headers` (each ending in CRLF).
async fn gateway_answering(
    headers: &'static str,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (heads, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut bytes = Vec::new();
            let mut buf = [0u8; 4096];
            while !bytes.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => bytes.extend_from_slice(&buf[..n]),
                }
            }
            let _ = heads.send(String::from_utf8_lossy(&bytes).to_lowercase());
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n{headers}\r\nok"
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    (url, received)
}

fn cron_request() -> http::Request<bytes::Bytes> {
    let mut request = http::Request::new(bytes::Bytes::from_static(b"{}"));
    *request.method_mut() = http::Method::POST;
    request
        .headers_mut()
        .insert("x-faas-trigger", http::HeaderValue::from_static("cron"));
    request
}

/// Runs go through the gateway's admin listener under the function's namespaced name, with
/// the platform token (so the gateway believes their headers) and the run's own timeout.
#[tokio::test]
async fn runs_go_through_the_gateway_with_the_platform_token_and_their_timeout() {
    let (url, mut heads) = gateway().await;
    let target = GatewayTarget::new("shop", &format!("{url}/"), Some("platform-token-1234"));
    assert_eq!(
        target.url_of("orders", "/x?y=1"),
        format!("{url}/function/orders.shop/x?y=1")
    );
    let ctx = faas_invoke::CallContext {
        timeout: Some(std::time::Duration::from_secs(90)),
        ..faas_invoke::CallContext::new("orders.nightly.20261205t030000z", "orders")
    };
    let response = target.call("orders", cron_request(), ctx).await;
    assert_eq!(response.status(), 200);
    let head = heads.recv().await.unwrap();
    assert!(
        head.starts_with("post /function/orders.shop/ http/1.1\r\n"),
        "{head}"
    );
    for header in [
        "x-faas-platform-token: platform-token-1234\r\n",
        "x-faas-timeout-ms: 90000\r\n",
        "x-faas-trigger: cron\r\n",
        // The run's id as the call's (lower-cased with the rest of the head here).
        "x-call-id: orders.nightly.20261205t030000z\r\n",
    ] {
        assert!(head.contains(header), "{header:?} missing in {head}");
    }

    // No token configured, no run timeout: neither header is made up.
    let target = GatewayTarget::new("shop", &url, None);
    let ctx = faas_invoke::CallContext::new("orders.manual.x", "orders");
    assert_eq!(
        target.call("orders", cron_request(), ctx).await.status(),
        200
    );
    let head = heads.recv().await.unwrap();
    assert!(
        !head.contains("x-faas-platform-token") && !head.contains("x-faas-timeout-ms"),
        "{head}"
    );
}

#[tokio::test]
async fn a_gateway_that_is_not_there_is_a_503_that_says_so() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = GatewayTarget::new("shop", &format!("http://127.0.0.1:{port}"), None);
    let ctx = faas_invoke::CallContext::new("orders.manual.x", "orders");
    let response = target.call("orders", cron_request(), ctx).await;
    assert_eq!(response.status(), 503);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["reason"], "GatewayUnavailable");
}

/// A retry or a resumed run writes the attempt under way and its new owner on the record (a
/// merge patch: nothing else of it changes), then its status; a first attempt only its status.
#[tokio::test]
async fn a_later_attempt_is_written_on_the_record_and_its_status() {
    let (store, mut api) = store();
    let id = "orders.nightly.20261129t030000z";
    let mut resumed = run(id, RunPhase::Running);
    resumed.spec.attempt = 2;
    resumed
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("faas.dev/owner".into(), "controller-1".into());
    let store = std::sync::Arc::new(store);
    let writing = tokio::spawn({
        let store = std::sync::Arc::clone(&store);
        async move { store.update(resumed, None).await }
    });
    let (patch, reply) = expect(
        &mut api,
        "PATCH",
        &format!("/apis/faas.dev/v1alpha1/namespaces/shop/functionruns/{id}?"),
    )
    .await;
    assert_eq!(
        patch,
        json!({"spec": {"attempt": 2},
               "metadata": {"annotations": {"faas.dev/owner": "controller-1"}}})
    );
    reply.json(200, &listed(id, "2026-11-29T03:00:01Z", RunPhase::Running));
    expect_status_write(&mut api, id, RunPhase::Running).await;
    writing.await.unwrap().expect("written");

    // A first attempt: its status alone.
    let writing = tokio::spawn({
        let store = std::sync::Arc::clone(&store);
        async move { store.update(run(id, RunPhase::Succeeded), None).await }
    });
    expect_status_write(&mut api, id, RunPhase::Succeeded).await;
    writing.await.unwrap().expect("written");
}

/// A container function's run: the gateway names the pod that answered, the controller
/// checks that it is one of the function's pods (a list by name and the function's labels:
/// the role it has) and reads that pod's function container's log from the call on, with
/// timestamps, keeping the lines of the run. A pod that is not the function's is not read.
#[tokio::test]
async fn a_container_functions_run_tail_is_read_from_the_log_of_the_pod_that_answered() {
    use faas_controller::run_log::PodLogs;
    let (url, _heads) = gateway_answering("x-faas-pod: fn-report-7c9\r\n").await;
    for of_the_function in [true, false] {
        let (client, mut api) = faas_kube_mock::client("shop");
        let target = GatewayTarget::new("shop", &url, Some("platform-token-1234"))
            .with_pod_logs(PodLogs::new(client));
        let sink = faas_invoke::LogTailSink::default();
        let ctx = faas_invoke::CallContext {
            log_tail: Some(sink.clone()),
            ..faas_invoke::CallContext::new("report.nightly.20261206t030000z", "report")
        };
        let before = jiff::Timestamp::now();
        let call = tokio::spawn(async move {
            let response = target.call("report", cron_request(), ctx).await;
            let status = response.status();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, body)
        });
        let (request, reply) = faas_kube_mock::next(&mut api).await;
        let uri = request.uri().to_string();
        assert!(uri.starts_with("/api/v1/namespaces/shop/pods?"), "{uri}");
        for part in [
            "fieldSelector=metadata.name%3Dfn-report-7c9",
            "labelSelector=faas.dev%2Ffunction%3Dreport%2Capp.kubernetes.io%2Fmanaged-by%3Dfaas-controller",
        ] {
            assert!(uri.contains(part), "{part} in {uri}");
        }
        let items = if of_the_function {
            vec![json!({"metadata": {"name": "fn-report-7c9", "namespace": "shop"}})]
        } else {
            vec![]
        };
        reply.json(
            200,
            &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}),
        );
        if of_the_function {
            let (request, reply) = faas_kube_mock::next(&mut api).await;
            let uri = request.uri().to_string();
            assert!(
                uri.starts_with(
                    "/api/v1/namespaces/shop/pods/fn-report-7c9/log?&container=function&"
                ),
                "{uri}"
            );
            assert!(
                uri.contains("timestamps=true") && uri.contains("tailLines="),
                "{uri}"
            );
            // From a little before the call (clocks differ), to the second.
            let since = uri
                .split('&')
                .find_map(|p| p.strip_prefix("sinceTime="))
                .unwrap()
                .replace("%3A", ":");
            let since: jiff::Timestamp = since.parse().unwrap();
            assert!(
                since <= before
                    && before.duration_since(since) <= jiff::SignedDuration::from_secs(4),
                "{since}"
            );
            let now = jiff::Timestamp::now();
            let long_before = now - jiff::SignedDuration::from_secs(60);
            reply.bytes(
                200,
                format!(
                    "{long_before} from another call\n{now} report started\n{now} report done\n"
                )
                .into_bytes(),
            );
        }
        let (status, body) = call.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, "ok", "the answer is passed on whole");
        let tail = sink.take();
        if of_the_function {
            assert_eq!(tail.as_deref(), Some("report started\nreport done\n"));
        } else {
            assert_eq!(
                tail, None,
                "no log read from a pod that is not the function's"
            );
        }
    }
}
