//! The platform as one system: the chart installed into the Kubernetes API stand-in
//! (`tests/kube-standin`), its controller and gateway and the pods the controller renders run
//! as the real binaries by the kubelet stand-in (`faas_e2e::cluster`), a team deploying with
//! the real `faas` CLI, and requests sent through the gateway's pod address as the ALB would.
//! What the two stand-ins do not emulate is listed in their module docs; everything else is
//! the code that ships.
//!
//! ```sh
//! cargo test -p faas-e2e --test system -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use faas_e2e::cluster::{Image, RELEASE_NAMESPACE, System, SystemOptions};
use serde_json::json;

const TEAM: &str = "team-a";

async fn get(url: &str) -> (u16, String) {
    let reply = faas_e2e::get(url).await;
    (reply.status, reply.text())
}

/// The body of the first 200 `url` answers (within 30 s; the test fails saying `what`).
async fn answered(system: &System, what: &str, url: &str) -> String {
    system
        .until(what, Duration::from_secs(30), || async {
            let (status, body) = get(url).await;
            (status == 200).then_some(body)
        })
        .await
}

/// `faas deploy hello --wasm hello.wasm` (the example guest), waiting for Ready.
fn deploy_hello(system: &System) {
    let hello = faas_e2e::guest("hello");
    let hello = hello.to_str().expect("a UTF-8 path");
    system.faas_ok(
        TEAM,
        ["deploy", "hello", "--wasm", hello, "--timeout", "90s"],
    );
}

/// A team deploys a WASM module with `faas deploy`: the controller puts it in a pool, the pool
/// pod loads it and reports, the Function turns Ready, and the gateway answers through the
/// pool pod. Deleting the Function takes the pool, which no other Function uses, along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_function_deployed_with_the_cli_is_served_then_deleted_with_its_pool() {
    let system = System::start(SystemOptions::default()).await;
    let (public, admin) = system.gateway().await;
    deploy_hello(&system);
    let pool = format!("{TEAM}/pool-default");
    assert_eq!(
        system.pods(&pool).len(),
        1,
        "one pool pod (chart test values)"
    );
    let answer = answered(
        &system,
        "hello answers through the gateway",
        &format!("{public}/function/hello/abc?x=1"),
    )
    .await;
    // As in local mode, the guest sees the path below its mount point.
    assert_eq!(answer, "Hello from faas: GET /abc?x=1\n");
    // Left out, spec.concurrency is what fits the pool pod (128Mi instances in 1Gi), and
    // the gateway admits exactly what the pool pod runs.
    let pool_ip = system.ready(&pool)[0].clone();
    for system_api in [admin.clone(), format!("http://{pool_ip}:8080")] {
        let (status, functions) = get(&format!("{system_api}/system/functions")).await;
        assert_eq!(status, 200, "{system_api}: {functions}");
        let functions: serde_json::Value = serde_json::from_str(&functions).unwrap();
        assert_eq!(functions[0]["name"], "hello", "{system_api}: {functions}");
        assert_eq!(functions[0]["concurrency"], 8, "{system_api}: {functions}");
    }

    system.faas_ok(TEAM, ["delete", "hello"]);
    system
        .until(
            "the unused pool is deleted",
            Duration::from_secs(30),
            || async {
                let gone = system
                    .api
                    .object("apps", "deployments", TEAM, "pool-default")
                    .is_none()
                    && system
                        .api
                        .object("", "services", TEAM, "pool-default")
                        .is_none()
                    && system
                        .api
                        .object("faas.dev", "functions", TEAM, "hello")
                        .is_none();
                gone.then_some(())
            },
        )
        .await;
    system
        .until(
            "the pool pod is stopped",
            Duration::from_secs(20),
            || async { system.pods(&pool).is_empty().then_some(()) },
        )
        .await;
    let (status, _) = get(&format!("{public}/function/hello")).await;
    assert_eq!(status, 404, "a deleted function is not routed");
}

