//! The kubelet stand-in of the whole-system test: it plays the parts of a cluster that make
//! pods exist (the Deployment and ReplicaSet controllers, the kubelet, the EndpointSlice
//! controller and kube-proxy) on one machine without containers, by polling the API
//! stand-in every [`TICK`]:
//!
//! - each Deployment gets `spec.replicas` pods (1 when unset); a pod is each of its
//!   containers (and native sidecars, init containers with `restartPolicy: Always`) started as
//!   a local process, the image mapped to a program by [`Image`]: `command` or the image's
//!   entrypoint, then `args` or the image's default arguments, as a container runtime does;
//! - a pod's processes share the host's network, so each pod gets its own loopback address
//!   (`127.10.x.y`) as its IP, and its environment is rewritten to it: see [`super::env`];
//!   beside the container's `env` it gets only `PATH`, `HOME` (the pod's directory),
//!   `KUBECONFIG` (the stand-in's, acting as the pod's ServiceAccount with `as:`, in place
//!   of the in-cluster service-account token: the API stand-in then authorizes the pod's
//!   requests by the RBAC objects the chart and the controller wrote),
//!   `FAAS_STATE` (in the pod's directory, when unset), `FAAS_LISTEN` (the pod IP and the port
//!   named `http`, else the first port, when unset: the faas binaries' one listen setting)
//!   and what the test adds; what a program binds on `127.0.0.1` (a sidecar's Runtime API
//!   on 9001) is shared by every pod, so one such pod runs at a time;
//! - a pod is a Pod object in the API (owned by its Deployment, `status.podIP`, the `Ready`
//!   condition from its readiness probe, or from its first port accepting connections);
//! - a container that exits is restarted with a backoff (`restartPolicy: Always`); a Pod
//!   deleted through the API is killed and replaced, as its ReplicaSet would;
//! - a changed pod template replaces every pod at once (no rolling update); scaling down or
//!   deleting stops the newest pods first: SIGTERM, then SIGKILL after the pod's
//!   `terminationGracePeriodSeconds` (at most [`MAX_GRACE`]);
//! - each Job that has not ended gets one pod, once (the Job controller with
//!   `backoffLimit: 0`), labelled `batch.kubernetes.io/job-name`; its containers run once,
//!   never restarted, and the pod reports each one's `terminated` state (exit code, signal,
//!   the termination message: a file of the pod's directory stands for
//!   `terminationMessagePath` wherever the environment names that path); when all ended the
//!   Job gets `Complete` or `Failed` (`BackoffLimitExceeded`), and past its
//!   `activeDeadlineSeconds` its pod is killed and it gets `Failed` (`DeadlineExceeded`); a
//!   deleted Job's pod is stopped;
//! - each Service with a selector gets an EndpointSlice `<service>-standin` of its pods, ready
//!   or not, ports resolved by number or container-port name, and a listener per port on its
//!   stand-in cluster IP (`127.20.x.y`, [`super::proxy`]).
//!
//! Not emulated: a Job's `podFailurePolicy` (no disruptions happen here), its
//! `ttlSecondsAfterFinished`, retries within a Job (`backoffLimit` above 0), scheduling (node selectors, tolerations, affinity and resources are ignored:
//! one node, [`NODE_NAME`]), volumes (paths are the host's), liveness and startup probes,
//! `exec` probes, lifecycle hooks, pod security contexts, network policies, DNS beyond the
//! Service names written in environment values, ReplicaSet objects, graceful deletion of a
//! Pod deleted through the API (its processes are killed at once, as with `--grace-period=0
//! --force`; the API stand-in removes the object at once), stdout and stderr told apart in
//! logs (both go to `<container>.log`, a line each with the time it was read, which the API's
//! `pods/{name}/log` serves: [`Kubelet::log_source`]).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash as _, Hasher as _};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::env::{self, PodFacts};
use super::proxy::Proxy;

/// How often the stand-in looks at the API.
pub const TICK: Duration = Duration::from_millis(200);
/// The longest grace a stopping pod gets here (tests should not wait 30 s for a SIGKILL).
pub const MAX_GRACE: Duration = Duration::from_secs(10);
/// The one node.
pub const NODE_NAME: &str = "standin-node";
/// The EndpointSlice controller's name, which the stand-in publishes slices as.
const SLICE_MANAGER: &str = "endpointslice-controller.k8s.io";

/// Pod and Service addresses are never reused within a test process, even across the
/// systems of tests running side by side: each gets the next of its range.
static NEXT_POD_IP: AtomicU32 = AtomicU32::new(0);
static NEXT_SERVICE_IP: AtomicU32 = AtomicU32::new(0);

/// The next unused address of `127.<octet>.0.0/16` (`.0` and `.255` left out).
fn loopback_address(octet: u8, next: &AtomicU32) -> String {
    let n = next.fetch_add(1, Ordering::Relaxed);
    format!("127.{octet}.{}.{}", n / 250, n % 250 + 1)
}

