//! Cron in a cluster: `faas-schedule`'s scheduler (the same code as local mode: cron semantics,
//! concurrency policy, starting deadlines, catch-up, retries) inside the controller, firing
//! only while this replica holds the Lease, with `FunctionRun` resources as the run store.
//!
//! One scheduler per namespace that has schedules (each with its own [`KubeRunStore`]), all
//! fed from one watch of Functions. A run calls the function through the gateway
//! ([`GatewayTarget`]), as every other request does: the gateway places it (the Service, the
//! Lambda sidecar that turns it into an EventBridge scheduled event, the pool), admits it,
//! counts it, and holds it while a function at zero gets a replica.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use faas_api::{Function, FunctionRun, OPTIONS_ANNOTATION, PAYLOAD_ANNOTATION, REQUESTED_LABEL};
use faas_invoke::{CallContext, ResponseBody};
use faas_schedule::plan::MANUAL;
use faas_schedule::{
    Clock, CronMetrics, FunctionTarget, Leadership, Runner, Scheduler, SchedulerOptions, jobs_of,
};
use futures::StreamExt as _;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use crate::run_log::PodLogs;
use crate::runs::{KubeRunStore, SCHEDULER_MANAGER};

/// Calls the functions of one namespace through the gateway's admin listener:
/// `{gateway}/function/<name>.<namespace>/...`, the invocation path of every other request
/// (admission, metrics, the scale-from-zero hold that wakes a function at zero, placement),
/// showing the platform token so the gateway believes its run headers, and asking for the
/// run's own timeout ([`faas_api::contract::TIMEOUT_HEADER`]).
pub struct GatewayTarget {
    namespace: String,
    gateway: String,
    token: Option<http::HeaderValue>,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    /// Where a container function's run log tail is read from (see [`crate::run_log`]).
    pod_logs: Option<PodLogs>,
}

/// Header `name` of `headers` as text, if it is.
fn header_text(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The most of a container function's answer held while its run's log tail is read; a
/// larger one streams on without a tail.
const MAX_HELD_FOR_TAIL: usize = 1 << 20;

/// The platform's JSON error as a response (`{"error", "reason", "status"}`), what a run
/// that never reached its function records.
pub(crate) fn error_response(
    status: u16,
    reason: &str,
    message: &str,
) -> http::Response<ResponseBody> {
    let body = faas_api::contract::error_body(status, reason, message);
    let mut response = http::Response::new(faas_invoke::full_body(body.to_string()));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

impl GatewayTarget {
    /// A target for the functions of `namespace` through the gateway at `gateway` (its admin
    /// listener's base URL), showing `token`.
    pub fn new(namespace: &str, gateway: &str, token: Option<&str>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        GatewayTarget {
            namespace: namespace.to_owned(),
            gateway: gateway.trim_end_matches('/').to_owned(),
            token: token
                .and_then(|t| http::HeaderValue::from_str(t).ok())
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                }),
            http: HttpClient::builder(TokioExecutor::new()).build(connector),
            pod_logs: None,
        }
    }

    /// Reads container functions' run log tails from their pods' logs with `logs`.
    pub fn with_pod_logs(mut self, logs: PodLogs) -> Self {
        self.pod_logs = Some(logs);
        self
    }

    /// The answer of `function`'s run, with its log tail given to `sink`: from the pool pod
    /// that ran it (a header), or read from the log of the container function's pod the
    /// gateway names, once the answer has ended.
    async fn with_tail(
        &self,
        function: &str,
        response: http::Response<ResponseBody>,
        sink: &faas_invoke::LogTailSink,
        sent: jiff::Timestamp,
    ) -> http::Response<ResponseBody> {
        // Read before any await: the body is not `Sync`, so no borrow of the response may
        // live across one.
        let (tail, pod) = (
            header_text(response.headers(), faas_api::contract::LOG_TAIL_HEADER),
            header_text(response.headers(), faas_api::contract::POD_HEADER),
        );
        if let Some(tail) = tail.and_then(|v| faas_api::contract::decode_log_tail(&v)) {
            sink.set(tail);
            return response;
        }
        let (Some(pod), Some(logs)) = (pod, &self.pod_logs) else {
            return response;
        };
        let (parts, body) = response.into_parts();
        let answer = match faas_invoke::buffer_whole(body, MAX_HELD_FOR_TAIL).await {
            faas_invoke::Buffered::Whole(answer) => answer,
            faas_invoke::Buffered::Streaming(body) => {
                return http::Response::from_parts(parts, body);
            }
        };
        let answered = jiff::Timestamp::now();
        tokio::time::sleep(crate::run_log::SETTLE).await;
        match logs
            .tail(&self.namespace, function, &pod, sent, answered)
            .await
        {
            Ok(tail) => sink.set(tail),
            Err(e) => {
                tracing::warn!(function, namespace = %self.namespace, error = %e, "cron: no log tail for the run")
            }
        }
        http::Response::from_parts(parts, faas_invoke::full_body(answer))
    }

    /// Where a run of `function` goes: its namespaced name on the gateway, which every
    /// Function has whoever holds the short name.
    pub fn url_of(&self, function: &str, path: &str) -> String {
        format!(
            "{}/function/{function}.{}{path}",
            self.gateway, self.namespace
        )
    }
}