/// An HTTP server as a function image: a program on this machine serving, on the port the
/// kubelet stand-in gives the pod (`FAAS_LISTEN`) and every address (a sidecar reaches it on
/// 127.0.0.1, as in a pod: so each test's function has a port of its own), the path a GET
/// got, and answering a POST after sleeping the `sleep` seconds of its JSON body (and
/// appending the body to the file `$RECEIVED` names).
fn http_image(dir: &std::path::Path, prefix: &str) -> Image {
    let script = dir.join("server.py");
    std::fs::write(
        &script,
        r#"
import json, os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        body = json.dumps({"path": self.path, "pod": os.environ.get("HOSTNAME", "")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if os.environ.get("RECEIVED"):
            with open(os.environ["RECEIVED"], "ab") as log:
                log.write(raw + b"\n")
        payload = json.loads(raw or b"{}")
        payload = payload if isinstance(payload, dict) else {}
        time.sleep(payload.get("sleep", 0))
        body = json.dumps({"slept": payload.get("sleep", 0)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

port = os.environ["FAAS_LISTEN"].rsplit(":", 1)[1]
ThreadingHTTPServer(("0.0.0.0", int(port)), Handler).serve_forever()
"#,
    )
    .unwrap();
    Image {
        prefix: prefix.into(),
        entrypoint: vec!["python3".into(), script.display().to_string()],
        cmd: vec![],
    }
}

/// A system where `registry.example.com/team-a/<name>:*` is [`http_image`], and the directory
/// holding its program (and the test's manifests).
async fn with_http_image(name: &str, mut options: SystemOptions) -> (tempfile::TempDir, System) {
    let images = tempfile::tempdir().unwrap();
    let prefix = format!("registry.example.com/team-a/{name}:");
    options.images.push(http_image(images.path(), &prefix));
    (images, System::start(options).await)
}

/// The replicas the Deployment `namespace/name` asks for.
fn replicas(system: &System, namespace: &str, name: &str) -> Option<i64> {
    system
        .api
        .object("apps", "deployments", namespace, name)
        .and_then(|d| d["spec"]["replicas"].as_i64())
}

/// A container function with `scale.min: 0`: after `scale.idleAfter` without requests the
/// gateway takes it to zero; the next request is held while the gateway scales its
/// Deployment up, answered once the pod is ready, and timed as a cold start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_function_idles_to_zero_then_a_request_is_held_scaled_up_and_answered() {
    let (images, system) = with_http_image("orders", SystemOptions::default()).await;
    let (public, admin) = system.gateway().await;
    deploy(
        &system,
        images.path(),
        &http_function(
            "orders",
            18091,
            "  scale: {min: 0, max: 2, idleAfter: 30s}\n",
        ),
        &[],
    );
    // Created with the API's default of one replica (so the deploy's Ready is proven on a
    // real pod), left to the gateway (scale.min 0), which takes it to zero once idle for
    // scale.idleAfter (30 s, the shortest allowed) at its next idle check.
    let deployment = format!("{TEAM}/fn-orders");
    system
        .until(
            "the idle function is taken to zero",
            Duration::from_secs(75),
            || async {
                (replicas(&system, TEAM, "fn-orders") == Some(0)
                    && system.pods(&deployment).is_empty())
                .then_some(())
            },
        )
        .await;

    // One request, no retry: held until the pod the gateway asked for is ready.
    let (status, body) = get(&format!("{public}/function/orders/x?y=1")).await;
    assert_eq!(status, 200, "{body}\n{}", system.logs());
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["path"], "/x?y=1",
        "as in local mode: below the mount point"
    );
    assert_eq!(replicas(&system, TEAM, "fn-orders"), Some(1));
    assert_eq!(system.pods(&deployment).len(), 1);
    let (_, metrics) = get(&format!("{admin}/metrics")).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("faas_cold_start_seconds_count{")
                // By registry key, as every series of a function in a cluster (two teams'
                // functions of one name never share one).
                && l.contains("function=\"orders.team-a\"")
                && l.contains("phase=\"scale_from_zero\"")
                && l.ends_with(" 1")),
        "one scale from zero timed:\n{metrics}"
    );
    assert!(
        metrics.contains("faas_invocations_total{code=\"200\",function=\"orders.team-a\"} 1"),
        "{metrics}"
    );

    // Deleted: every object rendered for it goes (the stand-in's owner GC, as the API
    // server's), its pod stops, and the gateway stops routing it.
    let kinds = [
        ("", "serviceaccounts"),
        ("", "services"),
        ("apps", "deployments"),
        ("policy", "poddisruptionbudgets"),
        ("networking.k8s.io", "networkpolicies"),
        ("discovery.k8s.io", "endpointslices"),
        ("faas.dev", "functions"),
    ];
    let left = || {
        kinds
            .iter()
            .flat_map(|(group, plural)| system.api.objects(group, plural, Some(TEAM)))
            .filter(|o| {
                let name = o["metadata"]["name"].as_str().unwrap_or_default();
                name == "orders" || name.starts_with("fn-orders")
            })
            .map(|o| format!("{} {}", o["kind"], o["metadata"]["name"]))
            .collect::<Vec<_>>()
    };
    let rendered = left();
    for object in [
        "ServiceAccount",
        "Service",
        "Deployment",
        "EndpointSlice",
        "Function",
    ] {
        assert!(
            rendered
                .iter()
                .any(|o| o.starts_with(&format!("\"{object}\""))),
            "{object} in {rendered:?}"
        );
    }
    system.faas_ok(TEAM, ["delete", "orders"]);
    system
        .until(
            "nothing of orders is left",
            Duration::from_secs(30),
            || async { (left().is_empty() && system.pods(&deployment).is_empty()).then_some(()) },
        )
        .await;
    let (status, _) = get(&format!("{public}/function/orders/x")).await;
    assert_eq!(status, 404, "a deleted function is not routed");
}

