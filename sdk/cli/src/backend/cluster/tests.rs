//! The exact API requests of the cluster commands, against `tower-test`'s mock API server
//! (kube-rs's documented approach), plus a real OCI registry on loopback for pushes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use faas_kube_mock::{Handle, Reply, expect};
use serde_json::{Value, json};

use crate::backend::{Backend, DeployOptions, Deployed, LogOptions, RunRequest};
use crate::target::Cluster;

fn cluster() -> (Cluster, Handle) {
    let (client, handle) = faas_kube_mock::client("team");
    (
        Cluster {
            client,
            namespace: "team".into(),
            context: "test".into(),
        },
        handle,
    )
}

const APPLY_FN: &str =
    "/apis/faas.dev/v1alpha1/namespaces/team/functions/hello?&force=true&fieldManager=faas-cli";
const GET_FN: &str = "/apis/faas.dev/v1alpha1/namespaces/team/functions/hello";

fn manifest(dir: &std::path::Path, wasm: &[u8]) -> std::path::PathBuf {
    std::fs::write(dir.join("hello.wasm"), wasm).unwrap();
    let file = dir.join("function.yaml");
    std::fs::write(
        &file,
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: hello}\nspec:\n  runtime:\n    wasm:\n      source: hello.wasm\n      build: {cargo: {package: hello}}\n  http: {path: /hello, public: true}\n",
    )
    .unwrap();
    file
}

/// What `faas deploy -f FILE` hands the deploy.
fn load(file: &std::path::Path) -> crate::flags::Manifests {
    crate::flags::manifests(Some(file), None, &Default::default(), false).unwrap()
}

/// Deploy options; `replace` is on so that these tests pin the placement, apply and wait
/// requests (the replacement check has its own test).
fn options(registry: Option<String>, timeout: Duration) -> DeployOptions {
    DeployOptions {
        build: false,
        registry,
        replace: true,
        wait: true,
        timeout,
        poll: Duration::from_millis(10),
    }
}

/// What `faas deploy` does with the manifests: the cluster's checks, then each function.
async fn deploy(
    cluster: &Cluster,
    manifests: &crate::flags::Manifests,
    options: &DeployOptions,
) -> anyhow::Result<Vec<Deployed>> {
    cluster.check(manifests)?;
    let mut deployed = Vec::new();
    for function in manifests.functions.clone() {
        deployed.push(
            cluster
                .deploy(function, &manifests.base, options)
                .await?
                .value,
        );
    }
    Ok(deployed)
}

/// The Function as the API server returns it, with `status`.
fn stored(applied: &Value, generation: i64, status: Value) -> Value {
    let mut object = applied.clone();
    object["metadata"]["uid"] = json!("uid-1");
    object["metadata"]["generation"] = json!(generation);
    object["status"] = status;
    object
}

fn ready(generation: i64, state: &str, reason: &str) -> Value {
    json!({"observedGeneration": generation, "url": "https://fn.example.com/hello",
           "readyReplicas": 2,
           "conditions": [{"type": "Ready", "status": state, "reason": reason, "message": "details"}]})
}

