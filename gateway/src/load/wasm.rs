//! WASM functions: compiled (once per sha256, through the runtime's cache) and run in this
//! process. Only hosts that serve WASM build the engine ([`start`]); in a runtime pool the
//! loader refuses what a shared pod must not grant (host directories) and treats the
//! cluster's own address ranges as internal.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use faas_api::network::OutboundPolicy;
use faas_api::{Function, Limits, WasmRuntime as WasmSpec};
use faas_runtime::wasm::{ArtifactKind, FunctionSettings, LoadSource, WasmRuntime};

use super::WasmLoading;
use crate::cold_start::Phase;
use crate::error::StartError;
use crate::metrics::Metrics;
use crate::platform::{GatewayConfig, Platform};
use crate::registry::Loaded;

/// Builds the WASM executor (engine, epoch thread, cache) when the host loads WASM
/// functions; `None` for a host that refuses them.
pub fn start(
    config: &GatewayConfig,
    metrics: &Metrics,
) -> Result<Option<Arc<WasmRuntime>>, StartError> {
    if let WasmLoading::Refused(_) = config.host.wasm {
        return Ok(None);
    }
    let runtime = WasmRuntime::new(config.wasm.clone())?;
    let histogram = metrics.instantiate.with_label_values::<&str>(&[]);
    let cold_starts = metrics.cold_starts.clone();
    runtime.on_instantiate(Arc::new(move |function, took| {
        histogram.observe(took.as_secs_f64());
        cold_starts.record(function, Phase::Instantiate, took);
    }));
    if let Err(err) = runtime.log_limits().register(metrics.registry()) {
        tracing::warn!(error = %err, "guest log rate metric not registered");
    }
    tracing::info!(pooling = runtime.pooling(), "wasm runtime ready");
    Ok(Some(runtime))
}

/// Compiles `artifact` and wires it with the function's settings.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn load(
    platform: &Platform,
    runtime: &Arc<WasmRuntime>,
    mode: WasmLoading,
    function: &Function,
    wasm: &WasmSpec,
    artifact: Bytes,
    limits: Limits,
    base_dir: Option<&Path>,
) -> Result<Loaded, String> {
    if mode == WasmLoading::Pool && !wasm.dirs.is_empty() {
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
        Some(network) => {
            OutboundPolicy::from_spec(&network.allowed_outbound_hosts).map_err(|e| e.to_string())?
        }
        None => OutboundPolicy::deny_all(),
    };
    if mode == WasmLoading::Pool {
        outbound = outbound.in_pool_with(&platform.config.internal_cidrs);
    }
    let loading = std::time::Instant::now();
    let compiled = match runtime
        .load_reporting(artifact, wasm.sha256.as_deref())
        .await
    {
        Ok((compiled, source)) => {
            platform
                .metrics
                .loads
                .with_label_values(&[source.as_str()])
                .inc();
            let name = function.metadata.name.as_deref().unwrap_or_default();
            platform
                .stats
                .record_load(name, source.as_str(), loading.elapsed());
            // A version already in memory had its compile phase when it was first loaded.
            if source != LoadSource::Memory {
                platform
                    .metrics
                    .cold_starts
                    .record(name, Phase::Compile, loading.elapsed());
            }
            compiled
        }
        Err(err) => {
            platform.metrics.loads.with_label_values(&["failed"]).inc();
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
    check_grants(&platform.config, &dirs)?;
    // Secrets first, the role's credentials last: a later variable wins, and the platform's
    // AWS_* are the role's whatever spec.env says.
    let mut invocation_env: Vec<Arc<dyn faas_invoke::InvocationEnv>> = Vec::new();
    let identity = match platform.identities.get() {
        Some(identities) => identities.of(function).await,
        None => None,
    };
    if let Some(secrets) = platform.secrets.get()
        && let Some(read) = secrets.of(function, identity.clone()).await
    {
        invocation_env.push(read);
    }
    if let Some(identity) = identity {
        invocation_env.push(identity);
    }
    let settings = FunctionSettings {
        name,
        limits,
        env: crate::platform::env_of(function),
        outbound: Arc::new(outbound),
        dirs,
        invocation_env,
    };
    Ok(Loaded {
        sha256: compiled.sha256.clone(),
        kind: match compiled.kind {
            ArtifactKind::Component => "component",
            ArtifactKind::CoreModule => "cgi-module",
        },
        invoker: Arc::new(runtime.function(compiled, settings)),
    })
}

/// Refuses a `dirs` grant that reaches the platform's own files: a host path that is,
/// contains or is inside the state directory or the compiled-code cache (a guest that
/// can write there plants native code the runtime would run; one that can read there
/// reads the cache key and every deployed artifact and manifest). Paths are compared
/// after resolving symlinks, so a link to the state directory is refused too.
fn check_grants(config: &GatewayConfig, dirs: &[(PathBuf, String, bool)]) -> Result<(), String> {
    let protected: Vec<PathBuf> = std::iter::once(&config.state_dir)
        .chain(config.wasm.cache_dir.as_ref())
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
