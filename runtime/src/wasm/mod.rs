//! The WebAssembly executor (wasmtime 48).
//!
//! Shape, after `wasmtime serve`: one [`Engine`] per process; each artifact compiled once
//! (content-addressed by sha256, cached on disk) and pre-instantiated once (`InstancePre`,
//! imports resolved and type-checked); a fresh `Store` and instance per request, so no state
//! leaks between requests or tenants.

mod artifact;
mod cgi_module;
mod engine;
mod proxy;
mod sandbox;
mod share;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_api::Limits;
use faas_api::network::OutboundPolicy;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker as ComponentLinker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

pub use artifact::{ArtifactKind, DiskCache, detect_kind, sha256_hex};

use crate::{CallContext, InvokeError, Invoker, ResponseBody};

/// Default of [`WasmConfig::keep_resident_bytes`].
pub const DEFAULT_KEEP_RESIDENT: usize = 2 << 20;

/// Told how long each instantiation took (metrics).
pub type InstantiateObserver = Arc<dyn Fn(&str, Duration) + Send + Sync>;

/// Process-wide settings of the WASM executor.
#[derive(Clone, Debug)]
pub struct WasmConfig {
    /// Instances that may exist at once across all functions (pool size).
    pub max_instances: u32,
    /// Largest linear memory any function may ask for (per-function caps are below it).
    pub max_memory_bytes: u64,
    /// Use the pooling allocator when the host allows it.
    pub pooling: bool,
    /// Directory of precompiled artifacts; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Epoch tick: the granularity of timeouts and of cooperative yielding.
    pub epoch_tick: Duration,
    /// Bytes of guest stdout/stderr logged per invocation.
    pub log_budget: usize,
    /// Largest CGI response (stdout) accepted from a command module.
    pub max_cgi_response_bytes: usize,
    /// Bytes of each pooled linear memory kept resident (zeroed with memset) between
    /// instances instead of being returned to the kernel. See `engine.rs` for the trade-off.
    pub keep_resident_bytes: usize,
    /// Most host resources (handles: `wasi:http` fields, requests, bodies, streams,
    /// pollables...) one instance may hold at once. Host memory a guest makes the runtime
    /// spend is otherwise unbounded: each is host-side state outside its memory cap.
    pub max_host_resources: usize,
    /// Largest in-memory size of one `wasi:http` `fields` (header map) a guest builds. With
    /// `max_host_resources`, bounds the header memory of one instance to their product.
    pub max_header_bytes: usize,
    /// Slot units one function may hold at once (see `share.rs`); `None`: a quarter of
    /// `max_instances`.
    pub function_share: Option<u32>,
    /// How fast one function may log, across its invocations.
    pub log_rate: crate::guest_log::LogRate,
}

/// Default of [`WasmConfig::max_host_resources`]: a guest serving a request holds a dozen;
/// one fanning out to a hundred upstreams a few hundred.
pub const DEFAULT_MAX_HOST_RESOURCES: usize = 1024;
/// Default of [`WasmConfig::max_header_bytes`]: a load balancer's whole request head (64 KiB
/// at the ALB), so forwarded headers always fit.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 << 10;

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            max_instances: 1000,
            max_memory_bytes: 4 << 30,
            pooling: true,
            cache_dir: None,
            epoch_tick: Duration::from_millis(10),
            log_budget: crate::guest_log::DEFAULT_LOG_BUDGET,
            max_cgi_response_bytes: 16 << 20,
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT,
            max_host_resources: DEFAULT_MAX_HOST_RESOURCES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            function_share: None,
            log_rate: crate::guest_log::LogRate::default(),
        }
    }
}

impl WasmConfig {
    /// Slot units one function may hold at once.
    pub fn function_share(&self) -> u32 {
        self.function_share.unwrap_or(self.max_instances / 4).max(1)
    }
}

/// Why an artifact could not be loaded. The function is reported not ready with this reason.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not WebAssembly.
    #[error("{0}")]
    NotWasm(String),
    /// The bytes do not match `spec.runtime.wasm.sha256`.
    #[error("artifact sha256 is {actual}, but spec.runtime.wasm.sha256 says {expected}")]
    Sha256Mismatch {
        /// From the spec.
        expected: String,
        /// Of the bytes.
        actual: String,
    },
    /// Cranelift rejected or failed on the module.
    #[error("compiling the artifact failed: {0}")]
    Compile(String),
    /// The artifact's imports/exports do not fit a supported world.
    #[error("the artifact cannot be served: {0}")]
    Link(String),
    /// The engine could not be built.
    #[error("wasm engine error: {0}")]
    Engine(String),
}