impl FunctionTarget for GatewayTarget {
    fn call(
        &self,
        function: &str,
        request: http::Request<Bytes>,
        ctx: CallContext,
    ) -> Pin<Box<dyn Future<Output = http::Response<ResponseBody>> + Send + '_>> {
        let function = function.to_owned();
        Box::pin(async move {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let url = self.url_of(&function, &path);
            let (mut parts, body) = request.into_parts();
            parts.uri = match url.parse() {
                Ok(uri) => uri,
                Err(e) => return error_response(502, "BadUrl", &format!("{url}: {e}")),
            };
            if let Some(token) = &self.token {
                parts
                    .headers
                    .insert(faas_api::contract::PLATFORM_TOKEN_HEADER, token.clone());
                // The run's id as the call's: the function's log lines carry it.
                if let Ok(id) = http::HeaderValue::from_str(&ctx.call_id) {
                    parts.headers.insert("x-call-id", id);
                }
            }
            if let Some(timeout) = ctx.timeout
                && let Ok(value) =
                    http::HeaderValue::from_str(&faas_api::contract::call_timeout_value(timeout))
            {
                parts
                    .headers
                    .insert(faas_api::contract::TIMEOUT_HEADER, value);
            }
            // The attempt's own deadline (timeout, retries) bounds the call: dropping this
            // future on timeout closes the connection.
            let sent = jiff::Timestamp::now();
            match self
                .http
                .request(http::Request::from_parts(parts, Full::new(body)))
                .await
            {
                Ok(response) => {
                    let response = response.map(|b| {
                        b.map_err(|e| -> faas_invoke::BoxError { Box::new(e) })
                            .boxed_unsync()
                    });
                    match &ctx.log_tail {
                        Some(sink) => self.with_tail(&function, response, sink, sent).await,
                        None => response,
                    }
                }
                Err(e) if e.is_connect() => error_response(
                    503,
                    "GatewayUnavailable",
                    &format!(
                        "the gateway at {} did not accept a connection: {e}",
                        self.gateway
                    ),
                ),
                Err(e) => error_response(502, "CallFailed", &format!("{url}: {e}")),
            }
        })
    }
}

/// Where a namespace's runs go: a `mode: job` function's to a Kubernetes Job
/// ([`crate::jobs`]), every other function's through the gateway.
pub struct RunTarget {
    pub gateway: GatewayTarget,
    pub jobs: crate::jobs::JobTarget,
}

impl FunctionTarget for RunTarget {
    fn call(
        &self,
        function: &str,
        request: http::Request<Bytes>,
        ctx: CallContext,
    ) -> Pin<Box<dyn Future<Output = http::Response<ResponseBody>> + Send + '_>> {
        if self.jobs.job_function(function).is_some() {
            self.jobs.call(function, request, ctx)
        } else {
            self.gateway.call(function, request, ctx)
        }
    }
}

/// The schedulers of every namespace, following the Functions they schedule.
pub struct ClusterCron {
    client: Client,
    functions: Store<Function>,
    defaults: Arc<crate::render::ClusterDefaults>,
    leader: watch::Receiver<bool>,
    metrics: CronMetrics,
    owner: String,
    gateway: String,
    token: Option<String>,
    schedulers: Mutex<HashMap<String, Arc<Scheduler>>>,
    /// Set by [`ClusterCron::shutdown`]: runs of jobs it cuts off keep their Jobs.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    /// Requested runs handed to a scheduler (by namespace/name), so that a watch re-list
    /// does not start one twice; an entry leaves when its run ends.
    taken: Arc<Mutex<std::collections::HashSet<String>>>,
    /// Where job runs' whole logs are kept (`controller.runLogs`), when configured.
    archive: Option<Arc<crate::log_archive::LogArchive>>,
}

