//! The platform state shared by every request: registry, WASM runtime, metrics, lifecycle.
//! Also the one place where a `Function` plus artifact bytes becomes a servable [`Entry`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use faas_api::Function;
use faas_api::network::OutboundPolicy;
use faas_runtime::wasm::{ArtifactKind, FunctionSettings, WasmConfig, WasmRuntime};

use crate::admission::Admission;
use crate::metrics::Metrics;
use crate::registry::{Entry, Loaded, Origin, Registry};

/// What this process is in the platform. The request path is the same in every role; what
/// differs is where functions come from, which event sources run here, and whether the
/// management API may change anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `faas up`: everything in one process (HTTP, cron, SQS, management).
    Local,
    /// `faas-runtime serve`: a runtime pool pod hosting WASM functions (HTTP and SQS; cron
    /// runs in the controller and calls in through HTTP).
    Pool,
    /// `faas-runtime sidecar`: beside one container function in its pod. The function's
    /// process runs in the other container; this serves its Lambda Runtime API on
    /// `runtime_api`, its HTTP front, its SQS pollers and metrics.
    Sidecar { runtime_api: std::net::SocketAddr },
    /// `faas-gateway --cluster`: the edge behind the ALB. Functions come from `Function`
    /// resources and run in pods; this forwards to them (scale from zero included). Its
    /// management API is read-only and only on the admin listener.
    Cluster,
}

impl Role {
    /// `local`, `pool` or `sidecar`, as `/system/info` says.
    pub fn name(self) -> &'static str {
        match self {
            Role::Local => "local",
            Role::Pool => "pool",
            Role::Sidecar { .. } => "sidecar",
            Role::Cluster => "cluster",
        }
    }

    /// Whether the management API may deploy and delete (local mode only: in a cluster,
    /// functions come from `Function` resources).
    pub fn manages_functions(self) -> bool {
        self == Role::Local
    }

    /// Whether requests come through the cluster gateway (runtime pools, sidecars): the call
    /// id and mount point it sends are kept, so a function logs the id its caller got.
    pub fn behind_gateway(self) -> bool {
        matches!(self, Role::Pool | Role::Sidecar { .. })
    }

    /// Whether callers of a function see the detail of the platform's errors (a trap's
    /// backtrace, why it is not ready): only in local mode, where the caller is the
    /// developer. Runtime pods and the cluster gateway log it with the call id instead.
    pub fn shows_error_detail(self) -> bool {
        matches!(self, Role::Local)
    }

    /// Whether this process serves the dashboard: `faas up` and the cluster gateway (on its
    /// admin listener); never a runtime pod, which a load balancer may reach.
    pub fn has_dashboard(self) -> bool {
        matches!(self, Role::Local | Role::Cluster)
    }

    /// Whether `/system/functions/{name}` shows `spec.env` values. Never in a runtime pool:
    /// its functions belong to many teams, and its `/system` has no reader that needs them
    /// (the cluster's own view is the `Function` resource, under Kubernetes RBAC); a value
    /// that is not served cannot leak through any path to the pod.
    pub fn shows_env(self) -> bool {
        self != Role::Pool
    }

    /// Whether `/readyz` also waits for every function to be able to serve: a pod that
    /// exists for one function is not ready before that function is.
    pub fn ready_with_functions(self) -> bool {
        matches!(self, Role::Sidecar { .. })
    }
}

/// Gateway settings.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// What this process is.
    pub role: Role,
    /// State directory: compiled-artifact cache, uploaded artifacts and manifests.
    pub state_dir: PathBuf,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Largest management-API upload (manifest + artifact).
    pub max_upload_bytes: usize,
    /// Request bytes all bodies together may hold in memory (`--body-budget`).
    pub body_budget: u64,
    /// Longest a request waits for a concurrency slot before 429.
    pub max_queue_wait: Duration,
    /// Serve `/system/...` to non-loopback clients. Off by default: the management API of
    /// local mode has no authentication of its own (cluster mode uses Kubernetes RBAC).
    pub remote_management: bool,
    /// The bearer token remote management requires (`--management-token`); see
    /// [`crate::guard`].
    pub management_token: Option<String>,
    /// WASM executor settings.
    pub wasm: WasmConfig,
    /// The cluster's own address ranges that are not private by their address (pod and
    /// service CIDRs of a VPC with public addresses): pool guests treat them as internal.
    pub internal_cidrs: Vec<faas_api::network::Cidr>,
}