/// An image, as a program on this machine.
#[derive(Clone, Debug)]
pub struct Image {
    /// References starting with this (`faas-runtime`, `ghcr.io/acme/orders:`) run this image.
    pub prefix: String,
    /// Its entrypoint.
    pub entrypoint: Vec<String>,
    /// Its default arguments (CMD).
    pub cmd: Vec<String>,
}

/// What the kubelet stand-in needs to know.
pub struct Options {
    pub images: Vec<Image>,
    pub kubeconfig: PathBuf,
    /// Where pods get their directories (logs, state).
    pub dir: PathBuf,
    /// Environment every process gets besides its container's (e.g. `RUST_LOG`, AWS endpoints).
    pub extra_env: BTreeMap<String, String>,
}

struct Running {
    name: String,
    child: tokio::process::Child,
    restarts: u32,
    restart_at: Option<Instant>,
}

struct PodState {
    name: String,
    namespace: String,
    owner: String,
    template: u64,
    ip: String,
    dir: PathBuf,
    labels: BTreeMap<String, String>,
    spec: k8s_openapi::api::core::v1::PodSpec,
    containers: Vec<Running>,
    ready: bool,
    created: Instant,
    reported: Option<Value>,
    /// A Job's pod (`restartPolicy: Never`): how its containers ended, and its deadline.
    job: Option<JobPod>,
}

/// What a Job's pod needs beyond a Deployment's: its containers run once.
struct JobPod {
    /// The Job's `activeDeadlineSeconds`, from the pod's start.
    deadline: Option<Instant>,
    /// Exit code (or 128 + signal) and signal of each container that ended, by name.
    exited: BTreeMap<String, (i32, Option<i32>)>,
    /// Set once every container ended, or the deadline killed them: the Job's condition.
    ended: Option<JobEnd>,
    reported_job: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JobEnd {
    Complete,
    Failed,
    DeadlineExceeded,
}

/// What the test can see and do from outside.
#[derive(Default)]
pub struct View {
    /// Ready pod IPs by `namespace/deployment`.
    pub ready: BTreeMap<String, Vec<String>>,
    /// Pod names by `namespace/deployment`, oldest first, including those still terminating
    /// (their processes not all exited yet), as the API lists a pod until then.
    pub pods: BTreeMap<String, Vec<String>>,
    /// Pods stopped whose processes have not all exited, by name: their deployment.
    terminating: BTreeMap<String, String>,
    /// Process ids by pod name.
    pub pids: BTreeMap<String, Vec<u32>>,
    /// Stand-in cluster IPs by `name.namespace`.
    pub services: BTreeMap<String, String>,
}

/// A running kubelet stand-in; stopping it (drop) kills every pod's processes.
pub struct Kubelet {
    pub view: Arc<Mutex<View>>,
    dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    pub fn start(client: kube::Client, options: Options) -> Kubelet {
        let view = Arc::new(Mutex::new(View::default()));
        let dir = options.dir.clone();
        let mut state = State {
            client,
            options,
            pods: Vec::new(),
            proxy: Proxy::default(),
            service_ips: BTreeMap::new(),
            started: 0,
            slices: HashMap::new(),
            deployment_status: HashMap::new(),
            jobs_started: std::collections::HashSet::new(),
            view: Arc::clone(&view),
        };
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = state.tick().await {
                    tracing::debug!(error = %e, "kubelet stand-in tick");
                }
                tokio::time::sleep(TICK).await;
            }
        });
        Kubelet { view, dir, task }
    }

    /// Container logs for the API stand-in's `pods/{name}/log` (pod names are unique across
    /// namespaces here: one kubelet names them all).
    pub fn log_source(&self) -> faas_kube_standin::LogSource {
        let dir = self.dir.clone();
        Arc::new(move |_namespace: &str, pod: &str, container: &str| {
            if pod.contains('/') || container.contains('/') {
                return None;
            }
            std::fs::read_to_string(dir.join(pod).join(format!("{container}.log"))).ok()
        })
    }

    /// Every pod's container logs so far, for a failing test's output.
    pub fn logs(&self) -> String {
        self.logs_of("")
    }

    /// The log of each container of the pods whose name starts with `prefix`.
    pub fn logs_of(&self, prefix: &str) -> String {
        let mut out = String::new();
        let Ok(pods) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        let mut paths: Vec<PathBuf> = pods.flatten().map(|e| e.path()).collect();
        paths.sort();
        paths.retain(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        });
        for pod in paths {
            let Ok(files) = std::fs::read_dir(&pod) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    out.push_str(&format!("===== {} =====\n{text}\n", path.display()));
                }
            }
        }
        out
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
        // Dropping the task drops every child, which `kill_on_drop` kills.
    }
}