#[tokio::test]
async fn a_small_module_goes_into_a_configmap_owned_by_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str("(module)").unwrap();
    let file = manifest(dir.path(), &wasm);
    let (cluster, mut handle) = cluster();
    let task = tokio::spawn(async move {
        deploy(
            &cluster,
            &load(&file),
            &options(None, Duration::from_secs(30)),
        )
        .await
    });

    let (map, reply) = expect(
        &mut handle,
        "PATCH",
        "/api/v1/namespaces/team/configmaps/fn-hello-wasm?&force=true&fieldManager=faas-cli",
    )
    .await;
    use base64::Engine as _;
    assert_eq!(
        map["binaryData"]["hello.wasm"],
        json!(base64::engine::general_purpose::STANDARD.encode(&wasm))
    );
    assert_eq!(map["metadata"]["labels"]["faas.dev/function"], "hello");
    reply.json(200, &map);

    let (function, reply) = expect(&mut handle, "PATCH", APPLY_FN).await;
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&wasm))
    };
    assert_eq!(
        function["spec"]["runtime"]["wasm"],
        json!({"source": "configmap://fn-hello-wasm/hello.wasm", "sha256": sha}),
        "pinned, and without the local build step"
    );
    assert_eq!(function["metadata"]["namespace"], "team");
    reply.json(200, &stored(&function, 1, Value::Null));

    let (owner, reply) = expect(
        &mut handle,
        "PATCH",
        "/api/v1/namespaces/team/configmaps/fn-hello-wasm?",
    )
    .await;
    assert_eq!(
        owner["metadata"]["ownerReferences"][0],
        json!({"apiVersion": "faas.dev/v1alpha1", "kind": "Function", "name": "hello", "uid": "uid-1"})
    );
    reply.json(200, &map);

    // Not yet seen, then seen but not ready, then ready.
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(200, &stored(&function, 1, Value::Null));
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(
        200,
        &stored(&function, 1, ready(1, "False", "PoolNotLoaded")),
    );
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(200, &stored(&function, 1, ready(1, "True", "Ready")));
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn with_a_registry_the_module_is_pushed_and_the_spec_pinned_by_digest() {
    let server = faas_e2e::registry::RegistryServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let file = manifest(dir.path(), &wasm);
    let (cluster, mut handle) = cluster();
    let base = format!("{}/functions", server.host);
    let task = tokio::spawn(async move {
        deploy(
            &cluster,
            &load(&file),
            &options(Some(base), Duration::from_secs(30)),
        )
        .await
    });
    let (function, reply) = expect(&mut handle, "PATCH", APPLY_FN).await;
    let source = function["spec"]["runtime"]["wasm"]["source"]
        .as_str()
        .unwrap()
        .to_owned();
    let sha = function["spec"]["runtime"]["wasm"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        source.starts_with(&format!(
            "oci://{}/functions/hello:sha256-{}@sha256:",
            server.host,
            &sha[..16]
        )),
        "{source}"
    );
    reply.json(200, &stored(&function, 3, Value::Null));
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(200, &stored(&function, 3, ready(3, "True", "Ready")));
    task.await.unwrap().unwrap();

    // What the applied spec names is what a pool pod gets, verified.
    let reference = faas_oci::Reference::parse(&source).unwrap();
    let pulled = faas_oci::Registry::new(None, Vec::new())
        .unwrap()
        .pull_wasm(&reference, Some(&sha))
        .await
        .unwrap();
    assert_eq!(pulled.wasm.as_ref(), wasm.as_slice());
}

#[tokio::test]
async fn a_function_that_never_gets_ready_fails_with_its_reason_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("function.yaml");
    std::fs::write(
        &file,
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: hello}\nspec:\n  runtime:\n    wasm: {source: oci://r.example.com/fn/hello:1@sha256:abababababababababababababababababababababababababababababababab}\n",
    )
    .unwrap();
    let (cluster, mut handle) = cluster();
    let task = tokio::spawn(async move {
        deploy(
            &cluster,
            &load(&file),
            &options(None, Duration::from_millis(50)),
        )
        .await
    });
    // Already in a registry: applied as is, no push.
    let (function, reply) = expect(&mut handle, "PATCH", APPLY_FN).await;
    assert_eq!(
        function["spec"]["runtime"]["wasm"]["source"],
        "oci://r.example.com/fn/hello:1@sha256:abababababababababababababababababababababababababababababababab"
    );
    reply.json(200, &stored(&function, 2, Value::Null));
    // Polled until the timeout, then the Function's Events are read for the error.
    let events = "/api/v1/namespaces/team/events?&fieldSelector=involvedObject.kind%3DFunction%2CinvolvedObject.name%3Dhello";
    loop {
        let (request, reply) = faas_kube_mock::next(&mut handle).await;
        let uri = request.uri().to_string();
        if uri == GET_FN {
            reply.json(
                200,
                &stored(&function, 2, ready(2, "False", "ArtifactNotFound")),
            );
            continue;
        }
        assert_eq!(uri, events);
        reply.json(
            200,
            &json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [
                {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Function", "name": "hello"},
                 "type": "Warning", "reason": "PullFailed", "message": "manifest unknown",
                 "lastTimestamp": "2026-11-29T10:00:00Z"}]}),
        );
        break;
    }
    let err = task.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("not Ready after"), "{err}");
    assert!(err.contains("ArtifactNotFound: details"), "{err}");
    assert!(
        err.contains("Warning PullFailed: manifest unknown"),
        "{err}"
    );
}