/// The manifest of the HTTP container function `name` (image
/// `registry.example.com/team-a/<name>:1`, see [`with_http_image`], serving on `port`: one of
/// its own per test), `spec` lines after its runtime.
fn http_function(name: &str, port: u16, spec: &str) -> String {
    format!(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  \
         runtime:\n    container:\n      image: registry.example.com/team-a/{name}:1\n      \
         port: {port}\n      mode: http\n{spec}"
    )
}

/// Deploys the Function manifest `yaml` with `faas deploy -f` and `flags` (waiting for Ready
/// unless they say `--no-wait`).
fn deploy(system: &System, dir: &std::path::Path, yaml: &str, flags: &[&str]) {
    let manifest = dir.join("function.yaml");
    std::fs::write(&manifest, yaml).unwrap();
    let manifest = manifest.to_str().expect("a UTF-8 path");
    let mut args = vec!["deploy", "-f", manifest, "--timeout", "60s"];
    args.extend(flags);
    system.faas_ok(TEAM, args);
}

/// A cron expression (with seconds) that fires once, `ahead` from now, in UTC.
fn fires_in(ahead: Duration) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::try_from(ahead).unwrap();
    let at = at.to_zoned(jiff::tz::TimeZone::UTC);
    format!("{} {} {} * * ?", at.second(), at.minute(), at.hour())
}