impl GatewayConfig {
    /// Defaults with state under `state_dir`.
    pub fn new(state_dir: PathBuf) -> Self {
        let wasm = WasmConfig {
            cache_dir: Some(state_dir.join("cache")),
            ..WasmConfig::default()
        };
        Self {
            role: Role::Local,
            state_dir,
            shutdown_grace: Duration::from_secs(30),
            max_upload_bytes: 128 << 20,
            body_budget: crate::body::DEFAULT_BODY_BUDGET,
            max_queue_wait: Duration::from_secs(10),
            remote_management: false,
            management_token: None,
            wasm,
            internal_cidrs: Vec::new(),
        }
    }
}

/// Shared state of one gateway process.
pub struct Platform {
    /// Functions.
    pub registry: Registry,
    /// The WASM executor.
    pub runtime: Arc<WasmRuntime>,
    /// Metrics.
    pub metrics: Metrics,
    /// The last hour of invocations by minute (dashboard, `/system/stats`).
    pub stats: crate::stats::Stats,
    /// The budget of request bodies in memory.
    pub bodies: crate::body::BodyBudget,
    /// Settings.
    pub config: GatewayConfig,
    /// Cron scheduler, once started (see [`crate::cron::start`]).
    pub scheduler: std::sync::OnceLock<Arc<faas_runtime::schedule::Scheduler>>,
    /// SQS pollers, once started (see [`crate::sqs::start`]).
    pub sqs: std::sync::OnceLock<Arc<faas_runtime::sqs::Pollers>>,
    /// The queue of async calls (`/async-function/...`), when configured.
    pub async_queue: std::sync::OnceLock<Arc<dyn crate::async_call::AsyncQueue>>,
    ready: AtomicBool,
    draining: AtomicBool,
}

impl Platform {
    /// Builds the runtime and an empty registry.
    pub fn new(config: GatewayConfig) -> anyhow::Result<Arc<Self>> {
        crate::guard::check_settings(&config)?;
        let runtime = WasmRuntime::new(config.wasm.clone())?;
        let metrics = Metrics::new();
        let histogram = metrics.instantiate.with_label_values::<&str>(&[]);
        runtime.on_instantiate(Arc::new(move |took| histogram.observe(took.as_secs_f64())));
        if let Err(err) = runtime.log_limits().register(metrics.registry()) {
            tracing::warn!(error = %err, "guest log rate metric not registered");
        }
        tracing::info!(pooling = runtime.pooling(), "wasm runtime ready");
        Ok(Arc::new(Self {
            registry: Registry::default(),
            runtime,
            metrics,
            stats: crate::stats::Stats::default(),
            bodies: crate::body::BodyBudget::new(config.body_budget),
            config,
            scheduler: std::sync::OnceLock::new(),
            sqs: std::sync::OnceLock::new(),
            async_queue: std::sync::OnceLock::new(),
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        }))
    }

    /// Marks initial loading as done (`/readyz` turns 200).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Marks the platform as draining (`/readyz` turns 503 so load balancers stop sending).
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Ready to take traffic.
    pub fn is_ready(&self) -> bool {
        self.readiness().is_ok()
    }

    /// Ready to take traffic, or why not.
    pub fn readiness(&self) -> Result<(), String> {
        if self.draining.load(Ordering::Acquire) {
            return Err("draining: shutting down".to_owned());
        }
        if !self.ready.load(Ordering::Acquire) {
            return Err("loading functions".to_owned());
        }
        if self.config.role.ready_with_functions() {
            for entry in self.registry.list() {
                let serving = match &entry.state {
                    Ok(loaded) => loaded.invoker.readiness(),
                    Err(reason) => Err(reason.clone()),
                };
                if let Err(reason) = serving {
                    return Err(format!("function {}: {reason}", entry.name()));
                }
            }
        }
        Ok(())
    }