struct State {
    client: kube::Client,
    options: Options,
    pods: Vec<PodState>,
    proxy: Proxy,
    service_ips: BTreeMap<String, String>,
    /// Pods started so far.
    started: u32,
    slices: HashMap<String, Value>,
    deployment_status: HashMap<String, Value>,
    /// Jobs (`job:<namespace>/<name>`) whose pod was started: a Job runs one pod, once.
    jobs_started: std::collections::HashSet<String>,
    view: Arc<Mutex<View>>,
}

fn template_hash(deployment: &Deployment) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&deployment.spec.template)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

impl State {
    async fn tick(&mut self) -> Result<(), kube::Error> {
        let services: Vec<Service> = Api::all(self.client.clone())
            .list(&ListParams::default())
            .await?
            .items;
        self.allocate_service_ips(&services).await;
        let deployments: Vec<Deployment> = Api::all(self.client.clone())
            .list(&ListParams::default())
            .await?
            .items;
        self.converge(&deployments).await;
        let jobs: Vec<Job> = Api::all(self.client.clone())
            .list(&ListParams::default())
            .await?
            .items;
        self.converge_jobs(&jobs).await;
        self.supervise().await;
        self.report_pods().await;
        self.report_deployments(&deployments).await;
        self.report_jobs(&jobs).await;
        self.publish_endpoints(&services).await;
        self.refresh_view();
        Ok(())
    }