/// The error of deploying `manifest` (written into `dir`), which must fail.
async fn refused(cluster: &Cluster, dir: &std::path::Path, manifest: &str) -> String {
    let file = dir.join("refused.yaml");
    std::fs::write(&file, manifest).unwrap();
    deploy(
        cluster,
        &load(&file),
        &options(None, Duration::from_secs(1)),
    )
    .await
    .unwrap_err()
    .to_string()
}

#[tokio::test]
async fn refusals_name_the_cause_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    // Too large for a ConfigMap, no registry.
    let mut big = wat::parse_str("(module)").unwrap();
    big.resize(901 * 1024, 0);
    let file = manifest(dir.path(), &big);
    let (cluster, mut handle) = cluster();
    let err = deploy(
        &cluster,
        &load(&file),
        &options(None, Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("too large for a ConfigMap (901 KiB > 900 KiB)"),
        "{text}"
    );
    assert!(text.contains("--registry"), "{text}");

    // The manifest's namespace is not the target one.
    let err = refused(
        &cluster,
        dir.path(),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: hello, namespace: prod}\nspec:\n  runtime:\n    wasm: {source: oci://r.example.com/a:1}\n",
    )
    .await;
    assert!(err.contains("pass -n prod"), "{err}");
    // A container function without an image.
    let err = refused(
        &cluster,
        dir.path(),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: web}\nspec:\n  runtime:\n    container: {command: [python3, server.py], port: 8080}\n",
    )
    .await;
    assert!(
        err.contains("spec.runtime.container.image: required on a cluster"),
        "{err}"
    );
    // Host directories (a pool pod's service-account token) and unpinned artifacts: the
    // cluster profile refuses them before anything is sent.
    let err = refused(
        &cluster,
        dir.path(),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: peek}\nspec:\n  runtime:\n    wasm:\n      source: configmap://fn-peek/a.wasm\n      dirs: [{hostPath: /var/run/secrets, guestPath: /s}]\n",
    )
    .await;
    assert!(err.contains("spec.runtime.wasm.dirs[0].hostPath"), "{err}");
    let err = refused(
        &cluster,
        dir.path(),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: floating}\nspec:\n  runtime:\n    wasm: {source: oci://r.example.com/fn/a:latest}\n",
    )
    .await;
    assert!(err.contains("must be pinned by digest"), "{err}");
    drop(cluster);
    assert!(
        handle.next_request().await.is_none(),
        "nothing may reach the API server"
    );
}

#[tokio::test]
async fn api_refusals_say_what_to_do() {
    let (cluster, mut handle) = cluster();
    let task = tokio::spawn({
        let cluster = cluster.clone();
        async move { cluster.list().await }
    });
    let (_, reply) = expect(
        &mut handle,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/team/functions?",
    )
    .await;
    reply.failure(
        403,
        "Forbidden",
        "functions.faas.dev is forbidden: User \"dev\" cannot list resource \"functions\" in API group \"faas.dev\" in the namespace \"team\"",
    );
    let err = task.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("cannot list resource \"functions\""), "{err}");
    assert!(err.contains("RBAC"), "{err}");

    let task = tokio::spawn({
        let cluster = cluster.clone();
        async move { cluster.delete("ghost").await }
    });
    let (_, reply) = expect(
        &mut handle,
        "DELETE",
        "/apis/faas.dev/v1alpha1/namespaces/team/functions/ghost?",
    )
    .await;
    reply.failure(404, "NotFound", "functions.faas.dev \"ghost\" not found");
    let err = task.await.unwrap().unwrap_err().to_string();
    assert!(
        err.contains("Function ghost not found in namespace team"),
        "{err}"
    );
}

