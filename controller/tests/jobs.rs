//! The runs of `mode: job` functions against a `tower-test` mock of the API server: every
//! request the controller makes to start a run's Job, follow it, read its pod's exit code and
//! log, adopt an earlier attempt's Job, and delete the Job of a dropped run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_api::{ContainerMode, ContainerRuntime, Function, FunctionSpec, RuntimeSpec};
use faas_controller::jobs::JobTarget;
use faas_controller::render::ClusterDefaults;
use faas_controller::render::job::{job_name, run_label};
use faas_invoke::{CallContext, FunctionTarget, LogTailSink};
use faas_kube_mock::{Handle, expect};
use http_body_util::BodyExt;
use kube::runtime::watcher;
use serde_json::{Value, json};

const RUN: &str = "report.nightly.20261207t030000z";

fn report() -> Function {
    let mut f = Function::new(
        "report",
        FunctionSpec {
            runtime: RuntimeSpec {
                container: Some(ContainerRuntime {
                    image: Some("registry.example.com/report:3".into()),
                    mode: ContainerMode::Job,
                    ..ContainerRuntime::default()
                }),
                ..RuntimeSpec::default()
            },
            timeout: Some("10m".into()),
            ..FunctionSpec::default()
        },
    );
    f.metadata.namespace = Some("finance".into());
    f
}

fn target() -> (JobTarget, Handle) {
    let (client, handle) = faas_kube_mock::client("finance");
    let (store, mut writer) = kube::runtime::reflector::store();
    writer.apply_watcher_event(&watcher::Event::Apply(report()));
    let target = JobTarget::new(
        client,
        "finance",
        store,
        Arc::new(ClusterDefaults::default()),
    )
    .with_poll(Duration::from_millis(10));
    (target, handle)
}

fn request(attempt: u32) -> http::Request<Bytes> {
    http::Request::builder()
        .method("POST")
        .uri("/")
        .header("x-faas-run-id", RUN)
        .header("x-faas-schedule", "nightly")
        .header("x-faas-trigger", "cron")
        .header("x-faas-attempt", attempt.to_string())
        .header("x-faas-options", r#"{"days":7}"#)
        .body(Bytes::from_static(b"{\"scope\":\"yesterday\"}"))
        .unwrap()
}

fn ctx(sink: &LogTailSink) -> CallContext {
    CallContext {
        timeout: Some(Duration::from_secs(90)),
        log_tail: Some(sink.clone()),
        as_run: true,
        ..CallContext::new(RUN, "report")
    }
}

fn jobs_path() -> String {
    "/apis/batch/v1/namespaces/finance/jobs".to_owned()
}

fn job_with(name: &str, attempt: u32, conditions: Value) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "finance",
                     "labels": {"faas.dev/run": run_label(RUN), "faas.dev/attempt": attempt.to_string()}},
        "status": {"conditions": conditions},
    })
}

/// The run record read for the Job's owner.
async fn expect_run_record(api: &mut Handle) {
    let (_, reply) = expect(
        api,
        "GET",
        &format!("/apis/faas.dev/v1alpha1/namespaces/finance/functionruns/{RUN}"),
    )
    .await;
    reply.json(
        200,
        &json!({"apiVersion": "faas.dev/v1alpha1", "kind": "FunctionRun",
                "metadata": {"name": RUN, "namespace": "finance", "uid": "run-uid"},
                "spec": {"function": "report", "schedule": "nightly", "trigger": "cron", "attempt": 1}}),
    );
}