/// A schedule-only container function sits at zero; its schedule's fire goes through the
/// gateway, which scales it up and holds the call, and the run takes longer than the
/// function's own timeout because the schedule's is longer: it succeeds, recorded as a
/// FunctionRun.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_wakes_a_function_at_zero_and_its_longer_timeout_is_honoured() {
    let (images, system) = with_http_image("report", SystemOptions::default()).await;
    let (public, _) = system.gateway().await;
    // Deploy and the scale-down below take a few seconds; the fire comes after them.
    let cron = fires_in(Duration::from_secs(20));
    let spec = format!(
        "  timeout: 2s\n  scale: {{min: 0}}\n  schedules:\n  - name: nightly\n    cron: \
         \"{cron}\"\n    timeout: 15s\n    payload: {{sleep: 4}}\n"
    );
    deploy(
        &system,
        images.path(),
        &http_function("report", 18092, &spec),
        &[],
    );
    // At zero, as the gateway leaves an idle function (scale.idleAfter is 30 s at least).
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(system.client.clone(), TEAM);
    deployments
        .patch_scale(
            "fn-report",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    let deployment = format!("{TEAM}/fn-report");
    system
        .until("no pod left", Duration::from_secs(20), || async {
            system.pods(&deployment).is_empty().then_some(())
        })
        .await;

    let run = system
        .until(
            "the scheduled run ends",
            Duration::from_secs(60),
            || async {
                system
                    .api
                    .objects("faas.dev", "functionruns", Some(TEAM))
                    .into_iter()
                    .find(|r| {
                        r["spec"]["function"] == "report"
                            && !matches!(r["status"]["phase"].as_str(), None | Some("Running"))
                    })
            },
        )
        .await;
    assert_eq!(run["spec"]["schedule"], "nightly", "{run}");
    assert_eq!(run["spec"]["trigger"], "cron", "{run}");
    assert_eq!(
        run["status"]["phase"],
        "Succeeded",
        "{run}\n{}",
        system.logs()
    );
    assert_eq!(run["status"]["httpStatus"], 200, "{run}");
    assert_eq!(
        replicas(&system, TEAM, "fn-report"),
        Some(1),
        "woken by its schedule"
    );

    // A call without the schedule's timeout is cut at the function's own (2 s) by the
    // gateway, the only part in front of a plain HTTP container: before the 4 s sleep ends
    // (a margin for a pod that enforces deadlines itself would let it answer 200).
    let reply = faas_e2e::send(
        "POST",
        &format!("{public}/function/report"),
        &[("content-type", "application/json")],
        r#"{"sleep": 4}"#,
    )
    .await;
    assert_eq!(reply.status, 504, "{}", reply.text());

    // Run by hand with the CLI, with the schedule's settings: the leading controller runs
    // it (the same path as the schedule), the CLI follows it to its end, and `faas runs`
    // lists both runs from the cluster.
    let stdout = system.faas_ok(
        TEAM,
        ["run", "report", "--schedule", "nightly", "-o", "json"],
    );
    assert!(stdout.contains("Succeeded"), "{stdout}");
    let listed: serde_json::Value =
        serde_json::from_str(&system.faas_ok(TEAM, ["runs", "report", "-o", "json"])).unwrap();
    let triggers: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["spec"]["trigger"].as_str())
        .collect();
    assert_eq!(triggers, ["manual", "cron"], "newest first: {listed}");
}