#[tokio::test]
async fn invoke_goes_through_the_public_url() {
    // The "gateway" behind the URL is a real local platform serving the hello example.
    let dir = tempfile::tempdir().unwrap();
    faas_e2e::write_function(dir.path(), "hello", &faas_e2e::guest("hello"), "");
    let platform = faas_e2e::Faas::start(dir.path());
    let url = platform.url("/function/hello");
    platform
        .eventually("hello is served", || async {
            faas_e2e::get(&url).await.status == 200
        })
        .await;

    let (cluster, mut handle) = cluster();
    let task = tokio::spawn(async move {
        let call = crate::commands::invoke::Call::parse(None, &[], None, "/x?y=1", false).unwrap();
        cluster.call("hello", &call).await
    });
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(
        200,
        &json!({"apiVersion": "faas.dev/v1alpha1", "kind": "Function",
                "metadata": {"name": "hello", "namespace": "team"},
                "spec": {"runtime": {"wasm": {"source": "oci://r.example.com/a:1"}}},
                "status": {"url": url}}),
    );
    let answer = task.await.unwrap().unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&answer.body),
        "Hello from faas: GET /x?y=1\n"
    );
}

/// An event delivered as the platform delivers it carries the platform's headers, which the
/// gateway's public listener removes: it goes through a port-forward (RBAC) instead of the
/// function's URL, and cannot be queued at all.
#[tokio::test]
async fn an_event_goes_around_the_public_url() {
    let function = json!({"apiVersion": "faas.dev/v1alpha1", "kind": "Function",
            "metadata": {"name": "hello", "namespace": "team"},
            "spec": {"runtime": {"wasm": {"source": "oci://r.example.com/a:1"}}},
            "status": {"url": "http://127.0.0.1:9/function/hello", "pool": "default"}});
    let sqs_event = |asynchronous: bool| {
        let mut call = crate::commands::invoke::Call::parse(
            Some(r#"{"Records": [{"eventSource": "aws:sqs", "body": "x"}]}"#.into()),
            &[],
            None,
            "/",
            false,
        )
        .unwrap();
        call.deliver_events();
        call.asynchronous = asynchronous;
        call
    };

    let (target, mut handle) = cluster();
    let call = sqs_event(false);
    let task = tokio::spawn(async move { target.call("hello", &call).await });
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(200, &function);
    // Not the URL (nothing listens at 127.0.0.1:9): the pool's pods, for a port-forward.
    let (request, reply) = faas_kube_mock::next(&mut handle).await;
    let uri = request.uri().to_string();
    assert!(
        uri.starts_with("/api/v1/namespaces/team/pods?")
            && uri.contains("faas.dev%2Fpool%3Ddefault"),
        "{uri}"
    );
    reply.json(
        200,
        &json!({"apiVersion": "v1", "kind": "PodList", "items": []}),
    );
    let Err(err) = task.await.unwrap() else {
        panic!("called through the URL")
    };
    let err = err.to_string();
    assert!(err.contains("no ready pod to port-forward to"), "{err}");

    let (target, mut handle) = cluster();
    let call = sqs_event(true);
    let task = tokio::spawn(async move { target.call("hello", &call).await });
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(200, &function);
    let Err(err) = task.await.unwrap() else {
        panic!("queued an event")
    };
    let err = err.to_string();
    assert!(err.contains("cannot be queued"), "{err}");
}

#[test]
fn port_forwards_go_to_the_port_that_routes_the_function() {
    let pod =
        |value: Value| serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(value).unwrap();
    let pool = pod(json!({"spec": {"containers": [{"name": "faas-runtime",
        "ports": [{"name": "http", "containerPort": 8080}]}]}}));
    assert_eq!(
        super::invoke::entry_of(&pool, "hello", "/x"),
        Some((8080, "/function/hello/x".into()))
    );
    let sidecar = pod(json!({"spec": {
        "initContainers": [{"name": "faas-runtime", "ports": [{"name": "sidecar", "containerPort": 8080}]}],
        "containers": [{"name": "function"}]}}));
    assert_eq!(
        super::invoke::entry_of(&sidecar, "orders", ""),
        Some((8080, "/function/orders".into()))
    );
    let plain = pod(json!({"spec": {"containers": [{"name": "function",
        "ports": [{"name": "http", "containerPort": 9000}]}]}}));
    assert_eq!(
        super::invoke::entry_of(&plain, "web", ""),
        Some((9000, "/".into()))
    );
    let none = pod(json!({"spec": {"containers": [{"name": "function"}]}}));
    assert_eq!(super::invoke::entry_of(&none, "web", ""), None);
}

fn asked(schedule: &'static str) -> RunRequest<'static> {
    RunRequest {
        function: "hello",
        schedule: Some(schedule),
        payload: Some("{\"day\": 1}".into()),
        options: Vec::new(),
        detach: false,
    }
}

const TIMING: super::run::Timing = super::run::Timing {
    pickup: Duration::from_millis(100),
    poll: Duration::from_millis(5),
};

fn scheduled_function() -> Value {
    json!({"apiVersion": "faas.dev/v1alpha1", "kind": "Function",
           "metadata": {"name": "hello", "namespace": "team"},
           "spec": {"runtime": {"wasm": {"source": "oci://r.example.com/a:1"}},
                    "schedules": [{"name": "nightly", "cron": "0 3 * * *"}]}})
}

const RUNS: &str = "/apis/faas.dev/v1alpha1/namespaces/team/functionruns";

#[tokio::test]
async fn a_run_is_requested_as_a_functionrun_and_followed_to_its_end() {
    let (cluster, mut handle) = cluster();
    let task =
        tokio::spawn(async move { super::run::run(&cluster, asked("nightly"), &TIMING).await });
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(200, &scheduled_function());
    let (request, reply) = expect(&mut handle, "POST", &format!("{RUNS}?")).await;
    let id = request["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(id.starts_with("hello.nightly.run."), "{id}");
    assert_eq!(request["metadata"]["labels"]["faas.dev/requested"], "true");
    assert_eq!(
        request["metadata"]["labels"]["faas.dev/schedule"],
        "nightly"
    );
    use base64::Engine as _;
    assert_eq!(
        request["metadata"]["annotations"]["faas.dev/payload"],
        json!(base64::engine::general_purpose::STANDARD.encode("{\"day\": 1}"))
    );
    assert_eq!(
        request["spec"],
        json!({"function": "hello", "schedule": "nightly", "trigger": "manual", "attempt": 1})
    );
    assert!(request.get("status").is_none());
    reply.json(201, &request);

    let with_status = |phase: &str| {
        let mut run = request.clone();
        run["status"] = json!({"phase": phase, "httpStatus": 200, "output": "done"});
        run
    };
    let path = format!("{RUNS}/{id}");
    let (_, reply) = expect(&mut handle, "GET", &path).await;
    reply.json(200, &request); // not picked up yet
    let (_, reply) = expect(&mut handle, "GET", &path).await;
    reply.json(200, &with_status("Running"));
    let (_, reply) = expect(&mut handle, "GET", &path).await;
    reply.json(200, &with_status("Succeeded"));
    let run = task.await.unwrap().unwrap();
    assert_eq!(run.metadata.name.as_deref(), Some(id.as_str()));
    assert_eq!(run.status.unwrap().output.as_deref(), Some("done"));
}

#[tokio::test]
async fn a_run_nobody_picks_up_or_that_fails_says_so() {
    let (cluster, mut handle) = cluster();
    let task = tokio::spawn({
        let cluster = cluster.clone();
        async move { super::run::run(&cluster, asked("nightly"), &TIMING).await }
    });
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(200, &scheduled_function());
    let (request, reply) = expect(&mut handle, "POST", &format!("{RUNS}?")).await;
    reply.json(201, &request);
    let id = request["metadata"]["name"].as_str().unwrap().to_owned();
    let err = loop {
        tokio::select! {
            next = handle.next_request() => {
                let (_, send) = next.unwrap();
                Reply(send).json(200, &request);
            }
            done = async { while !task.is_finished() { tokio::time::sleep(Duration::from_millis(5)).await } } => {
                let () = done;
                break task.await.unwrap().unwrap_err().to_string();
            }
        }
    };
    assert!(
        err.contains(&format!("no scheduler took run {id}")),
        "{err}"
    );
    assert!(err.contains("faas-controller"), "{err}");

    // A run that fails: followed to its end like a success, and given back as failed, with
    // the function's answer (`faas run` then exits non-zero naming the phase).
    let task = tokio::spawn({
        let cluster = cluster.clone();
        async move { super::run::run(&cluster, asked("nightly"), &TIMING).await }
    });
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(200, &scheduled_function());
    let (request, reply) = expect(&mut handle, "POST", &format!("{RUNS}?")).await;
    reply.json(201, &request);
    let id = request["metadata"]["name"].as_str().unwrap().to_owned();
    let mut failed = request.clone();
    failed["status"] = json!({"phase": "Failed", "httpStatus": 500, "error": "boom"});
    let (_, reply) = expect(&mut handle, "GET", &format!("{RUNS}/{id}")).await;
    reply.json(200, &failed);
    let run = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("no more polling once the run ended")
        .unwrap()
        .unwrap();
    let status = run.status.unwrap();
    assert_eq!(status.phase, faas_api::RunPhase::Failed);
    assert_eq!(status.http_status, Some(500));

    // An unknown schedule is refused before anything is created.
    let task =
        tokio::spawn(async move { super::run::run(&cluster, asked("weekly"), &TIMING).await });
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(200, &scheduled_function());
    let err = task.await.unwrap().unwrap_err().to_string();
    assert!(
        err.contains("no schedule named \"weekly\" (it has: nightly)"),
        "{err}"
    );
}

#[tokio::test]
async fn logs_of_a_pooled_function_are_its_own_lines_from_every_pool_pod() {
    let (cluster, mut handle) = cluster();
    let task = tokio::spawn(async move {
        let mut lines = Vec::new();
        let options = LogOptions {
            follow: false,
            since: Some(Duration::from_secs(600)),
            tail: Some(50),
        };
        super::logs::logs_to(&cluster, "hello", &options, &mut |line| {
            lines.push(line);
            Ok(())
        })
        .await
        .map(|()| lines)
    });
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(
        200,
        &json!({"apiVersion": "faas.dev/v1alpha1", "kind": "Function",
                "metadata": {"name": "hello", "namespace": "team"},
                "spec": {"runtime": {"wasm": {"source": "oci://r.example.com/a:1"}}},
                "status": {"pool": "default"}}),
    );
    let (_, reply) = expect(
        &mut handle,
        "GET",
        "/api/v1/namespaces/team/pods?&labelSelector=faas.dev%2Fpool%3Ddefault",
    )
    .await;
    reply.json(
        200,
        &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
            {"metadata": {"name": "pool-default-a"}}, {"metadata": {"name": "pool-default-b"}}]}),
    );
    for _ in 0..2 {
        let (request, reply) = faas_kube_mock::next(&mut handle).await;
        let uri = request.uri().to_string();
        let pod = if uri.contains("pool-default-a") {
            "a"
        } else {
            "b"
        };
        assert_eq!(
            uri,
            format!(
                "/api/v1/namespaces/team/pods/pool-default-{pod}/log?&container=faas-runtime&sinceSeconds=600&tailLines=50"
            )
        );
        let body = format!(
            "{{\"fields\":{{\"message\":\"call {pod}\"}},\"span\":{{\"function\":\"hello\"}}}}\n{{\"fields\":{{\"message\":\"other\"}},\"span\":{{\"function\":\"resize\"}}}}\n"
        );
        reply.bytes(200, body.into_bytes());
    }
    let mut lines = task.await.unwrap().unwrap();
    lines.sort();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("[pool-default-a] ") && lines[0].contains("call a"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("[pool-default-b] ") && lines[1].contains("call b"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn describe_reads_the_function_its_runs_and_its_events() {
    let (cluster, mut handle) = cluster();
    let task = tokio::spawn(async move { cluster.describe("hello").await.map(|d| d.value) });
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(200, &scheduled_function());
    let (_, reply) = expect(
        &mut handle,
        "GET",
        &format!("{RUNS}?&labelSelector=faas.dev%2Ffunction%3Dhello"),
    )
    .await;
    reply.json(200, &json!({"apiVersion": "faas.dev/v1alpha1", "kind": "FunctionRunList", "metadata": {}, "items": []}));
    let (_, reply) = expect(
        &mut handle,
        "GET",
        "/api/v1/namespaces/team/events?&fieldSelector=involvedObject.kind%3DFunction%2CinvolvedObject.name%3Dhello",
    )
    .await;
    reply.json(
        200,
        &json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": []}),
    );
    task.await.unwrap().unwrap();

    // A missing function names the namespace and the way to look.
    let (cluster, mut handle) = self::cluster();
    let task = tokio::spawn(async move { cluster.describe("ghost").await.map(|_| ()) });
    let (_, reply) = expect(
        &mut handle,
        "GET",
        "/apis/faas.dev/v1alpha1/namespaces/team/functions/ghost",
    )
    .await;
    reply.failure(404, "NotFound", "functions.faas.dev \"ghost\" not found");
    let err = task.await.unwrap().unwrap_err().to_string();
    assert!(
        err.contains("Function ghost not found in namespace team (context test)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_deploy_over_a_different_function_is_refused_unless_replace() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str("(module)").unwrap();
    let file = manifest(dir.path(), &wasm);
    let (cluster, mut handle) = cluster();
    let mut no_replace = options(None, Duration::from_secs(30));
    no_replace.replace = false;
    no_replace.wait = false;
    let manifests = load(&file);
    let task = tokio::spawn(async move { deploy(&cluster, &manifests, &no_replace).await });
    let (_, reply) = expect(
        &mut handle,
        "PATCH",
        "/api/v1/namespaces/team/configmaps/fn-hello-wasm?&force=true&fieldManager=faas-cli",
    )
    .await;
    reply.json(200, &json!({"metadata": {"name": "fn-hello-wasm"}}));
    // The Function of that name is a Lambda handler: another kind, another artifact.
    let (_, reply) = expect(&mut handle, "GET", GET_FN).await;
    reply.json(
        200,
        &json!({"apiVersion": "faas.dev/v1alpha1", "kind": "Function",
                "metadata": {"name": "hello", "namespace": "team"},
                "spec": {"runtime": {"container": {"image": "orders:1", "mode": "lambda"}}}}),
    );
    let err = task.await.unwrap().unwrap_err().to_string();
    assert!(
        err.contains("would replace it with a different function (kind lambda → wasm, artifact orders:1 → configmap://fn-hello-wasm/hello.wasm)")
            && err.contains("--replace"),
        "{err}"
    );
}
