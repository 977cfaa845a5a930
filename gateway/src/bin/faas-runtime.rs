//! `faas-runtime`: the runtime in pods. Two roles, both the gateway's request path with a
//! different source of functions:
//!
//! - `faas-runtime serve`: a runtime pool pod hosting WASM functions (HTTP, SQS pollers,
//!   metrics). Locally its functions come from a folder of manifests; in a cluster, from the
//!   `Function` resources assigned to its pool.
//! - `faas-runtime sidecar`: beside one container function (a native sidecar in its pod):
//!   the Lambda Runtime API for a Lambda handler, the HTTP front that turns requests into
//!   Lambda events, the function's SQS pollers, metrics and the pod's readiness.
//!
//! It lives in the gateway crate because both roles serve HTTP with the gateway's own
//! routing, admission, metrics and drain: the runtime crate cannot depend on them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use faas_gateway::host::{HostOptions, Role};
use faas_gateway::source::FunctionSource;

#[derive(Parser)]
#[command(
    name = "faas-runtime",
    version,
    about = "faas runtime: serves functions in runtime pods"
)]
struct Args {
    #[command(subcommand)]
    role: RoleArgs,
}

#[derive(Subcommand)]
enum RoleArgs {
    /// A runtime pool: serve the WASM functions of a folder of manifests.
    Serve {
        /// Folder (or file) of Function manifests to serve and watch.
        #[arg(long, env = "FAAS_FUNCTIONS", default_value = "/etc/faas/functions")]
        functions: PathBuf,
        /// Serve the Functions of this runtime pool from the Kubernetes API instead (those
        /// labelled `faas.dev/pool=<pool>` in POD_NAMESPACE), with ConfigMap artifacts.
        #[arg(long, env = "FAAS_POOL", conflicts_with = "functions")]
        pool: Option<String>,
        /// The pool's key (`faas_api::pool::PoolKey::digest`, set by the controller): only
        /// Functions whose computed pool has this key are loaded.
        #[arg(long, env = "FAAS_POOL_KEY", requires = "pool")]
        pool_key: Option<String>,
        /// The pod's namespace (the downward API sets it).
        #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
        namespace: String,
        /// The cluster's pod and service CIDRs, where they are not private ranges
        /// (comma-separated): guests reach them only through a literal allowedOutboundHosts
        /// rule, like loopback-free private ranges.
        #[arg(long, env = "FAAS_INTERNAL_CIDRS", value_delimiter = ',')]
        internal_cidrs: Vec<faas_api::network::Cidr>,
        /// The pod's memory limit (the controller passes the chart's runtime.pools.memory):
        /// a function without spec.concurrency runs as many instances as fit in it.
        #[arg(long, env = "FAAS_POOL_MEMORY", value_parser = faas_api::limits::parse_quantity)]
        pool_memory: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Beside one container function: Lambda Runtime API, HTTP front, SQS pollers, metrics.
    Sidecar {
        /// The function's manifest file (one Function).
        #[arg(long, env = "FAAS_FUNCTION_MANIFEST_FILE", conflicts_with = "manifest")]
        manifest_file: Option<PathBuf>,
        /// The function's manifest itself (YAML or JSON; what the controller renders).
        #[arg(long, env = "FAAS_FUNCTION_MANIFEST", hide_env_values = true)]
        manifest: Option<String>,
        /// Where the Lambda Runtime API is served (the handler's AWS_LAMBDA_RUNTIME_API).
        #[arg(long, env = "FAAS_RUNTIME_API", default_value = "127.0.0.1:9001")]
        runtime_api: SocketAddr,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(clap::Args)]
struct Common {
    /// Address of the HTTP front (functions, /healthz, /readyz, /metrics, /system).
    #[arg(long, env = "FAAS_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// State directory (compiled-artifact cache).
    #[arg(long, env = "FAAS_STATE", default_value = "/tmp/faas")]
    state: PathBuf,
    /// How long requests and SQS batches in flight may take to finish after SIGTERM.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    shutdown_grace: Duration,
    /// JSON logs.
    #[arg(long, env = "FAAS_JSON_LOGS")]
    json_logs: bool,
    /// Serve the (read-only) /system API to non-loopback clients and Host names; they must
    /// then send the management token (Authorization: Bearer).
    #[arg(long, requires = "management_token")]
    allow_remote_management: bool,
    /// The bearer token remote management requires (at least 16 characters).
    #[arg(long, env = "FAAS_MANAGEMENT_TOKEN", hide_env_values = true)]
    management_token: Option<String>,
    /// Request bytes all bodies being read or served together may hold in memory; a body
    /// that does not fit is refused with 503 and Retry-After (e.g. 512Mi, 2Gi).
    #[arg(long, env = "FAAS_BODY_BUDGET", default_value = "512Mi", value_parser = faas_api::limits::parse_quantity)]
    body_budget: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut internal = Vec::new();
    let mut pool_memory = None;
    let (dir, role, common, source) = match args.role {
        RoleArgs::Serve {
            functions,
            pool,
            pool_key,
            namespace,
            internal_cidrs,
            pool_memory: memory,
            common,
        } => {
            internal = internal_cidrs;
            pool_memory = memory;
            let source = match pool {
                Some(name) => FunctionSource::Pool {
                    pool: faas_gateway::source::pool::PoolIdentity {
                        name,
                        key: pool_key,
                    },
                    namespace,
                    pod: std::env::var("POD_NAME").ok(),
                },
                None => FunctionSource::Folder { secrets: None },
            };
            (functions, Role::Pool, common, source)
        }
        RoleArgs::Sidecar {
            manifest_file,
            manifest,
            runtime_api,
            common,
        } => {
            let file = sidecar_manifest(manifest_file, manifest, &common.state)?;
            (
                file,
                Role::Sidecar { runtime_api },
                common,
                FunctionSource::Folder { secrets: None },
            )
        }
    };
    faas_gateway::init_tracing(common.json_logs);
    faas_gateway::host::run(HostOptions {
        dir,
        listen: common.listen,
        state_dir: common.state,
        build: false,
        watch_interval: Duration::from_secs(1),
        remote_management: common.allow_remote_management,
        management_token: common.management_token,
        body_budget: common.body_budget,
        pool_keep_resident: faas_runtime::wasm::DEFAULT_KEEP_RESIDENT,
        shutdown_grace: common.shutdown_grace,
        role,
        source,
        // Runtime pods sit behind Services, not a load balancer: the gateway stops choosing
        // a pod as soon as its endpoint turns not-ready, and retries refused connections.
        drain_delay: Duration::ZERO,
        async_calls: None,
        internal_cidrs: internal,
        pool_memory_bytes: pool_memory,
        max_timeout: None,
        listening: None,
    })
    .await?;
    Ok(())
}

/// The sidecar's manifest as a file (written to the state directory when given inline),
/// checked to hold exactly one container function.
fn sidecar_manifest(
    file: Option<PathBuf>,
    inline: Option<String>,
    state: &std::path::Path,
) -> anyhow::Result<PathBuf> {
    let path = match (file, inline) {
        (Some(file), _) => file,
        (None, Some(text)) => {
            std::fs::create_dir_all(state)
                .with_context(|| format!("cannot create {}", state.display()))?;
            let path = state.join("function.yaml");
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            path
        }
        (None, None) => anyhow::bail!(
            "the sidecar needs its function: --manifest-file FILE or FAAS_FUNCTION_MANIFEST"
        ),
    };
    let functions = faas_api::manifest::load_path(&path)
        .into_iter()
        .map(|f| f.result.map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .concat();
    match functions.as_slice() {
        [function] if function.spec.runtime.container.is_some() => Ok(path),
        [function] => anyhow::bail!(
            "{}: function {} is not a container function (spec.runtime.container); WASM \
             functions run in runtime pools (faas-runtime serve)",
            path.display(),
            function.metadata.name.as_deref().unwrap_or_default()
        ),
        other => anyhow::bail!(
            "{}: a sidecar serves exactly one function, found {}",
            path.display(),
            other.len()
        ),
    }
}