async fn expect_list(api: &mut Handle, items: Value) {
    let (_, reply) = expect(
        api,
        "GET",
        &format!(
            "{}?&labelSelector=faas.dev%2Frun%3D{}",
            jobs_path(),
            run_label(RUN)
        ),
    )
    .await;
    reply.json(
        200,
        &json!({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": items}),
    );
}

#[tokio::test]
async fn a_run_is_a_job_followed_to_its_exit_code_and_log() {
    let (target, mut api) = target();
    let sink = LogTailSink::default();
    let call = tokio::spawn({
        let sink = sink.clone();
        async move {
            let response = target.call("report", request(1), ctx(&sink)).await;
            let (parts, body) = response.into_parts();
            (parts, body.collect().await.unwrap().to_bytes())
        }
    });
    expect_run_record(&mut api).await;
    expect_list(&mut api, json!([])).await;
    let name = job_name(RUN, 1);
    let (created, reply) = expect(&mut api, "POST", &format!("{}?", jobs_path())).await;
    assert_eq!(created["metadata"]["name"], name.as_str());
    assert_eq!(
        created["metadata"]["ownerReferences"][0]["kind"],
        "FunctionRun"
    );
    assert_eq!(created["metadata"]["ownerReferences"][0]["uid"], "run-uid");
    assert_eq!(
        created["spec"]["activeDeadlineSeconds"], 90,
        "the run's timeout"
    );
    let env = &created["spec"]["template"]["spec"]["containers"][0]["env"];
    let var = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(var("FAAS_OPTION_DAYS"), Some(json!("7")));
    assert_eq!(var("FAAS_ATTEMPT"), Some(json!("1")));
    assert_eq!(
        var("FAAS_PAYLOAD"),
        Some(json!("{\"scope\":\"yesterday\"}"))
    );
    reply.json(201, &created);

    // Running, then failed with the container's exit code.
    let (_, reply) = expect(&mut api, "GET", &format!("{}/{name}", jobs_path())).await;
    reply.json(200, &job_with(&name, 1, json!([])));
    let (_, reply) = expect(&mut api, "GET", &format!("{}/{name}", jobs_path())).await;
    reply.json(
        200,
        &job_with(
            &name,
            1,
            json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit"}]),
        ),
    );
    let (_, reply) = expect(
        &mut api,
        "GET",
        &format!(
            "/api/v1/namespaces/finance/pods?&labelSelector=batch.kubernetes.io%2Fjob-name%3D{name}"
        ),
    )
    .await;
    reply.json(
        200,
        &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [{
            "metadata": {"name": format!("{name}-abcde"), "namespace": "finance"},
            "status": {"containerStatuses": [{"name": "function", "image": "x", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]},
        }]}),
    );
    let (_, reply) = expect(
        &mut api,
        "GET",
        &format!(
            "/api/v1/namespaces/finance/pods/{name}-abcde/log?&container=function&tailLines=2000"
        ),
    )
    .await;
    reply.bytes(200, b"starting\nno data for yesterday\n".to_vec());

    let (parts, body) = call.await.unwrap();
    assert_eq!(parts.status, 500);
    assert_eq!(parts.headers["x-faas-exit-code"], "3");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["reason"], "JobFailed");
    assert_eq!(
        sink.take().as_deref(),
        Some("starting\nno data for yesterday\n")
    );
}

#[tokio::test]
async fn a_resumed_run_follows_the_job_its_predecessor_started() {
    let (target, mut api) = target();
    let sink = LogTailSink::default();
    let call =
        tokio::spawn(async move { target.call("report", request(2), ctx(&sink)).await.status() });
    expect_run_record(&mut api).await;
    let earlier = job_name(RUN, 1);
    expect_list(&mut api, json!([job_with(&earlier, 1, json!([]))])).await;
    // No POST: the next request reads the earlier attempt's Job.
    let (_, reply) = expect(&mut api, "GET", &format!("{}/{earlier}", jobs_path())).await;
    reply.json(
        200,
        &job_with(&earlier, 1, json!([{"type": "Complete", "status": "True"}])),
    );
    let (_, reply) = expect(
        &mut api,
        "GET",
        &format!(
            "/api/v1/namespaces/finance/pods?&labelSelector=batch.kubernetes.io%2Fjob-name%3D{earlier}"
        ),
    )
    .await;
    reply.json(
        200,
        &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
    );
    assert_eq!(call.await.unwrap(), 200);
}