/// Where a loaded artifact's compiled code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadSource {
    /// Compiled now.
    Compiled,
    /// Read from the on-disk cache of precompiled artifacts.
    DiskCache,
    /// Already loaded for another function (identical bytes).
    Memory,
}

impl LoadSource {
    /// Label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadSource::Compiled => "compiled",
            LoadSource::DiskCache => "disk_cache",
            LoadSource::Memory => "memory",
        }
    }
}

/// A compiled, pre-instantiated artifact, shared by every function that uses the same bytes.
pub struct CompiledArtifact {
    /// sha256 of the artifact bytes.
    pub sha256: String,
    /// What it is.
    pub kind: ArtifactKind,
    /// Whether the compiled code came from the disk cache.
    pub from_cache: bool,
    /// Compile (or cache load) plus pre-instantiation time.
    pub load_time: Duration,
    /// Pool slots one instance takes (its memories, at least one): what it costs against
    /// its function's share.
    pub slot_units: u32,
    pre: Prepared,
}

enum Prepared {
    Proxy(ProxyPre<sandbox::ProxyState>),
    Cgi(wasmtime::InstancePre<sandbox::CgiState>),
}

/// Per-function settings applied to each instance.
#[derive(Clone)]
pub struct FunctionSettings {
    /// Function name, for logs.
    pub name: Arc<str>,
    /// Timeout, memory cap.
    pub limits: Limits,
    /// `spec.env`.
    pub env: Vec<(String, String)>,
    /// Outbound HTTP policy.
    pub outbound: Arc<OutboundPolicy>,
    /// Preopened directories: (host path, guest path, read only).
    pub dirs: Vec<(PathBuf, String, bool)>,
    /// Variables read at each invocation, after `env` (the function's own role's
    /// credentials: `faas-identity`).
    pub invocation_env: Vec<Arc<dyn faas_invoke::InvocationEnv>>,
}

/// The WASM executor of one process.
pub struct WasmRuntime {
    engine: Engine,
    pooling: bool,
    config: WasmConfig,
    proxy_linker: ComponentLinker<sandbox::ProxyState>,
    cgi_linker: wasmtime::Linker<sandbox::CgiState>,
    disk: Option<DiskCache>,
    // Weak, so an artifact nobody serves any more is freed; the mutex also serializes
    // compilation (CPU-bound and internally parallel already) so one artifact is never
    // compiled twice at once.
    compiled: tokio::sync::Mutex<HashMap<String, Weak<CompiledArtifact>>>,
    _ticker: engine::EpochTicker,
    instantiate_observer: Mutex<Option<InstantiateObserver>>,
    shares: Arc<share::Shares>,
    log_limits: Arc<crate::guest_log::LogLimits>,
}