/// Two pool pods serve a WASM function under steady traffic; one is killed (SIGKILL, as an
/// OOM kill or a lost spot node does it). The gateway moves to the other: only the requests
/// in flight on the dead pod fail, and every request after its endpoint turns not-ready
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_pod_killed_under_traffic_costs_only_its_requests_in_flight() {
    let system = System::start(SystemOptions {
        values: json!({"runtime": {"pools": {"replicas": 2, "maxReplicas": 2}}}),
        ..SystemOptions::default()
    })
    .await;
    let (public, _) = system.gateway().await;
    deploy_hello(&system);
    let pool = format!("{TEAM}/pool-default");
    system
        .until("two ready pool pods", Duration::from_secs(30), || async {
            (system.ready(&pool).len() == 2).then_some(())
        })
        .await;
    let url = format!("{public}/function/hello/x");
    answered(&system, "hello answers", &url).await;

    const CLIENTS: usize = 4;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killed_at = std::sync::Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, stop, killed_at) = (url.clone(), stop.clone(), killed_at.clone());
            tokio::spawn(async move {
                // (status, whether the request started after the kill)
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let after = killed_at.lock().unwrap().is_some();
                    seen.push((get(&url).await.0, after));
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let victim = system.pods(&pool)[0].clone();
    let pids = system.kubelet.view.lock().unwrap().pids[&victim].clone();
    assert!(!pids.is_empty(), "{victim} runs");
    *killed_at.lock().unwrap() = Some(std::time::Instant::now());
    for pid in pids {
        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = Vec::new();
    for client in clients {
        seen.extend(client.await.unwrap());
    }
    let after: Vec<u16> = seen.iter().filter(|(_, a)| *a).map(|(s, _)| *s).collect();
    let failed = seen.iter().filter(|(s, _)| *s != 200).count();
    eprintln!(
        "{} requests, {} after the kill, {failed} failed: {:?}",
        seen.len(),
        after.len(),
        seen.iter().filter(|(s, _)| *s != 200).collect::<Vec<_>>()
    );
    // At most one request in flight per client on the dead pod, plus one per client on a
    // kept-alive connection to it that the kill left idle.
    assert!(failed <= 2 * CLIENTS, "{failed} failed");
    assert!(after.len() > 2 * CLIENTS, "traffic went on: {after:?}");
    assert!(
        after.iter().rev().take(CLIENTS * 2).all(|s| *s == 200),
        "the last requests all succeed: {after:?}"
    );
}

/// An SQS-triggered container function in a cluster without KEDA: the controller keeps a
/// replica (its sidecar is the poller), which drains a moto queue into the function, and
/// the Function's status says a poller is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_function_without_keda_keeps_a_poller_that_drains_its_queue() {
    let moto = faas_e2e::moto::moto();
    let queue = moto
        .create_queue(&format!("system-orders-{}", std::process::id()), &[])
        .await;
    let (images, system) = with_http_image(
        "orders",
        SystemOptions {
            env: moto.env().into_iter().collect(),
            ..SystemOptions::default()
        },
    )
    .await;
    let received = images.path().join("received.log");
    let spec = format!(
        "  scale: {{min: 0}}\n  env: {{RECEIVED: {}}}\n  triggers:\n    sqs:\n    - queueUrl: \
         {queue}\n",
        received.display()
    );
    deploy(
        &system,
        images.path(),
        &http_function("orders", 18093, &spec),
        &[],
    );
    // scale.min 0, yet one replica: nothing else would start a poller.
    assert_eq!(replicas(&system, TEAM, "fn-orders"), Some(1));
    for n in 0..10 {
        moto.send(&queue, &format!("{{\"n\": {n}}}")).await;
    }
    // Each POST is one SQS event of up to ten records, each body a JSON string in it.
    let record = |n: u32| format!("\\\"n\\\": {n}");
    system
        .until(
            "ten messages delivered",
            Duration::from_secs(60),
            || async {
                let text = std::fs::read_to_string(&received).unwrap_or_default();
                (0..10).all(|n| text.contains(&record(n))).then_some(())
            },
        )
        .await;
    // Deleted once the function answered 200: nothing visible, nothing in flight.
    system
        .until("the queue is empty", Duration::from_secs(30), || async {
            let attributes = moto
                .client()
                .get_queue_attributes()
                .queue_url(&queue)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                .send()
                .await
                .unwrap();
            let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
                attributes
                    .attributes()
                    .and_then(|a| a.get(&name).cloned())
                    .unwrap_or_default()
            };
            (count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages) == "0"
                && count(
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                ) == "0")
                .then_some(())
        })
        .await;
    let function = system
        .api
        .object("faas.dev", "functions", TEAM, "orders")
        .unwrap();
    let triggers = function["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "TriggersReady")
        .cloned()
        .unwrap_or_default();
    assert_eq!(triggers["status"], "True", "{function}");
}

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