    /// Compiles and wires one function version. The error is the reason shown to users.
    pub async fn prepare(
        &self,
        function: Function,
        artifact: Bytes,
        base_dir: Option<&Path>,
    ) -> Result<Entry, String> {
        let limits = function.spec.limits().map_err(|e| e.to_string())?;
        if let Some(container) = &function.spec.runtime.container {
            let loaded =
                crate::process::load(&function, container, limits, base_dir, self.config.role)?;
            return Ok(self.entry(function, limits, loaded));
        }
        let wasm = function.spec.runtime.wasm.as_ref().ok_or_else(|| {
            "spec.runtime: exactly one of wasm or container must be set".to_owned()
        })?;
        if let Role::Sidecar { .. } = self.config.role {
            return Err(
                "spec.runtime.wasm: faas-runtime sidecar serves a container function; \
                 WASM functions run in runtime pools (faas-runtime serve)"
                    .to_owned(),
            );
        }
        if self.config.role == Role::Pool && !wasm.dirs.is_empty() {
            // A pool pod's filesystem holds its service-account and IRSA tokens, the other
            // tenants' artifacts and the compiled-code cache; the runtime opens host paths
            // with its own authority, so no tenant gets one.
            return Err(
                "spec.runtime.wasm.dirs: host directories are not granted in a runtime pool \
                 (they would be opened with the pool's own authority, shared by every tenant); \
                 dirs are for local mode (faas up) only"
                    .to_owned(),
            );
        }
        let mut outbound = match &function.spec.network {
            Some(network) => OutboundPolicy::from_spec(&network.allowed_outbound_hosts)
                .map_err(|e| e.to_string())?,
            None => OutboundPolicy::deny_all(),
        };
        if self.config.role == Role::Pool {
            outbound = outbound.in_pool_with(&self.config.internal_cidrs);
        }
        let loading = std::time::Instant::now();
        let compiled = match self
            .runtime
            .load_reporting(artifact, wasm.sha256.as_deref())
            .await
        {
            Ok((compiled, source)) => {
                self.metrics
                    .loads
                    .with_label_values(&[source.as_str()])
                    .inc();
                self.stats.record_load(
                    function.metadata.name.as_deref().unwrap_or_default(),
                    source.as_str(),
                    loading.elapsed(),
                );
                compiled
            }
            Err(err) => {
                self.metrics.loads.with_label_values(&["failed"]).inc();
                return Err(err.to_string());
            }
        };
        let name: Arc<str> = function.metadata.name.as_deref().unwrap_or_default().into();
        let dirs = wasm
            .dirs
            .iter()
            .map(|d| {
                let host = PathBuf::from(&d.host_path);
                let host = match base_dir {
                    Some(base) if host.is_relative() => base.join(host),
                    _ => host,
                };
                (host, d.guest_path.clone(), d.read_only)
            })
            .collect::<Vec<_>>();
        self.check_grants(&dirs)?;
        let settings = FunctionSettings {
            name,
            limits,
            env: env_of(&function),
            outbound: Arc::new(outbound),
            dirs,
        };
        let loaded = Loaded {
            sha256: compiled.sha256.clone(),
            kind: match compiled.kind {
                ArtifactKind::Component => "component",
                ArtifactKind::CoreModule => "cgi-module",
            },
            invoker: Arc::new(self.runtime.function(compiled, settings)),
        };
        Ok(self.entry(function, limits, loaded))
    }

    /// Refuses a `dirs` grant that reaches the platform's own files: a host path that is,
    /// contains or is inside the state directory or the compiled-code cache (a guest that
    /// can write there plants native code the runtime would run; one that can read there
    /// reads the cache key and every deployed artifact and manifest). Paths are compared
    /// after resolving symlinks, so a link to the state directory is refused too.
    fn check_grants(&self, dirs: &[(PathBuf, String, bool)]) -> Result<(), String> {
        let protected: Vec<PathBuf> = std::iter::once(&self.config.state_dir)
            .chain(self.config.wasm.cache_dir.as_ref())
            .map(|p| resolved(p))
            .collect();
        for (i, (host, _, _)) in dirs.iter().enumerate() {
            let granted = resolved(host);
            if let Some(own) = protected
                .iter()
                .find(|own| granted.starts_with(own) || own.starts_with(&granted))
            {
                return Err(format!(
                    "spec.runtime.wasm.dirs[{i}].hostPath: {} reaches the platform's own state \
                     directory {} (compiled code, artifacts, the cache key); grant a directory \
                     outside it",
                    host.display(),
                    own.display()
                ));
            }
        }
        Ok(())
    }