impl WasmRuntime {
    /// Builds the engine, linkers and epoch ticker.
    pub fn new(config: WasmConfig) -> Result<Arc<Self>, LoadError> {
        let (engine, pooling) = engine::build(&config)?;
        let link = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let mut proxy_linker = ComponentLinker::new(&engine);
        // Rust std on wasm32-wasip2 imports wasi:cli (environment, exit...) besides the proxy
        // world, so link the full WASI p2 set and restrict capabilities in the WasiCtx instead.
        wasmtime_wasi::p2::add_to_linker_async(&mut proxy_linker).map_err(link)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut proxy_linker).map_err(link)?;
        let mut cgi_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut cgi_linker, |s: &mut sandbox::CgiState| {
            &mut s.wasi
        })
        .map_err(link)?;
        let disk = config
            .cache_dir
            .as_deref()
            .map(|dir| DiskCache::new(dir, &engine));
        let ticker = engine::EpochTicker::start(engine.clone(), config.epoch_tick);
        let shares = share::Shares::new(config.function_share());
        let log_limits = Arc::new(crate::guest_log::LogLimits::new(config.log_rate));
        Ok(Arc::new(Self {
            engine,
            pooling,
            shares,
            log_limits,
            config,
            proxy_linker,
            cgi_linker,
            disk,
            compiled: tokio::sync::Mutex::new(HashMap::new()),
            _ticker: ticker,
            instantiate_observer: Mutex::new(None),
        }))
    }

    /// The per-function guest log rates (for their metric, and tests).
    pub fn log_limits(&self) -> &Arc<crate::guest_log::LogLimits> {
        &self.log_limits
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Registers a callback told how long each instantiation of a function took (for metrics).
    pub fn on_instantiate(&self, observer: InstantiateObserver) {
        *self
            .instantiate_observer
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(observer);
    }

    fn observe_instantiate(&self, function: &str, took: Duration) {
        let observer = self
            .instantiate_observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(observer) = observer {
            observer(function, took);
        }
    }

    /// Compiles (or fetches from the memory or disk cache) and pre-instantiates an artifact.
    /// `expected_sha256` comes from the spec, when it pins one.
    pub async fn load(
        self: &Arc<Self>,
        bytes: Bytes,
        expected_sha256: Option<&str>,
    ) -> Result<Arc<CompiledArtifact>, LoadError> {
        self.load_reporting(bytes, expected_sha256)
            .await
            .map(|(artifact, _)| artifact)
    }

    /// Like [`WasmRuntime::load`], also saying where the compiled code came from (metrics).
    pub async fn load_reporting(
        self: &Arc<Self>,
        bytes: Bytes,
        expected_sha256: Option<&str>,
    ) -> Result<(Arc<CompiledArtifact>, LoadSource), LoadError> {
        let kind = detect_kind(&bytes)?;
        let sha256 = sha256_hex(&bytes);
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            return Err(LoadError::Sha256Mismatch {
                expected: expected.to_owned(),
                actual: sha256,
            });
        }
        let mut compiled = self.compiled.lock().await;
        if let Some(existing) = compiled.get(&sha256).and_then(Weak::upgrade) {
            return Ok((existing, LoadSource::Memory));
        }
        let this = Arc::clone(self);
        let sha = sha256.clone();
        let artifact = tokio::task::spawn_blocking(move || this.compile(&bytes, sha, kind))
            .await
            .map_err(|e| LoadError::Compile(format!("compiler task failed: {e}")))??;
        let artifact = Arc::new(artifact);
        compiled.retain(|_, weak| weak.strong_count() > 0);
        compiled.insert(sha256, Arc::downgrade(&artifact));
        let source = if artifact.from_cache {
            LoadSource::DiskCache
        } else {
            LoadSource::Compiled
        };
        Ok((artifact, source))
    }

    fn compile(
        &self,
        bytes: &[u8],
        sha256: String,
        kind: ArtifactKind,
    ) -> Result<CompiledArtifact, LoadError> {
        let started = Instant::now();
        let (precompiled, from_cache) = match self.disk.as_ref().and_then(|d| d.get(&sha256)) {
            Some(cached) => (cached, true),
            None => {
                let compiled = match kind {
                    ArtifactKind::Component => self.engine.precompile_component(bytes),
                    ArtifactKind::CoreModule => self.engine.precompile_module(bytes),
                }
                .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
                if let Some(disk) = &self.disk
                    && let Err(err) = disk.put(&sha256, &compiled)
                {
                    tracing::warn!(error = %err, "could not write the compiled-artifact cache");
                }
                (compiled, false)
            }
        };
        let (pre, slot_units) = match self.prepare(&precompiled, kind) {
            Ok(prepared) => prepared,
            Err(LoadError::Compile(msg)) if from_cache => {
                // A corrupt or foreign cache entry: drop it and compile from the source bytes.
                tracing::warn!(sha256 = %sha256, error = %msg, "discarding unusable cache entry");
                if let Some(disk) = &self.disk {
                    disk.evict(&sha256);
                }
                return self.compile(bytes, sha256, kind);
            }
            Err(other) => return Err(other),
        };
        Ok(CompiledArtifact {
            sha256,
            kind,
            from_cache,
            load_time: started.elapsed(),
            slot_units,
            pre,
        })
    }

    fn prepare(
        &self,
        precompiled: &[u8],
        kind: ArtifactKind,
    ) -> Result<(Prepared, u32), LoadError> {
        let compile_err = |e: wasmtime::Error| LoadError::Compile(format!("{e:#}"));
        let link_err = |e: wasmtime::Error| LoadError::Link(format!("{e:#}"));
        match kind {
            ArtifactKind::Component => {
                // SAFETY: the bytes come from `Engine::precompile_component` of this engine,
                // either just now or from our own cache directory, whose entries are read
                // only after their HMAC under the cache key verified (for this artifact's
                // sha256 and this engine's compatibility hash; see `DiskCache`).
                #[allow(unsafe_code)]
                let component = unsafe { Component::deserialize(&self.engine, precompiled) }
                    .map_err(compile_err)?;
                let units = component
                    .resources_required()
                    .map_or(1, |r| r.num_memories.max(1));
                let pre = self
                    .proxy_linker
                    .instantiate_pre(&component)
                    .map_err(link_err)?;
                let proxy = ProxyPre::new(pre).map_err(|e| {
                    LoadError::Link(format!(
                        "component does not export wasi:http/incoming-handler ({e:#})"
                    ))
                })?;
                Ok((Prepared::Proxy(proxy), units))
            }
            ArtifactKind::CoreModule => {
                // SAFETY: as above, for `Engine::precompile_module`.
                #[allow(unsafe_code)]
                let module = unsafe { wasmtime::Module::deserialize(&self.engine, precompiled) }
                    .map_err(compile_err)?;
                if module.get_export("_start").is_none() {
                    return Err(LoadError::Link(
                        "core module has no `_start` export: build it as a WASI command (bin crate for wasm32-wasip1)".into(),
                    ));
                }
                let units = module.resources_required().num_memories.max(1);
                let pre = self.cgi_linker.instantiate_pre(&module).map_err(link_err)?;
                Ok((Prepared::Cgi(pre), units))
            }
        }
    }

    /// A servable function: an artifact plus the settings of one `Function`.
    pub fn function(
        self: &Arc<Self>,
        artifact: Arc<CompiledArtifact>,
        settings: FunctionSettings,
    ) -> WasmFunction {
        WasmFunction {
            runtime: Arc::clone(self),
            artifact,
            // Looked up once per version, not per request (a global map behind a lock).
            log_rate: self.log_limits.bucket(&settings.name),
            settings: Arc::new(settings),
            failures: Arc::default(),
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Takes `artifact`'s slot units from `function`'s share, for one instance.
    pub(crate) fn take_share(
        &self,
        function: &Arc<str>,
        artifact: &CompiledArtifact,
    ) -> Result<share::Held, InvokeError> {
        self.shares.take(function, artifact.slot_units)
    }
}

/// One function version, ready to serve.
#[derive(Clone)]
pub struct WasmFunction {
    runtime: Arc<WasmRuntime>,
    artifact: Arc<CompiledArtifact>,
    settings: Arc<FunctionSettings>,
    /// The function's log rate, shared with its other versions.
    log_rate: Arc<crate::guest_log::LogBucket>,
    /// How many of this version's failures after its response head get a log line.
    failures: Arc<faas_invoke::failure_log::FailureLog>,
}

impl WasmFunction {
    /// The artifact behind it.
    pub fn artifact(&self) -> &Arc<CompiledArtifact> {
        &self.artifact
    }
}

impl Invoker for WasmFunction {
    fn invoke(
        &self,
        ctx: CallContext,
        request: http::Request<Bytes>,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<http::Response<ResponseBody>, InvokeError>> + Send + '_>,
    > {
        Box::pin(async move {
            match &self.artifact.pre {
                Prepared::Proxy(pre) => {
                    let slot = self
                        .runtime
                        .take_share(&self.settings.name, &self.artifact)?;
                    proxy::invoke(self, pre, slot, ctx, request).await
                }
                Prepared::Cgi(pre) => {
                    let slot = self
                        .runtime
                        .take_share(&self.settings.name, &self.artifact)?;
                    cgi_module::invoke(
                        &self.runtime,
                        pre,
                        &self.settings,
                        slot,
                        Arc::clone(&self.log_rate),
                        ctx,
                        request,
                    )
                    .await
                }
            }
        })
    }

    fn degraded(&self) -> Option<faas_invoke::Degradation> {
        self.settings
            .invocation_env
            .iter()
            .find_map(|env| env.problem())
    }
}
