//! The whole-system scenarios, written once against a [`Cluster`]: `tests/system` runs each on
//! the stand-ins (`crate::cluster::System`), `tests/e2e-cluster` on a real cluster when
//! `KUBECONFIG` is set. A scenario sees the cluster only as a team and an operator would:
//! the Kubernetes API, the `faas` CLI, HTTP to the gateway and to pods (through
//! [`Cluster::reach`]: a pod's address on the stand-ins, a port-forward on a real cluster), pod
//! deletion, and the pods' logs through the API. What it needs of the chart's values (two
//! controllers, two pool pods, KEDA) it checks with [`Cluster::meets`]: the stand-in is
//! started to meet them (an unmet need fails the test there), a real cluster skips the
//! scenario, saying which value to set.

pub mod chart;
pub mod container;
pub mod controllers;
pub mod identity;
pub mod jobs;
pub mod logs;
pub mod pools;
pub mod schedule;
pub mod secrets;
pub mod sqs;
pub mod wasm;

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams};
use serde_json::Value;

/// The name of the HTTP test function's image (`tests/system/http-function`) on the stand-in.
pub const HTTP_IMAGE: &str = "registry.example.com/faas-e2e/http-function:1";

/// A cluster with the chart installed, as a scenario uses it.
pub trait Cluster {
    /// A client with the test's (an operator's) rights.
    fn client(&self) -> kube::Client;
    /// The namespace the chart is installed in.
    fn release_namespace(&self) -> &str;
    /// The chart's full name: its Deployments are `<release>-gateway`, `<release>-controller`.
    fn release(&self) -> &str;
    /// The namespace this scenario's team deploys to (made for the scenario on a real cluster).
    fn team(&self) -> &str;
    /// `faas` with its environment pointed at the cluster (a config directory of its own);
    /// [`faas_ok`] adds the context and namespace.
    fn faas(&self) -> Command;
    /// The kubeconfig context `faas` is given.
    fn context(&self) -> &str;
    /// A base URL (`http://HOST:PORT`), on loopback or a pod's address on the stand-in, that
    /// reaches `port` of pod `namespace/pod`.
    fn reach(&self, namespace: &str, pod: &str, port: u16) -> impl Future<Output = String>;
    /// The reference of the image of `tests/system/http-function`.
    fn http_image(&self) -> Option<String>;
    /// The image of the job test function (`tests/system/job`), if the cluster has one.
    fn job_image(&self) -> Option<String>;
    /// SIGKILLs the processes of pod `namespace/pod` (its containers then restart in place):
    /// false when this cluster cannot (a real one: there is no `exec` here).
    fn kill_processes(&self, namespace: &str, pod: &str) -> bool;
    /// An SQS client and an empty queue the function pods can reach, when there is one.
    fn queue(&self) -> impl Future<Output = Option<(aws_sdk_sqs::Client, String)>>;
    /// Whether a KEDA operator acts on ScaledObjects (the stand-in has its CRDs at most).
    fn keda_acts(&self) -> bool;
    /// The IAM role ARNs the chart allows in [`Cluster::team`] (none, one or two).
    fn allowed_roles(&self) -> Vec<String>;
    /// The first of [`Cluster::allowed_roles`].
    fn allowed_role(&self) -> Option<String> {
        self.allowed_roles().into_iter().next()
    }
    /// A client acting as `user` (impersonation: `system:serviceaccount:<ns>:<name>` for a
    /// pod's rights), authorized by the cluster's RBAC.
    fn client_as(&self, user: &str) -> impl Future<Output = kube::Client>;
    /// The AWS configuration (region, endpoints, the test's credentials) of the AWS the pool
    /// pods use (STS, SSM), when there is one: to ask whose credentials a guest holds, and to
    /// write the parameters a scenario reads.
    fn aws_config(&self) -> impl Future<Output = Option<aws_config::SdkConfig>>;
    /// Whether the cluster meets `need` (`what` says which); the stand-in fails the test when
    /// it does not (its options are chosen to meet them), a real cluster skips, saying so.
    fn meets(&self, need: bool, what: &str) -> bool;
    /// What helps when a scenario fails (every pod's log on the stand-in).
    fn diagnostics(&self) -> String;
}

/// Waits until `check` returns `Some`, failing with `what` and the cluster's diagnostics after
/// `within`.
pub async fn until<C, T, F, Fut>(c: &C, what: &str, within: Duration, mut check: F) -> T
where
    C: Cluster,
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if start.elapsed() > within {
            panic!("{what}: not within {within:?}\n{}", c.diagnostics());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `faas ARGS --context C -n TEAM`, returning what it printed; fails the test when it fails.
pub fn faas_ok<C: Cluster, I, S>(c: &C, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = c
        .faas()
        .args(args)
        .args(["--context", c.context(), "-n", c.team()])
        .output()
        .expect("run faas");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "faas: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.diagnostics()
    );
    stdout
}