/// With KEDA installed, an SQS function's replicas are KEDA's: the controller renders the
/// ScaledObject docs/eks.md describes (from scale.min, activation on the first message, up to
/// scale.max, one trigger per queue read with the workload's identity) and leaves the
/// Deployment's replicas alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keda_an_sqs_function_gets_the_scaled_object_the_docs_describe() {
    let (images, system) = with_http_image(
        "orders",
        SystemOptions {
            objects: vec![
                crd("keda.sh", "ScaledObject", "scaledobjects"),
                crd("keda.sh", "TriggerAuthentication", "triggerauthentications"),
            ],
            ..SystemOptions::default()
        },
    )
    .await;
    let queue = "https://sqs.eu-west-3.amazonaws.com/123456789012/orders";
    let spec = format!(
        "  scale: {{min: 0, max: 4}}\n  triggers:\n    sqs:\n    - queueUrl: {queue}\n      \
         batchSize: 5\n      maxConcurrency: 2\n"
    );
    // Not waited for: the queue is not reachable here, so no poller turns ready.
    deploy(
        &system,
        images.path(),
        &http_function("orders", 18094, &spec),
        &["--no-wait"],
    );
    let scaled = system
        .until("a ScaledObject", Duration::from_secs(30), || async {
            system
                .api
                .object("keda.sh", "scaledobjects", TEAM, "fn-orders")
        })
        .await;
    let spec = &scaled["spec"];
    assert_eq!(spec["scaleTargetRef"]["name"], "fn-orders", "{scaled}");
    assert_eq!(spec["minReplicaCount"], 0, "{scaled}");
    assert_eq!(spec["maxReplicaCount"], 4, "{scaled}");
    let triggers = spec["triggers"].as_array().unwrap();
    assert_eq!(triggers.len(), 1, "{scaled}");
    assert_eq!(triggers[0]["type"], "aws-sqs-queue");
    assert_eq!(triggers[0]["metadata"]["queueURL"], queue);
    assert_eq!(triggers[0]["metadata"]["activationQueueLength"], "0");
    // batch size x maxConcurrency messages per replica.
    assert_eq!(triggers[0]["metadata"]["queueLength"], "10");
    let auth = triggers[0]["authenticationRef"]["name"].as_str().unwrap();
    let auth = system
        .api
        .object("keda.sh", "triggerauthentications", TEAM, auth)
        .expect("its TriggerAuthentication");
    assert_eq!(auth["spec"]["podIdentity"]["provider"], "aws", "{auth}");
    assert_eq!(
        auth["spec"]["podIdentity"]["identityOwner"], "workload",
        "{auth}"
    );
    // KEDA owns replicas: the controller's apply leaves them out, so the API's default of
    // one stays (the controller would have written scale.min, 0).
    assert_eq!(replicas(&system, TEAM, "fn-orders"), Some(1));
}