    async fn allocate_service_ips(&mut self, services: &[Service]) {
        let keys: Vec<String> = services
            .iter()
            .map(|s| format!("{}.{}", s.name_any(), s.namespace().unwrap_or_default()))
            .collect();
        let gone: Vec<String> = self
            .service_ips
            .keys()
            .filter(|k| !keys.contains(k))
            .cloned()
            .collect();
        for key in gone {
            self.service_ips.remove(&key);
            self.proxy.forget(&key);
        }
        for (service, key) in services.iter().zip(keys) {
            let ip = self
                .service_ips
                .entry(key.clone())
                .or_insert_with(|| loopback_address(20, &NEXT_SERVICE_IP))
                .clone();
            for port in service.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
                self.proxy.ensure(&key, &ip, port.port as u16).await;
            }
        }
    }

    /// Pods to start and stop so each Deployment has its replicas of its current template.
    async fn converge(&mut self, deployments: &[Deployment]) {
        let mut keep = Vec::new();
        for deployment in deployments {
            let owner = format!(
                "{}/{}",
                deployment.namespace().unwrap_or_default(),
                deployment.name_any()
            );
            let hash = template_hash(deployment);
            let want = deployment.spec.replicas.unwrap_or(1).max(0) as usize;
            let current: Vec<usize> = (0..self.pods.len())
                .filter(|&i| self.pods[i].owner == owner && self.pods[i].template == hash)
                .collect();
            keep.extend(current.iter().take(want).copied());
            for _ in current.len()..want {
                match self.start_pod(deployment, &owner, hash).await {
                    Ok(pod) => {
                        self.pods.push(pod);
                        keep.push(self.pods.len() - 1);
                    }
                    Err(e) => tracing::warn!(deployment = %owner, error = %e, "cannot start a pod"),
                }
            }
        }
        for (i, pod) in std::mem::take(&mut self.pods).into_iter().enumerate() {
            // Jobs' pods are `converge_jobs`'s.
            if keep.contains(&i) || pod.job.is_some() {
                self.pods.push(pod);
            } else {
                stop(pod, &self.view, None);
            }
        }
    }

    async fn start_pod(
        &mut self,
        deployment: &Deployment,
        owner: &str,
        hash: u64,
    ) -> Result<PodState, String> {
        let owner_ref = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment.name_any(),
            "uid": deployment.uid().unwrap_or_default(), "controller": true,
        });
        self.start_pod_of(
            &deployment.namespace().unwrap_or_default(),
            &deployment.name_any(),
            &deployment.spec.template,
            owner_ref,
            owner,
            hash,
            None,
        )
        .await
    }

    /// Starts a pod of `template` named after `base`, owned by `owner_ref` (`owner` in the
    /// view); `job` for a Job's pod (its containers run once), else a Deployment's.
    #[allow(clippy::too_many_arguments)]
    async fn start_pod_of(
        &mut self,
        namespace: &str,
        base: &str,
        template: &k8s_openapi::api::core::v1::PodTemplateSpec,
        owner_ref: Value,
        owner: &str,
        hash: u64,
        job: Option<JobPod>,
    ) -> Result<PodState, String> {
        let namespace = namespace.to_owned();
        let spec = template.spec.clone().ok_or("no pod spec")?;
        let mut labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        if job.is_some() {
            // As the Job controller labels its pods.
            labels.insert("batch.kubernetes.io/job-name".into(), base.to_owned());
            labels.insert("job-name".into(), base.to_owned());
        }
        let ip = loopback_address(10, &NEXT_POD_IP);
        // Names from this kubelet's own count: the same in every run of a test.
        self.started += 1;
        let n = self.started;
        let name = format!("{base}-{:05x}", (hash as u32 ^ n) & 0xfffff);
        let dir = self.options.dir.join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut pod = PodState {
            name,
            namespace,
            owner: owner.to_owned(),
            template: hash,
            ip,
            dir,
            labels,
            spec,
            containers: Vec::new(),
            ready: false,
            created: Instant::now(),
            reported: None,
            job,
        };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let object = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": pod.name, "namespace": pod.namespace, "labels": pod.labels,
                "ownerReferences": [owner_ref],
            },
            "spec": serde_json::to_value(&pod.spec).unwrap_or(Value::Null),
        });
        let object: Pod = serde_json::from_value(object).map_err(|e| e.to_string())?;
        pods.create(&PostParams::default(), &object)
            .await
            .map_err(|e| e.to_string())?;
        for container in long_running(&pod.spec).cloned().collect::<Vec<_>>() {
            let child = self.spawn(&pod, &container).await?;
            pod.containers.push(Running {
                name: container.name.clone(),
                child,
                restarts: 0,
                restart_at: None,
            });
        }
        tracing::info!(pod = %pod.name, ip = %pod.ip, "kubelet stand-in started a pod");
        Ok(pod)
    }

    /// The pod's kubeconfig: the API stand-in's, acting as the pod's ServiceAccount (`as:`, so
    /// the stand-in authorizes its requests by the stored RBAC objects, as the API server
    /// authorizes a pod's token), in the pod's namespace.
    fn pod_kubeconfig(&self, pod: &PodState, service_account: &str) -> Result<PathBuf, String> {
        let admin = std::fs::read_to_string(&self.options.kubeconfig)
            .map_err(|e| format!("reading {}: {e}", self.options.kubeconfig.display()))?;
        let account = if service_account.is_empty() {
            "default"
        } else {
            service_account
        };
        let mut out = String::new();
        for line in admin.lines() {
            if line.starts_with("    namespace: ") {
                // JSON strings are YAML strings.
                out.push_str(&format!(
                    "    namespace: {}\n",
                    serde_json::Value::String(pod.namespace.clone())
                ));
                continue;
            }
            out.push_str(line);
            out.push('\n');
            if line.starts_with("    token: ") {
                out.push_str(&format!(
                    "    as: {}\n",
                    serde_json::Value::String(format!(
                        "system:serviceaccount:{}:{account}",
                        pod.namespace
                    ))
                ));
            }
        }
        if !out.contains("    as: ") {
            return Err("the stand-in's kubeconfig has no token line to act from".to_owned());
        }
        let path = pod.dir.join("kubeconfig");
        std::fs::write(&path, out).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    }

    async fn spawn(
        &self,
        pod: &PodState,
        container: &Container,
    ) -> Result<tokio::process::Child, String> {
        let reference = container.image.clone().unwrap_or_default();
        let image = self
            .options
            .images
            .iter()
            .find(|i| reference.starts_with(&i.prefix))
            .ok_or_else(|| format!("no program for image {reference}"))?;
        let mut argv = match &container.command {
            Some(command) => command.clone(),
            None => image.entrypoint.clone(),
        };
        match (&container.command, &container.args) {
            (_, Some(args)) => argv.extend(args.iter().cloned()),
            (None, None) => argv.extend(image.cmd.iter().cloned()),
            (Some(_), None) => {}
        }
        let (program, args) = argv.split_first().ok_or("an empty command")?;
        let service_account = pod.spec.service_account_name.clone().unwrap_or_default();
        let facts = PodFacts {
            name: &pod.name,
            namespace: &pod.namespace,
            service_account: &service_account,
            ip: &pod.ip,
        };
        let services = &self.service_ips;
        let ip = pod.ip.clone();
        let rewrite = move |v: &str| env::rewrite(v, &ip, services);
        let vars = env::resolve(&self.client, &facts, container, &rewrite).await?;
        // The termination message: a file of the pod's directory stands for the container's
        // `terminationMessagePath`, wherever the environment names that path.
        let message_path = termination_message_path(container);
        let message_file = termination_message_file(pod, container);
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| {
                if v == message_path {
                    (k, message_file.display().to_string())
                } else {
                    (k, v)
                }
            })
            .collect();
        let kubeconfig = self.pod_kubeconfig(pod, &service_account)?;
        let log = pod.dir.join(format!("{}.log", container.name));
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &pod.dir)
            .env("KUBECONFIG", &kubeconfig)
            .env("FAAS_STATE", pod.dir.join("state"))
            .current_dir(&pod.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let ports = || container.ports.iter().flatten();
        if let Some(port) = ports()
            .find(|p| p.name.as_deref() == Some("http"))
            .or_else(|| ports().next())
        {
            command.env("FAAS_LISTEN", format!("{}:{}", pod.ip, port.container_port));
        }
        command.envs(&self.options.extra_env).envs(&vars);
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {program} for {}: {e}", container.name))?;
        let output = std::sync::Arc::new(tokio::sync::Mutex::new(
            tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .await
                .map_err(|e| e.to_string())?,
        ));
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(timestamp_lines(stdout, std::sync::Arc::clone(&output)));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(timestamp_lines(stderr, output));
        }
        Ok(child)
    }

    /// Restarts what exited, probes readiness.
    async fn supervise(&mut self) {
        let mut restarts = Vec::new();
        for (p, pod) in self.pods.iter_mut().enumerate() {
            if pod.job.is_some() {
                supervise_job(pod);
                continue;
            }
            let mut all_running = true;
            for (c, running) in pod.containers.iter_mut().enumerate() {
                if let Ok(Some(status)) = running.child.try_wait() {
                    all_running = false;
                    match running.restart_at {
                        None => {
                            let backoff = Duration::from_millis(500 << running.restarts.min(4));
                            tracing::info!(pod = %pod.name, container = %running.name, %status, "container exited; restarting");
                            running.restart_at = Some(Instant::now() + backoff);
                        }
                        Some(at) if at <= Instant::now() => restarts.push((p, c)),
                        Some(_) => {}
                    }
                }
            }
            let ready = all_running && probe(pod).await;
            pod.ready = ready;
        }
        for (p, c) in restarts {
            let spec: Vec<Container> = long_running(&self.pods[p].spec).cloned().collect();
            let Some(container) = spec
                .into_iter()
                .find(|x| x.name == self.pods[p].containers[c].name)
            else {
                continue;
            };
            match self.spawn(&self.pods[p], &container).await {
                Ok(child) => {
                    let running = &mut self.pods[p].containers[c];
                    running.child = child;
                    running.restarts += 1;
                    running.restart_at = None;
                }
                Err(e) => tracing::warn!(error = %e, "cannot restart a container"),
            }
        }
    }

    async fn report_pods(&mut self) {
        // Pods that are no longer wanted: their object goes, their processes are stopped.
        let listed: Vec<Pod> = match Api::<Pod>::all(self.client.clone())
            .list(&ListParams::default())
            .await
        {
            Ok(l) => l.items,
            Err(_) => return,
        };
        for object in &listed {
            let mine = self
                .pods
                .iter()
                .any(|p| Some(&p.name) == object.metadata.name.as_ref());
            if !mine {
                let api: Api<Pod> =
                    Api::namespaced(self.client.clone(), &object.namespace().unwrap_or_default());
                let _ = api
                    .delete(&object.name_any(), &DeleteParams::default())
                    .await;
            }
        }
        // Pods whose object was deleted through the API (a test's `kubectl delete pod
        // --grace-period=0 --force`, the stand-in having no graceful deletion): killed now.
        let (kept, deleted): (Vec<PodState>, Vec<PodState>) =
            std::mem::take(&mut self.pods).into_iter().partition(|p| {
                listed
                    .iter()
                    .any(|o| o.metadata.name.as_ref() == Some(&p.name))
            });
        self.pods = kept;
        for pod in deleted {
            if pod.job.is_some() {
                stop(pod, &self.view, Some(Duration::ZERO));
                continue;
            }
            // Its Deployment gone too: deleted by the owner GC with it, which on a real
            // cluster is a graceful deletion.
            let (namespace, deployment) = pod.owner.split_once('/').unwrap_or_default();
            let owner_left = Api::<Deployment>::namespaced(self.client.clone(), namespace)
                .get_opt(deployment)
                .await
                .ok()
                .flatten()
                .is_some();
            stop(pod, &self.view, owner_left.then_some(Duration::ZERO));
        }
        for pod in &mut self.pods {
            let status = match &pod.job {
                Some(job) => job_pod_status(pod, job),
                None => json!({"status": {
                    "phase": "Running",
                    "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "hostIP": "127.0.0.1",
                    "conditions": [{"type": "Ready", "status": if pod.ready { "True" } else { "False" }}],
                    "containerStatuses": pod.containers.iter().map(|c| json!({
                        "name": c.name, "ready": pod.ready, "restartCount": c.restarts,
                        "image": "", "imageID": "", "started": c.restart_at.is_none(),
                    })).collect::<Vec<_>>(),
                }}),
            };
            if pod.reported.as_ref() == Some(&status) {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
            if api
                .patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(&status))
                .await
                .is_ok()
            {
                pod.reported = Some(status);
            }
        }
    }

    /// A pod for each Job that has none and has not ended, once; the pods of Jobs that are
    /// gone (deleted, or their TTL over) are stopped and deleted.
    async fn converge_jobs(&mut self, jobs: &[Job]) {
        let key = |job: &Job| {
            format!(
                "job:{}/{}",
                job.namespace().unwrap_or_default(),
                job.name_any()
            )
        };
        let keys: Vec<String> = jobs.iter().map(key).collect();
        let (kept, gone): (Vec<PodState>, Vec<PodState>) = std::mem::take(&mut self.pods)
            .into_iter()
            .partition(|p| p.job.is_none() || keys.contains(&p.owner));
        self.pods = kept;
        for pod in gone {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
            let _ = api.delete(&pod.name, &DeleteParams::default()).await;
            stop(pod, &self.view, Some(Duration::ZERO));
        }
        self.jobs_started.retain(|k| keys.contains(k));
        for job in jobs {
            let owner = key(job);
            if self.jobs_started.contains(&owner) || job_ended(job) {
                continue;
            }
            let Some(spec) = &job.spec else { continue };
            let deadline = spec
                .active_deadline_seconds
                .map(|s| Instant::now() + Duration::from_secs(s.max(0) as u64));
            let owner_ref = json!({
                "apiVersion": "batch/v1", "kind": "Job", "name": job.name_any(),
                "uid": job.uid().unwrap_or_default(), "controller": true,
            });
            let run = JobPod {
                deadline,
                exited: BTreeMap::new(),
                ended: None,
                reported_job: false,
            };
            self.jobs_started.insert(owner.clone());
            match self
                .start_pod_of(
                    &job.namespace().unwrap_or_default(),
                    &job.name_any(),
                    &spec.template,
                    owner_ref,
                    &owner,
                    0,
                    Some(run),
                )
                .await
            {
                Ok(pod) => self.pods.push(pod),
                Err(e) => tracing::warn!(job = %owner, error = %e, "cannot start a Job's pod"),
            }
        }
    }

    /// A Job whose pod ended gets the condition the Job controller would set: `Complete`,
    /// or `Failed` (`BackoffLimitExceeded`, `DeadlineExceeded`), once.
    async fn report_jobs(&mut self, jobs: &[Job]) {
        for pod in self.pods.iter_mut() {
            let Some(run) = pod.job.as_mut() else {
                continue;
            };
            let Some(end) = run.ended.filter(|_| !run.reported_job) else {
                continue;
            };
            let Some((namespace, name)) = pod
                .owner
                .strip_prefix("job:")
                .and_then(|o| o.split_once('/'))
            else {
                continue;
            };
            if !jobs
                .iter()
                .any(|j| j.name_any() == name && j.namespace().as_deref() == Some(namespace))
            {
                continue;
            }
            let now = jiff::Timestamp::now().to_string();
            let (kind, reason, message) = match end {
                JobEnd::Complete => ("Complete", "Completed", "the Job completed"),
                JobEnd::Failed => (
                    "Failed",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ),
                JobEnd::DeadlineExceeded => (
                    "Failed",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                ),
            };
            let counts = if end == JobEnd::Complete {
                json!({"succeeded": 1, "failed": 0})
            } else {
                json!({"succeeded": 0, "failed": 1})
            };
            let mut status = json!({"status": {
                "active": 0, "completionTime": if end == JobEnd::Complete { Some(&now) } else { None },
                "conditions": [{"type": kind, "status": "True", "reason": reason,
                                "message": message, "lastTransitionTime": now}],
            }});
            if let (Some(out), Some(counts)) =
                (status["status"].as_object_mut(), counts.as_object())
            {
                out.extend(counts.clone());
            }
            let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
            if api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
                .await
                .is_ok()
            {
                run.reported_job = true;
            }
        }
    }

    async fn report_deployments(&mut self, deployments: &[Deployment]) {
        for deployment in deployments {
            let owner = format!(
                "{}/{}",
                deployment.namespace().unwrap_or_default(),
                deployment.name_any()
            );
            let pods: Vec<&PodState> = self.pods.iter().filter(|p| p.owner == owner).collect();
            let ready = pods.iter().filter(|p| p.ready).count();
            let status = json!({"status": {
                "observedGeneration": deployment.metadata.generation,
                "replicas": pods.len(), "updatedReplicas": pods.len(),
                "readyReplicas": ready, "availableReplicas": ready,
                "unavailableReplicas": pods.len() - ready,
            }});
            if self.deployment_status.get(&owner) == Some(&status) {
                continue;
            }
            let api: Api<Deployment> = Api::namespaced(
                self.client.clone(),
                &deployment.namespace().unwrap_or_default(),
            );
            if api
                .patch_status(
                    &deployment.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&status),
                )
                .await
                .is_ok()
            {
                self.deployment_status.insert(owner, status);
            }
        }
    }

    async fn publish_endpoints(&mut self, services: &[Service]) {
        let mut backends = BTreeMap::new();
        for service in services {
            let Some(spec) = &service.spec else { continue };
            let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
                continue;
            };
            let namespace = service.namespace().unwrap_or_default();
            let key = format!("{}.{namespace}", service.name_any());
            let members: Vec<&PodState> = self
                .pods
                .iter()
                .filter(|p| p.namespace == namespace)
                .filter(|p| selector.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
                .collect();
            let mut ports = Vec::new();
            for port in spec.ports.iter().flatten() {
                let target = members
                    .first()
                    .and_then(|p| target_port(&p.spec, port.target_port.as_ref(), port.port));
                let Some(target) = target else { continue };
                ports.push(json!({"name": port.name.clone().unwrap_or_default(), "port": target, "protocol": "TCP"}));
                let ready: Vec<std::net::SocketAddr> = members
                    .iter()
                    .filter(|p| p.ready)
                    .filter_map(|p| format!("{}:{target}", p.ip).parse().ok())
                    .collect();
                backends.insert((key.clone(), port.port as u16), ready);
            }
            let slice_name = format!("{}-standin", service.name_any());
            // As the EndpointSlice controller labels its slices: the Service's labels, its
            // name, and the controller's own mark (which the gateway selects on).
            let mut labels = service.labels().clone();
            labels.insert("kubernetes.io/service-name".into(), service.name_any());
            labels.insert(
                "endpointslice.kubernetes.io/managed-by".into(),
                SLICE_MANAGER.into(),
            );
            let slice = json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {
                    "name": slice_name, "namespace": namespace,
                    "labels": labels,
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Service",
                        "name": service.name_any(), "uid": service.uid().unwrap_or_default()}],
                },
                "addressType": "IPv4",
                "endpoints": members.iter().map(|p| json!({
                    "addresses": [p.ip],
                    "conditions": {"ready": p.ready, "serving": p.ready, "terminating": false},
                    "targetRef": {"kind": "Pod", "name": p.name, "namespace": p.namespace},
                    "nodeName": NODE_NAME,
                })).collect::<Vec<_>>(),
                "ports": ports,
            });
            if self.slices.get(&key) == Some(&slice) {
                continue;
            }
            let api: Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
                Api::namespaced(self.client.clone(), &namespace);
            // A replace, not a merge: endpoints that left must leave the list.
            let _ = api.delete(&slice_name, &DeleteParams::default()).await;
            let parsed = serde_json::from_value(slice.clone());
            if let Ok(parsed) = parsed
                && api.create(&PostParams::default(), &parsed).await.is_ok()
            {
                self.slices.insert(key, slice);
            }
        }
        *self
            .proxy
            .backends
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = backends;
    }

    fn refresh_view(&self) {
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        view.ready.clear();
        view.pods.clear();
        view.pids.clear();
        let mut pods: Vec<&PodState> = self.pods.iter().collect();
        pods.sort_by_key(|p| p.created);
        for pod in pods {
            view.pods
                .entry(pod.owner.clone())
                .or_default()
                .push(pod.name.clone());
            if pod.ready {
                view.ready
                    .entry(pod.owner.clone())
                    .or_default()
                    .push(pod.ip.clone());
            }
            view.pids.insert(
                pod.name.clone(),
                pod.containers.iter().filter_map(|c| c.child.id()).collect(),
            );
        }
        view.services = self.service_ips.clone();
        let terminating: Vec<(String, String)> = view
            .terminating
            .iter()
            .map(|(pod, owner)| (pod.clone(), owner.clone()))
            .collect();
        for (pod, owner) in terminating {
            view.pods.entry(owner).or_default().push(pod);
        }
    }
}

