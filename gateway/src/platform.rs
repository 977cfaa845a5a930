//! The platform state shared by every request: registry, WASM runtime (when the host loads
//! WASM), metrics, readiness. Also the one place where a function becomes a servable
//! [`Entry`]: every function source ends in [`Platform::apply`] or [`Platform::register`],
//! and the loaders of [`crate::load`] do the kind-specific work.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use faas_api::Function;
use faas_runtime::wasm::{WasmConfig, WasmRuntime};

use crate::admission::Admission;
use crate::error::StartError;
use crate::metrics::Metrics;
use crate::registry::{Entry, Loaded, Origin, Registry};

/// Gateway settings.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// What this host does and allows (chosen by its composition root, [`crate::host`]).
    pub host: crate::host::Capabilities,
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
    /// The platform token ([`faas_api::contract::PLATFORM_TOKEN_ENV`]): callers of the admin
    /// listener that show it speak for the platform (see [`crate::inbound`]).
    pub platform_token: Option<String>,
    /// WASM executor settings.
    pub wasm: WasmConfig,
    /// The cluster's own address ranges that are not private by their address (pod and
    /// service CIDRs of a VPC with public addresses): pool guests treat them as internal.
    pub internal_cidrs: Vec<faas_api::network::Cidr>,
    /// Memory of a runtime pool pod (the chart's `runtime.pools.memory`), where WASM
    /// functions share one (a pool pod, and the cluster gateway admitting for them): their
    /// default concurrency is what fits it ([`faas_api::FunctionSpec::limits_in`]). `None`
    /// in local mode.
    pub pool_memory_bytes: Option<u64>,
    /// The longest `spec.timeout` this host runs (`faas up --max-timeout`, 15 minutes by
    /// default); a function asking for more does not load, saying so. In a pod, the
    /// controller applied the cluster's cap already: a day.
    pub max_timeout: Duration,
}

impl GatewayConfig {
    /// Defaults with state under `state_dir`.
    pub fn new(state_dir: PathBuf) -> Self {
        let wasm = WasmConfig {
            cache_dir: Some(state_dir.join("cache")),
            ..WasmConfig::default()
        };
        Self {
            host: crate::host::Capabilities::local(),
            state_dir,
            shutdown_grace: Duration::from_secs(30),
            max_upload_bytes: 128 << 20,
            body_budget: crate::body::DEFAULT_BODY_BUDGET,
            max_queue_wait: Duration::from_secs(10),
            remote_management: false,
            management_token: None,
            platform_token: None,
            wasm,
            internal_cidrs: Vec::new(),
            pool_memory_bytes: None,
            max_timeout: faas_api::limits::MAX_LONG_TIMEOUT,
        }
    }
}

/// Shared state of one gateway process.
pub struct Platform {
    /// Functions.
    pub registry: Registry,
    /// The WASM executor, when this host loads WASM functions (not the cluster gateway nor
    /// the sidecar: they build no engine and start no epoch thread).
    pub runtime: Option<Arc<WasmRuntime>>,
    /// Metrics.
    pub metrics: Metrics,
    /// The last hour of invocations by minute (dashboard, `/system/stats`).
    pub stats: crate::stats::Stats,
    /// The budget of request bodies in memory.
    pub bodies: crate::body::BodyBudget,
    /// Settings.
    pub config: GatewayConfig,
    /// Cron scheduler, once started (see [`crate::cron::start`]).
    pub scheduler: std::sync::OnceLock<Arc<faas_schedule::Scheduler>>,
    /// Where the dashboard reads runs: the scheduler's store, or a cluster's FunctionRuns.
    pub run_history: std::sync::OnceLock<Arc<dyn crate::run_history::RunHistory>>,
    /// Schedules an operator suspended, once the scheduler started (see [`crate::cron::start`]).
    pub suspended: std::sync::OnceLock<Arc<crate::suspend::Suspensions>>,
    /// SQS pollers, once started (see [`crate::sqs::start`]).
    pub sqs: std::sync::OnceLock<Arc<faas_sqs::Pollers>>,
    /// The queue of async calls (`/async-function/...`), when configured.
    pub async_queue: std::sync::OnceLock<Arc<dyn crate::async_call::AsyncQueue>>,
    /// Functions whose last build under `faas up` failed (see [`crate::rebuild`]).
    pub builds: crate::rebuild::Failures,
    /// Where WASM functions' own AWS credentials come from, once the function source says
    /// (see [`crate::identity`]).
    pub identities: std::sync::OnceLock<Arc<crate::identity::Identities>>,
    /// Where functions' `spec.env` secrets are read from, once the function source says (see
    /// [`crate::secrets`]).
    pub secrets: std::sync::OnceLock<Arc<crate::secrets::Secrets>>,
    /// Functions' webhook tokens as last read (see [`crate::webhook`]).
    pub webhook_tokens: crate::webhook::Tokens,
    /// The cluster gateway's API client: where a webhook asks for its run.
    pub kube: std::sync::OnceLock<kube::Client>,
    /// The tokens local container functions fetch their role's credentials with (see
    /// [`crate::process_credentials`]).
    pub process_credentials: Arc<crate::process_credentials::Grants>,
    /// The address this host's listener is bound to, once bound.
    pub listener: std::sync::OnceLock<std::net::SocketAddr>,
    ready: AtomicBool,
    draining: AtomicBool,
}