/// Two controllers: the Lease holder fires a schedule; killed (SIGKILL) in the middle of the
/// run, the run is taken over by whoever leads next (the other replica, or the killed one
/// restarted in its pod) as its next attempt under the schedule's retry policy: the fire
/// time keeps exactly one FunctionRun, which succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_controller_is_killed_is_resumed_by_the_next_leader_once() {
    let (images, system) = with_http_image(
        "slow",
        SystemOptions {
            values: json!({"controller": {"replicas": 2}}),
            ..SystemOptions::default()
        },
    )
    .await;
    let _ = system.gateway().await;
    let cron = fires_in(Duration::from_secs(12));
    let spec = format!(
        "  scale: {{min: 1}}\n  schedules:\n  - name: hourly\n    cron: \"{cron}\"\n    \
         timeout: 60s\n    payload: {{sleep: 6}}\n    retries: {{limit: 2, backoff: 1s}}\n"
    );
    deploy(
        &system,
        images.path(),
        &http_function("slow", 18095, &spec),
        &[],
    );
    let runs = || {
        system
            .api
            .objects("faas.dev", "functionruns", Some(TEAM))
            .into_iter()
            .filter(|r| r["spec"]["function"] == "slow")
            .collect::<Vec<_>>()
    };
    let running = system
        .until("the run starts", Duration::from_secs(40), || async {
            runs()
                .into_iter()
                .find(|r| r["status"]["phase"] == "Running")
        })
        .await;
    let lease = system
        .api
        .object(
            "coordination.k8s.io",
            "leases",
            RELEASE_NAMESPACE,
            faas_api::contract::CONTROLLER_LEASE,
        )
        .unwrap();
    let holder = lease["spec"]["holderIdentity"].as_str().unwrap().to_owned();
    let first_owner = running["metadata"]["annotations"]["faas.dev/owner"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        first_owner.starts_with(&holder),
        "the Lease holder {holder} fired it, not {first_owner}"
    );
    assert_eq!(running["spec"]["attempt"], 1, "{running}");
    let pids = system.kubelet.view.lock().unwrap().pids[&holder].clone();
    for pid in pids {
        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    }

    let ended = system
        .until("the run ends", Duration::from_secs(90), || async {
            runs()
                .into_iter()
                .find(|r| !matches!(r["status"]["phase"].as_str(), None | Some("Running")))
        })
        .await;
    assert_eq!(
        ended["status"]["phase"],
        "Succeeded",
        "{ended}\n{}",
        system.logs()
    );
    assert_eq!(
        ended["spec"]["attempt"], 2,
        "resumed as the next attempt: {ended}"
    );
    assert_eq!(ended["metadata"]["name"], running["metadata"]["name"]);
    assert_ne!(
        ended["metadata"]["annotations"]["faas.dev/owner"], first_owner,
        "{ended}"
    );
    assert_eq!(runs().len(), 1, "one run for the fire time: {:?}", runs());
}

/// A tenant labels its Function into another identity's pool: in one namespace, a function
/// with an IAM role of its own gets a pool of its own, and its author then sets the pool label
/// (`faas.dev/pool: default`) to have its code run in the pods of the role-less pool beside
/// another function. The default pool's pods never load it (their key is not its key), the
/// controller puts the label back, and the gateway keeps sending its requests to its own pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_labels_itself_into_another_identitys_pool_is_not_loaded_there() {
    let role = "arn:aws:iam::123456789012:role/faas/team-a/billing";
    let system = System::start(SystemOptions {
        values: json!({"controller": {"allowedRoleArns": {
            "team-a": ["arn:aws:iam::123456789012:role/faas/team-a/*"]
        }}}),
        ..SystemOptions::default()
    })
    .await;
    let (public, _) = system.gateway().await;
    deploy_hello(&system);
    let hello = faas_e2e::guest("hello");
    let hello = hello.to_str().expect("a UTF-8 path");
    system.faas_ok(
        TEAM,
        [
            "deploy",
            "intruder",
            "--wasm",
            hello,
            "--role-arn",
            role,
            "--timeout",
            "90s",
        ],
    );
    let own_pool = system
        .api
        .object("faas.dev", "functions", TEAM, "intruder")
        .unwrap()["status"]["pool"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(own_pool, "default", "a role of its own, a pool of its own");
    let default_pod = system.ready(&format!("{TEAM}/pool-default"))[0].clone();

    // The author's move: the pool label, as any edit of the Function can set it.
    let functions: kube::Api<faas_api::Function> =
        kube::Api::namespaced(system.client.clone(), TEAM);
    functions
        .patch(
            "intruder",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"faas.dev/pool": "default"}}})),
        )
        .await
        .unwrap();
    // The default pool's pod sees it (its watch is on that label) and refuses it, saying why
    // (its load report says so too, until the controller drops reports of pods outside the
    // function's pool); it serves hello alone.
    let default_pod_name = system.pods(&format!("{TEAM}/pool-default"))[0].clone();
    let log = system
        .until(
            "the default pool's pod decides",
            Duration::from_secs(30),
            || async {
                let log = system.kubelet.logs_of(&default_pod_name);
                log.contains("\"function\":\"intruder\"").then_some(log)
            },
        )
        .await;
    assert!(log.contains("not a member of pool default"), "{log}");
    assert!(
        !log.contains("\"message\":\"function loaded\",\"function\":\"intruder\""),
        "{log}"
    );
    let (status, listed) = get(&format!("http://{default_pod}:8080/system/functions")).await;
    assert_eq!(status, 200, "{listed}");
    assert!(
        !listed.contains("intruder"),
        "loaded beside hello: {listed}"
    );
    system
        .until(
            "the controller puts its label back",
            Duration::from_secs(30),
            || async {
                let function = system
                    .api
                    .object("faas.dev", "functions", TEAM, "intruder")?;
                (function["metadata"]["labels"]["faas.dev/pool"] == own_pool.as_str()).then_some(())
            },
        )
        .await;
    // Served by its own pool again, once its pod reloaded it: while the label named another
    // pool, its own pool's pod (whose watch is on its own label) dropped it, so the author's
    // move cost only the author a moment of 404s.
    let body = answered(
        &system,
        "served by its own pool again",
        &format!("{public}/function/intruder/x"),
    )
    .await;
    assert_eq!(body, "Hello from faas: GET /x\n");
    let own_pods = system.ready(&format!("{TEAM}/pool-{own_pool}"));
    assert_eq!(own_pods.len(), 1, "{own_pool}");
}