    /// A servable entry for `loaded`, with this version's admission control.
    fn entry(&self, function: Function, limits: faas_api::Limits, loaded: Loaded) -> Entry {
        Entry {
            admission: Arc::new(Admission::new(
                limits.concurrency,
                limits.concurrency as usize,
                self.config.max_queue_wait.min(limits.timeout),
            )),
            function,
            limits,
            origin: Origin::Api,
            state: Ok(Arc::new(loaded)),
            last_error: None,
            updated: SystemTime::now(),
        }
    }

    /// Applies a new version from a watched file or startup scan: on failure, a function that
    /// already serves keeps its old version (and reports the error); a new one is registered
    /// as not ready with the reason, so it answers 503 instead of 404.
    pub async fn apply(
        &self,
        function: Function,
        artifact: Result<Bytes, String>,
        origin: Origin,
        base_dir: Option<&Path>,
    ) -> Result<(), String> {
        let name = function.metadata.name.clone().unwrap_or_default();
        let prepared = match artifact {
            Ok(bytes) => self.prepare(function.clone(), bytes, base_dir).await,
            Err(reason) => Err(reason),
        };
        match prepared {
            Ok(mut entry) => {
                entry.origin = origin;
                let sha = entry
                    .state
                    .as_ref()
                    .map(|l| l.sha256.clone())
                    .unwrap_or_default();
                self.registry.upsert(entry);
                tracing::info!(function = %name, sha256 = %sha, "function loaded");
                Ok(())
            }
            Err(reason) => {
                match self.registry.get(&name) {
                    Some(existing) if existing.state.is_ok() => {
                        tracing::warn!(function = %name, error = %reason, "update rejected; the previous version keeps serving");
                        self.registry.record_error(&name, reason.clone());
                    }
                    _ => {
                        tracing::warn!(function = %name, error = %reason, "function is not ready");
                        let limits = function.spec.limits().unwrap_or_default();
                        self.registry.upsert(Entry {
                            function,
                            limits,
                            origin,
                            state: Err(reason.clone()),
                            last_error: Some(reason.clone()),
                            admission: Arc::new(Admission::new(1, 0, Duration::ZERO)),
                            updated: SystemTime::now(),
                        });
                    }
                }
                Err(reason)
            }
        }
    }
}

/// `path` with symlinks resolved and made absolute, as far as it exists (a grant or a state
/// directory not created yet is compared as written below its deepest existing ancestor).
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// `function` as `/system` shows it in `role`: in a pool, each `spec.env` value is replaced
/// by a placeholder (the names stay, to tell what is set).
pub fn shown(function: &Function, role: Role) -> Function {
    let mut shown = function.clone();
    if !role.shows_env() {
        for value in shown.spec.env.values_mut() {
            *value = "(hidden in runtime pools)".to_owned();
        }
    }
    shown
}

/// `spec.env` as the executors take it.
pub(crate) fn env_of(function: &Function) -> Vec<(String, String)> {
    function
        .spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Calls `apply` with the platform now and again after every registry change, for as long as
/// the platform lives: how event sources (the scheduler, the SQS pollers) follow the set of
/// functions.
pub fn follow_registry(platform: &Arc<Platform>, apply: impl Fn(&Platform) + Send + 'static) {
    let mut changes = platform.registry.subscribe();
    let platform = Arc::downgrade(platform);
    tokio::spawn(async move {
        loop {
            // Weak: the platform owns what is fed, which must not keep it alive.
            let Some(platform) = platform.upgrade() else {
                return;
            };
            apply(&platform);
            drop(platform);
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
}