/// `(version, namespaced)` of the resources scenarios read, by `(group, plural)`.
fn version_of(group: &str) -> &'static str {
    match group {
        ""
        | "apps"
        | "policy"
        | "networking.k8s.io"
        | "discovery.k8s.io"
        | "coordination.k8s.io"
        | "apiextensions.k8s.io"
        | "rbac.authorization.k8s.io"
        | "batch" => "v1",
        "autoscaling" => "v2",
        _ => "v1alpha1",
    }
}

fn path_of(group: &str, plural: &str, namespace: Option<&str>, name: Option<&str>) -> String {
    let version = version_of(group);
    let mut path = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    if let Some(namespace) = namespace {
        path.push_str(&format!("/namespaces/{namespace}"));
    }
    path.push_str(&format!("/{plural}"));
    if let Some(name) = name {
        path.push_str(&format!("/{name}"));
    }
    path
}

/// Object `namespace/name` of `group`/`plural` (`""` namespace: cluster-scoped), if it exists.
pub async fn object<C: Cluster>(
    c: &C,
    group: &str,
    plural: &str,
    namespace: &str,
    name: &str,
) -> Option<Value> {
    let namespace = (!namespace.is_empty()).then_some(namespace);
    let request = http::Request::get(path_of(group, plural, namespace, Some(name)))
        .body(Vec::new())
        .expect("a GET request");
    match c.client().request::<Value>(request).await {
        Ok(object) => Some(object),
        Err(kube::Error::Api(status)) if status.code == 404 => None,
        Err(e) => panic!("reading {plural}.{group} {name}: {e}"),
    }
}

/// The objects of `group`/`plural` in `namespace` (none: the group or resource is not served).
pub async fn objects<C: Cluster>(c: &C, group: &str, plural: &str, namespace: &str) -> Vec<Value> {
    let request = http::Request::get(path_of(group, plural, Some(namespace), None))
        .body(Vec::new())
        .expect("a GET request");
    match c.client().request::<Value>(request).await {
        Ok(list) => list["items"].as_array().cloned().unwrap_or_default(),
        Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
        Err(e) => panic!("listing {plural}.{group}: {e}"),
    }
}

/// The FunctionRuns of function `function` in the team's namespace.
pub async fn runs_of<C: Cluster>(c: &C, function: &str) -> Vec<Value> {
    objects(c, "faas.dev", "functionruns", c.team())
        .await
        .into_iter()
        .filter(|r| r["spec"]["function"] == function)
        .collect()
}

/// The label selector of Deployment `namespace/name` (`k=v,...`), if it exists.
pub async fn selector_of<C: Cluster>(c: &C, namespace: &str, deployment: &str) -> Option<String> {
    let object = object(c, "apps", "deployments", namespace, deployment).await?;
    let labels = object["spec"]["selector"]["matchLabels"].as_object()?;
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The pods in `namespace` that `selector` selects and are not being deleted, oldest first.
pub async fn pods_matching<C: Cluster>(c: &C, namespace: &str, selector: &str) -> Vec<Pod> {
    let pods: kube::Api<Pod> = kube::Api::namespaced(c.client(), namespace);
    let mut pods: Vec<Pod> = pods
        .list(&ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    pods.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .cmp(&b.metadata.creation_timestamp)
    });
    pods
}

/// The pods of Deployment `namespace/name` that are not being deleted, oldest first (none
/// when the Deployment does not exist: see [`pods_matching`] for after its deletion).
pub async fn pods_of<C: Cluster>(c: &C, namespace: &str, deployment: &str) -> Vec<Pod> {
    match selector_of(c, namespace, deployment).await {
        Some(selector) => pods_matching(c, namespace, &selector).await,
        None => Vec::new(),
    }
}

/// Whether `pod`'s Ready condition is true.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The names of the ready pods of Deployment `namespace/name`.
pub async fn ready_pods<C: Cluster>(c: &C, namespace: &str, deployment: &str) -> Vec<String> {
    pods_of(c, namespace, deployment)
        .await
        .into_iter()
        .filter(is_ready)
        .filter_map(|p| p.metadata.name)
        .collect()
}

/// Deletes pod `namespace/name` at once (`--grace-period=0`): a lost node, as far as the pod
/// can tell.
pub async fn delete_pod<C: Cluster>(c: &C, namespace: &str, name: &str) {
    let pods: kube::Api<Pod> = kube::Api::namespaced(c.client(), namespace);
    pods.delete(
        name,
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("deleting pod {name}: {e}"));
}