/// A scheduled WASM function's run, started with the CLI: the pool pod that runs it sends the
/// guest's last lines back with the answer, through the gateway, to the controller, which
/// puts them on the FunctionRun (`logTail`), where `faas runs show` finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_run_records_the_log_tail_of_its_guest() {
    let system = System::start(SystemOptions::default()).await;
    let _ = system.gateway().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(faas_e2e::guest("hostile"), dir.path().join("chatty.wasm")).unwrap();
    deploy(
        &system,
        dir.path(),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: chatty}\nspec:\n  \
         runtime: {wasm: {source: chatty.wasm}}\n  schedules:\n  - name: yearly\n    \
         cron: \"@yearly\"\n    payload: log\n",
        &[],
    );
    // The payload makes the guest print three lines and one to stderr, then answer.
    let out = system.faas_ok(TEAM, ["run", "chatty", "--schedule", "yearly"]);
    assert_eq!(out.trim(), "logged");
    let run = system
        .api
        .objects("faas.dev", "functionruns", Some(TEAM))
        .into_iter()
        .find(|r| r["spec"]["function"] == "chatty")
        .expect("the run");
    assert_eq!(run["status"]["phase"], "Succeeded", "{run}");
    let tail = run["status"]["logTail"].as_str().unwrap_or_default();
    assert!(
        tail.contains("log line 3") && tail.contains("log line to stderr"),
        "{run}\n{}",
        system.logs()
    );
    let name = run["metadata"]["name"].as_str().unwrap();
    let shown = system.faas_ok(TEAM, ["runs", "show", name]);
    assert!(shown.contains("log line 3"), "{shown}");
}

/// The chart alone: controller and gateway come up Ready from the rendered Deployments, with
/// the platform token from the chart's Secret, and the gateway's readiness is what the
/// EndpointSlice of its Service says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_comes_up_ready() {
    let system = System::start(SystemOptions {
        values: json!({"controller": {"replicas": 1}}),
        ..SystemOptions::default()
    })
    .await;
    let (public, admin) = system.gateway().await;
    assert_eq!(get(&format!("{public}/readyz")).await.0, 200);
    assert_eq!(get(&format!("{admin}/readyz")).await.0, 200);
    system
        .until(
            "the controller is ready",
            Duration::from_secs(60),
            || async {
                (!system
                    .ready(&format!("{RELEASE_NAMESPACE}/faas-controller"))
                    .is_empty())
                .then_some(())
            },
        )
        .await;
    let slice = system
        .api
        .object(
            "discovery.k8s.io",
            "endpointslices",
            RELEASE_NAMESPACE,
            "faas-gateway-standin",
        )
        .expect("the gateway Service's EndpointSlice");
    assert_eq!(
        slice["endpoints"][0]["conditions"]["ready"], true,
        "{slice}"
    );
}