impl ClusterCron {
    /// Keeps job runs' whole logs in `archive` (and deletes them with pruned runs).
    pub fn with_archive(mut self, archive: Option<crate::log_archive::LogArchive>) -> Self {
        self.archive = archive.map(Arc::new);
        self
    }

    /// Schedulers for the Functions in `functions`, firing while `leader` says so; the Jobs
    /// of job functions' runs rendered with `defaults`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        functions: Store<Function>,
        defaults: Arc<crate::render::ClusterDefaults>,
        leader: watch::Receiver<bool>,
        metrics: CronMetrics,
        owner: String,
        gateway: String,
        token: Option<String>,
    ) -> Self {
        ClusterCron {
            client,
            functions,
            defaults,
            leader,
            metrics,
            owner,
            gateway,
            token,
            schedulers: Mutex::new(HashMap::new()),
            stopping: Arc::default(),
            taken: Arc::default(),
            archive: None,
        }
    }

    /// Gives every namespace's scheduler the schedules its Functions have now (starting a
    /// scheduler for a namespace that gains its first schedule).
    pub fn sync(&self) {
        let mut by_namespace: HashMap<String, Vec<_>> = HashMap::new();
        for function in self.functions.state() {
            // What a cluster refuses (host directories, unpinned artifacts) never runs here either.
            if faas_api::validate_for_cluster(&function, None).is_err() {
                continue;
            }
            let namespace = function.namespace().unwrap_or_default();
            by_namespace
                .entry(namespace)
                .or_default()
                .extend(jobs_of(&function));
        }
        let mut schedulers = self.schedulers.lock().unwrap_or_else(|e| e.into_inner());
        for (namespace, scheduler) in schedulers.iter() {
            if !by_namespace.contains_key(namespace) {
                scheduler.set_jobs(Vec::new());
            }
        }
        for (namespace, jobs) in by_namespace {
            if jobs.is_empty() && !schedulers.contains_key(&namespace) {
                continue;
            }
            let scheduler = schedulers
                .entry(namespace.clone())
                .or_insert_with(|| self.start(&namespace));
            scheduler.set_jobs(jobs);
        }
    }

    fn start(&self, namespace: &str) -> Arc<Scheduler> {
        tracing::info!(namespace, "cron: scheduler started for the namespace");
        let runner = Runner::new(
            Arc::new(
                KubeRunStore::new(self.client.clone(), namespace)
                    .with_archive(self.archive.clone()),
            ),
            Arc::new(RunTarget {
                gateway: GatewayTarget::new(namespace, &self.gateway, self.token.as_deref())
                    .with_pod_logs(PodLogs::new(self.client.clone())),
                jobs: crate::jobs::JobTarget::new(
                    self.client.clone(),
                    namespace,
                    self.functions.clone(),
                    Arc::clone(&self.defaults),
                )
                .with_stopping(Arc::clone(&self.stopping))
                .with_archive(self.archive.clone()),
            }),
            self.metrics.clone(),
            Clock::System,
            self.owner.clone(),
        );
        runner.set_chains(Arc::new(crate::chain::KubeChains::new(
            self.client.clone(),
            namespace,
            self.functions.clone(),
        )));
        runner.set_secrets(Arc::new(crate::secrets::NamespaceSecrets::new(
            self.client.clone(),
            namespace,
        )));
        Scheduler::start(
            runner,
            SchedulerOptions {
                leadership: Leadership::Watch(self.leader.clone()),
                standby_retry: Duration::from_secs(1),
            },
        )
    }

    /// Starts a run someone asked for by creating `run` (labelled [`REQUESTED_LABEL`], no
    /// status): the namespace's scheduler runs it under that name, with the schedule's
    /// settings when it names one and the payload of its annotation.
    pub fn take_request(&self, run: &FunctionRun) {
        let namespace = run.namespace().unwrap_or_default();
        let id = run.name_any();
        let key = format!("{namespace}/{id}");
        if !self
            .taken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone())
        {
            return;
        }
        let payload = match run.annotations().get(PAYLOAD_ANNOTATION) {
            None => None,
            Some(text) => match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                Ok(bytes) => Some(Bytes::from(bytes)),
                Err(_) => {
                    self.refuse(
                        &namespace,
                        &id,
                        format!("annotation {PAYLOAD_ANNOTATION} is not base64"),
                    );
                    return;
                }
            },
        };
        let schedule = Some(run.spec.schedule.as_str()).filter(|s| *s != MANUAL);
        let options = match self.requested_options(run, &namespace, schedule) {
            Ok(options) => options,
            Err(message) => {
                self.refuse(&namespace, &id, message);
                return;
            }
        };
        let scheduler = Arc::clone(
            self.schedulers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(namespace.clone())
                .or_insert_with(|| self.start(&namespace)),
        );
        match scheduler.run_requested(
            &run.spec.function,
            schedule,
            payload,
            Some(options),
            id.clone(),
            match run.spec.trigger.as_str() {
                faas_api::webhook::TRIGGER => faas_schedule::Trigger::Webhook,
                _ => faas_schedule::Trigger::Manual,
            },
            run.spec
                .parent_run
                .clone()
                .map(|parent| faas_api::chain::Parent {
                    run: parent,
                    depth: run.spec.chain_depth,
                }),
        ) {
            Ok(handle) => {
                tracing::info!(namespace, run = %id, function = %run.spec.function, "cron: requested run started");
                let taken = Arc::clone(&self.taken);
                tokio::spawn(async move {
                    let _ = handle.done.await;
                    taken.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                });
            }
            Err(e) => self.refuse(&namespace, &id, e.to_string()),
        }
    }

    /// The options of a requested run: its annotation's values over its schedule's, resolved
    /// against the Function's declarations, or why they are refused.
    fn requested_options(
        &self,
        run: &FunctionRun,
        namespace: &str,
        schedule: Option<&str>,
    ) -> Result<faas_api::options::Resolved, String> {
        let given: std::collections::BTreeMap<String, serde_json::Value> =
            match run.annotations().get(OPTIONS_ANNOTATION) {
                None => Default::default(),
                Some(text) => serde_json::from_str(text).map_err(|e| {
                    format!("annotation {OPTIONS_ANNOTATION} is not a JSON object: {e}")
                })?,
            };
        let key = reflector::ObjectRef::<Function>::new(&run.spec.function).within(namespace);
        let Some(function) = self.functions.get(&key) else {
            // The scheduler refuses it, naming the function.
            return Ok(Default::default());
        };
        faas_api::options::for_run(&function, schedule, &given).map_err(|e| e.to_string())
    }

    /// Answers a request that cannot run: Failed, with the reason, and no longer a request.
    fn refuse(&self, namespace: &str, id: &str, message: String) {
        tracing::warn!(namespace, run = %id, %message, "cron: refused a requested run");
        let runs: Api<FunctionRun> = Api::namespaced(self.client.clone(), namespace);
        let id = id.to_owned();
        tokio::spawn(async move {
            let status = serde_json::json!({
                "apiVersion": faas_api::API_VERSION,
                "kind": "FunctionRun",
                "status": {"phase": "Failed", "message": message},
            });
            let params = kube::api::PatchParams::apply(SCHEDULER_MANAGER).force();
            if let Err(e) = runs
                .patch_status(&id, &params, &kube::api::Patch::Apply(&status))
                .await
            {
                tracing::warn!(run = %id, error = %e, "cron: could not mark a refused run");
            }
            let unlabel = serde_json::json!({"metadata": {"labels": {REQUESTED_LABEL: null}}});
            let _ = runs
                .patch(&id, &Default::default(), &kube::api::Patch::Merge(&unlabel))
                .await;
        });
    }

    /// Stops every scheduler; runs in flight get `grace`. The Jobs of job runs it cuts off
    /// go on (the next leader follows them).
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        let all: Vec<_> = self
            .schedulers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        futures::future::join_all(all.iter().map(|s| s.shutdown(grace))).await;
    }
}

/// Watches every Function into a store and keeps `cron` in step with it. Runs until the
/// watch ends (it retries on its own; it ends only when the process stops).
pub async fn follow(
    client: Client,
    cron: Arc<ClusterCron>,
    writer: reflector::store::Writer<Function>,
) {
    let api: Api<Function> = Api::all(client);
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer);
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            // The initial list arrives object by object: sync once it is complete.
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            // A change, a deletion, or the end of a (re)list.
            Ok(_) => cron.sync(),
            Err(e) => tracing::warn!(error = %e, "cron: watching Functions failed; retrying"),
        }
    }
}

/// Hands the runs people ask for (`faas run` against the cluster) to the schedulers: a watch
/// of FunctionRuns labelled [`REQUESTED_LABEL`]. Started once this replica leads.
pub async fn follow_requests(client: Client, cron: Arc<ClusterCron>) {
    let api: Api<FunctionRun> = Api::all(client);
    let stream = watcher(api, watcher::Config::default().labels(REQUESTED_LABEL))
        .default_backoff()
        .applied_objects();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(run) if run.status.is_none() => cron.take_request(&run),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cron: watching requested runs failed; retrying"),
        }
    }
}