/// Copies a container's output to its log file a line at a time, each line prefixed with the
/// time it was read, as a container runtime stores logs (the API's `pods/log` answers
/// `sinceTime` and `timestamps` from it: [`Kubelet::log_source`]).
async fn timestamp_lines(
    stream: impl tokio::io::AsyncRead + Unpin,
    log: Arc<tokio::sync::Mutex<tokio::fs::File>>,
) {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let entry = format!(
                    "{:.9} {}\n",
                    jiff::Timestamp::now(),
                    text.trim_end_matches('\n')
                );
                let _ = log.lock().await.write_all(entry.as_bytes()).await;
            }
        }
    }
}

/// Stops a pod as the kubelet does: SIGTERM to each container, SIGKILL to those still running
/// after its grace period (`grace`, or the pod's own).
fn stop(pod: PodState, view: &Arc<Mutex<View>>, grace: Option<Duration>) {
    let grace = grace.unwrap_or_else(|| {
        Duration::from_secs(
            pod.spec
                .termination_grace_period_seconds
                .unwrap_or(30)
                .max(0) as u64,
        )
        .min(MAX_GRACE)
    });
    tracing::info!(pod = %pod.name, "kubelet stand-in stops a pod");
    let name = pod.name.clone();
    view.lock()
        .unwrap_or_else(|e| e.into_inner())
        .terminating
        .insert(name.clone(), pod.owner.clone());
    let view = Arc::clone(view);
    tokio::spawn(async move {
        let mut children: Vec<tokio::process::Child> =
            pod.containers.into_iter().map(|c| c.child).collect();
        for child in children.iter().filter(|_| !grace.is_zero()) {
            if let Some(pid) = child
                .id()
                .and_then(|p| rustix::process::Pid::from_raw(p as i32))
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        for child in &mut children {
            if tokio::time::timeout_at(deadline, child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        view.lock()
            .unwrap_or_else(|e| e.into_inner())
            .terminating
            .remove(&name);
    });
}

/// Whether a Job already has its final condition.
fn job_ended(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|all| {
            all.iter()
                .any(|c| matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True")
        })
}

/// Where the container's runtime would keep its termination message.
fn termination_message_path(container: &Container) -> String {
    container
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".to_owned())
}

/// The file of the pod's directory that stands for it.
fn termination_message_file(pod: &PodState, container: &Container) -> PathBuf {
    pod.dir.join(format!("{}.termination-log", container.name))
}

/// A Job's pod: containers that ended are recorded, never restarted; past the Job's deadline
/// the rest are killed (as the Job controller deletes the pod of a Job past
/// `activeDeadlineSeconds`).
fn supervise_job(pod: &mut PodState) {
    let Some(run) = pod.job.as_mut() else { return };
    if run.ended.is_some() {
        return;
    }
    for running in &mut pod.containers {
        if run.exited.contains_key(&running.name) {
            continue;
        }
        if let Ok(Some(status)) = running.child.try_wait() {
            use std::os::unix::process::ExitStatusExt as _;
            let signal = status.signal();
            let code = status.code().unwrap_or(128 + signal.unwrap_or(0));
            tracing::info!(pod = %pod.name, container = %running.name, %status, "a Job's container ended");
            run.exited.insert(running.name.clone(), (code, signal));
        }
    }
    if run.exited.len() == pod.containers.len() {
        let failed = run.exited.values().any(|(code, _)| *code != 0);
        run.ended = Some(if failed {
            JobEnd::Failed
        } else {
            JobEnd::Complete
        });
    } else if run.deadline.is_some_and(|d| d <= Instant::now()) {
        for running in &mut pod.containers {
            let _ = running.child.start_kill();
        }
        run.ended = Some(JobEnd::DeadlineExceeded);
    }
}

/// The status of a Job's pod: its containers running or terminated (exit code, signal, the
/// termination message), the phase from them.
fn job_pod_status(pod: &PodState, run: &JobPod) -> Value {
    let statuses: Vec<Value> = pod
        .spec
        .containers
        .iter()
        .map(|container| match run.exited.get(&container.name) {
            Some((code, signal)) => {
                let message = std::fs::read(termination_message_file(pod, container))
                    .map(|bytes| {
                        String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned()
                    })
                    .unwrap_or_default();
                json!({"name": container.name, "ready": false, "restartCount": 0,
                "image": "", "imageID": "", "started": false,
                "state": {"terminated": {
                    "exitCode": code, "signal": signal,
                    "reason": if *code == 0 { "Completed" } else { "Error" },
                    "message": (!message.is_empty()).then_some(message),
                }}})
            }
            None => json!({"name": container.name, "ready": true, "restartCount": 0,
                           "image": "", "imageID": "", "started": true,
                           "state": {"running": {}}}),
        })
        .collect();
    let phase = match run.ended {
        None => "Running",
        Some(JobEnd::Complete) => "Succeeded",
        Some(JobEnd::Failed | JobEnd::DeadlineExceeded) => "Failed",
    };
    json!({"status": {
        "phase": phase,
        "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "hostIP": "127.0.0.1",
        "conditions": [{"type": "Ready", "status": if run.ended.is_none() { "True" } else { "False" }}],
        "containerStatuses": statuses,
    }})
}

/// The container port a Service's `targetPort` names, in a pod of `spec`.
fn target_port(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    target: Option<&IntOrString>,
    port: i32,
) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}

/// The containers that run for the pod's life: native sidecars (init containers with
/// `restartPolicy: Always`), then the containers.
fn long_running(spec: &k8s_openapi::api::core::v1::PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .chain(&spec.containers)
}

/// Whether every readiness probe of the pod passes (an HTTP GET answered 200..400), or, for a
/// container without one, its first port accepts a connection.
async fn probe(pod: &PodState) -> bool {
    for container in long_running(&pod.spec) {
        let get = container
            .readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref());
        let ok = match get {
            Some(get) => {
                let Some(port) = target_port(&pod.spec, Some(&get.port), 0) else {
                    return false;
                };
                http_ok(&pod.ip, port, get.path.as_deref().unwrap_or("/")).await
            }
            None => match container.ports.iter().flatten().next() {
                Some(port) => {
                    tokio::net::TcpStream::connect((pod.ip.as_str(), port.container_port as u16))
                        .await
                        .is_ok()
                }
                None => true,
            },
        };
        if !ok {
            return false;
        }
    }
    true
}

async fn http_ok(ip: &str, port: i32, path: &str) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((ip, port as u16))
            .await
            .ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        let code: u16 = std::str::from_utf8(&head[9..12]).ok()?.parse().ok()?;
        Some((200..400).contains(&code))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