/// Pod `namespace/name`'s log (`container`), read through the API.
pub async fn pod_log<C: Cluster>(c: &C, namespace: &str, name: &str, container: &str) -> String {
    let pods: kube::Api<Pod> = kube::Api::namespaced(c.client(), namespace);
    pods.logs(
        name,
        &kube::api::LogParams {
            container: Some(container.into()),
            ..kube::api::LogParams::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("the log of {namespace}/{name} ({container}): {e}"))
}

/// Whether Deployment `namespace/name` has `count` ready pods within `within` (for a
/// scenario's [`Cluster::meets`]: the chart's values decide it).
pub async fn has_ready_pods<C: Cluster>(
    c: &C,
    namespace: &str,
    deployment: &str,
    count: usize,
    within: Duration,
) -> bool {
    let start = Instant::now();
    loop {
        if ready_pods(c, namespace, deployment).await.len() >= count {
            return true;
        }
        if start.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The replicas Deployment `namespace/name` asks for.
pub async fn replicas<C: Cluster>(c: &C, namespace: &str, name: &str) -> Option<i64> {
    object(c, "apps", "deployments", namespace, name)
        .await
        .and_then(|d| d["spec"]["replicas"].as_i64())
}

/// The gateway's public and admin base URLs (ports 8080 and 9090 of a ready gateway pod).
pub async fn gateway<C: Cluster>(c: &C) -> (String, String) {
    let deployment = format!("{}-gateway", c.release());
    let pod = until(
        c,
        "a ready gateway pod",
        Duration::from_secs(60),
        || async {
            ready_pods(c, c.release_namespace(), &deployment)
                .await
                .into_iter()
                .next()
        },
    )
    .await;
    (
        c.reach(c.release_namespace(), &pod, 8080).await,
        c.reach(c.release_namespace(), &pod, 9090).await,
    )
}

/// `GET url`: status and body.
pub async fn get(url: &str) -> (u16, String) {
    let reply = crate::get(url).await;
    (reply.status, reply.text())
}

/// The body of the first 200 `url` answers (within 30 s; the test fails saying `what`).
pub async fn answered<C: Cluster>(c: &C, what: &str, url: &str) -> String {
    until(c, what, Duration::from_secs(30), || async {
        let (status, body) = get(url).await;
        (status == 200).then_some(body)
    })
    .await
}

/// `faas deploy NAME --wasm GUEST` (one of this repo's example guests), waiting for Ready.
pub fn deploy_wasm<C: Cluster>(c: &C, name: &str, guest: &str, flags: &[&str]) {
    let guest = crate::guest(guest);
    let guest = guest.to_str().expect("a UTF-8 path");
    let mut args = vec!["deploy", name, "--wasm", guest, "--timeout", "90s"];
    args.extend(flags);
    faas_ok(c, args);
}

/// Deploys the Function manifest `yaml` with `faas deploy -f` (written in `dir`, beside what
/// it refers to) and `flags` (waiting for Ready unless they say `--no-wait`).
pub fn deploy<C: Cluster>(c: &C, dir: &Path, yaml: &str, flags: &[&str]) {
    let manifest = dir.join("function.yaml");
    std::fs::write(&manifest, yaml).expect("write the manifest");
    let manifest = manifest.to_str().expect("a UTF-8 path");
    let mut args = vec!["deploy", "-f", manifest, "--timeout", "90s"];
    args.extend(flags);
    faas_ok(c, args);
}

/// The manifest of an HTTP container function `name` running the test function's `image` on
/// `port` (one of its own per scenario: on the stand-in, pods share the host's ports), with
/// `spec` lines after its runtime.
pub fn http_function(name: &str, image: &str, port: u16, spec: &str) -> String {
    format!(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  \
         runtime:\n    container:\n      image: {image}\n      port: {port}\n      mode: \
         http\n  env: {{PORT: \"{port}\"}}\n{spec}"
    )
}

/// The HTTP test function's image, or `None` (the scenario skipped) when the cluster has none.
pub fn http_image<C: Cluster>(c: &C) -> Option<String> {
    let image = c.http_image();
    c.meets(
        image.is_some(),
        "the HTTP test function's image (FAAS_E2E_HTTP_IMAGE, built from tests/system/http-function)",
    )
    .then_some(image)
    .flatten()
}

/// A cron expression (with seconds) that fires once, `ahead` from now, in UTC.
pub fn fires_in(ahead: Duration) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::try_from(ahead).expect("a duration");
    let at = at.to_zoned(jiff::tz::TimeZone::UTC);
    format!("{} {} {} * * ?", at.second(), at.minute(), at.hour())
}

/// The condition `kind` of a Function's status.
pub fn condition<'a>(function: &'a Value, kind: &str) -> Option<&'a Value> {
    function["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}