impl Platform {
    /// Builds the loaders the host has and an empty registry.
    pub fn new(config: GatewayConfig) -> Result<Arc<Self>, StartError> {
        crate::guard::check_settings(&config)?;
        let metrics = Metrics::new();
        let runtime = crate::load::wasm::start(&config, &metrics)?;
        Ok(Arc::new(Self {
            registry: Registry::default(),
            runtime,
            metrics,
            stats: crate::stats::Stats::default(),
            bodies: crate::body::BodyBudget::new(config.body_budget),
            config,
            scheduler: std::sync::OnceLock::new(),
            run_history: std::sync::OnceLock::new(),
            suspended: std::sync::OnceLock::new(),
            sqs: std::sync::OnceLock::new(),
            async_queue: std::sync::OnceLock::new(),
            builds: crate::rebuild::Failures::default(),
            identities: std::sync::OnceLock::new(),
            secrets: std::sync::OnceLock::new(),
            webhook_tokens: crate::webhook::Tokens::default(),
            kube: std::sync::OnceLock::new(),
            process_credentials: Arc::default(),
            listener: std::sync::OnceLock::new(),
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
        if self.config.host.ready_with_functions {
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

    /// `function`'s limits on this host (see [`GatewayConfig::pool_memory_bytes`]).
    pub fn limits_of(
        &self,
        function: &Function,
    ) -> Result<faas_api::Limits, faas_api::ValidationErrors> {
        let limits = function.spec.limits_in(self.config.pool_memory_bytes)?;
        if let Some(why) = faas_api::limits::over_timeout_cap(
            limits.timeout,
            self.config.max_timeout,
            "faas up --max-timeout",
        ) {
            let mut errors = faas_api::ValidationErrors::default();
            errors.push("spec.timeout", why);
            return Err(errors);
        }
        Ok(limits)
    }

    /// Loads and wires one function version. The error is the reason shown to users.
    pub async fn prepare(
        &self,
        function: Function,
        artifact: Bytes,
        base_dir: Option<&Path>,
    ) -> Result<Entry, String> {
        let limits = self.limits_of(&function).map_err(|e| e.to_string())?;
        let loaded = crate::load::load(self, &function, artifact, limits, base_dir).await?;
        Ok(self.entry(
            function,
            limits,
            Origin::Api,
            Ok(Arc::new(loaded)),
            limits.concurrency,
        ))
    }

    /// A servable entry: `state` is what serves or why nothing does; `permits` requests are
    /// admitted at once (with as many queued, each waiting at most the queue wait or the
    /// function's timeout). One that cannot serve admits nothing.
    fn entry(
        &self,
        function: Function,
        limits: faas_api::Limits,
        origin: Origin,
        state: Result<Arc<Loaded>, String>,
        permits: u32,
    ) -> Entry {
        let admission = match &state {
            Ok(_) => Admission::new(
                permits,
                permits as usize,
                self.config.max_queue_wait.min(limits.timeout),
            ),
            Err(_) => Admission::new(1, 0, Duration::ZERO),
        };
        Entry {
            key: function.metadata.name.clone().unwrap_or_default(),
            last_error: state.as_ref().err().cloned(),
            admission: Arc::new(admission),
            failure_log: Arc::default(),
            function,
            limits,
            origin,
            state,
            updated: SystemTime::now(),
        }
    }

    /// Registers `function` under registry key `key` as it is (`state`: what serves, or why
    /// nothing does), admitting `permits` requests at once: how a source whose functions are
    /// loaded elsewhere (the cluster gateway's, forwarding to pods) registers them.
    pub fn register(
        &self,
        key: String,
        function: Function,
        origin: Origin,
        state: Result<Arc<Loaded>, String>,
        permits: u32,
    ) {
        let limits = self.limits_of(&function).unwrap_or_default();
        let entry = self.entry(function, limits, origin, state, permits);
        self.registry.upsert_as(key, entry);
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
                        let limits = self.limits_of(&function).unwrap_or_default();
                        let entry = self.entry(function, limits, origin, Err(reason.clone()), 1);
                        self.registry.upsert(entry);
                    }
                }
                Err(reason)
            }
        }
    }
}

/// `function` as `/system` shows it on `host`: in a pool, each `spec.env` value is replaced
/// by a placeholder (the names stay, to tell what is set).
pub fn shown(function: &Function, host: &crate::host::Capabilities) -> Function {
    let mut shown = function.clone();
    if !host.shows_env {
        shown.spec.env.redact_values("(hidden in runtime pools)");
    }
    shown
}

/// `spec.env` as the executors take it.
pub(crate) fn env_of(function: &Function) -> Vec<(String, String)> {
    function
        .spec
        .env
        .plain()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
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