#[tokio::test]
async fn a_dropped_run_deletes_its_job() {
    let (target, mut api) = target();
    let sink = LogTailSink::default();
    let call = tokio::spawn(async move {
        let _ = target.call("report", request(1), ctx(&sink)).await;
    });
    expect_run_record(&mut api).await;
    expect_list(&mut api, json!([])).await;
    let name = job_name(RUN, 1);
    let (created, reply) = expect(&mut api, "POST", &format!("{}?", jobs_path())).await;
    reply.json(201, &created);
    let (_, reply) = expect(&mut api, "GET", &format!("{}/{name}", jobs_path())).await;
    reply.json(200, &job_with(&name, 1, json!([])));
    // The scheduler drops the attempt (a Replace policy): the Job goes, pods with it.
    call.abort();
    let (body, reply) = expect(&mut api, "DELETE", &format!("{}/{name}?", jobs_path())).await;
    assert_eq!(body["propagationPolicy"], "Background", "{body}");
    reply.json(200, &job_with(&name, 1, json!([])));
}

#[tokio::test]
async fn a_spot_interruption_is_an_interrupted_run() {
    let (target, mut api) = target();
    let sink = LogTailSink::default();
    let call = tokio::spawn(async move {
        let response = target.call("report", request(1), ctx(&sink)).await;
        (
            response.status(),
            response
                .headers()
                .get("x-faas-interrupted")
                .map(|v| v.to_str().unwrap().to_owned()),
        )
    });
    expect_run_record(&mut api).await;
    expect_list(&mut api, json!([])).await;
    let name = job_name(RUN, 1);
    let (created, reply) = expect(&mut api, "POST", &format!("{}?", jobs_path())).await;
    reply.json(201, &created);
    let (_, reply) = expect(&mut api, "GET", &format!("{}/{name}", jobs_path())).await;
    reply.json(
        200,
        &job_with(
            &name,
            1,
            json!([{"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
                    "message": "Pod finance/x has condition DisruptionTarget matching FailJob rule at index 0"}]),
        ),
    );
    let (_, reply) = expect(
        &mut api,
        "GET",
        &format!(
            "/api/v1/namespaces/finance/pods?&labelSelector=batch.kubernetes.io%2Fjob-name%3D{name}"
        ),
    )
    .await;
    reply.json(
        200,
        &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
    );
    let (status, why) = call.await.unwrap();
    assert_eq!(status, 503);
    assert!(why.unwrap_or_default().contains("DisruptionTarget"));
}

#[tokio::test]
async fn a_run_cut_off_by_the_controllers_shutdown_leaves_its_job_running() {
    let (target, mut api) = target();
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let target = target.with_stopping(Arc::clone(&stopping));
    let sink = LogTailSink::default();
    let call = tokio::spawn(async move {
        let _ = target.call("report", request(1), ctx(&sink)).await;
    });
    expect_run_record(&mut api).await;
    expect_list(&mut api, json!([])).await;
    let name = job_name(RUN, 1);
    let (created, reply) = expect(&mut api, "POST", &format!("{}?", jobs_path())).await;
    reply.json(201, &created);
    let (_, reply) = expect(&mut api, "GET", &format!("{}/{name}", jobs_path())).await;
    reply.json(200, &job_with(&name, 1, json!([])));
    stopping.store(true, std::sync::atomic::Ordering::Release);
    call.abort();
    let _ = call.await;
    // No DELETE (a look at the Job already on its way when the call was dropped may come).
    while let Ok(Some((request, _))) =
        tokio::time::timeout(Duration::from_millis(300), api.next_request()).await
    {
        assert_ne!(
            request.method(),
            "DELETE",
            "the Job was deleted at shutdown"
        );
    }
}
