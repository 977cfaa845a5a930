//! `faas-gateway`: the gateway binary. In local mode it is what `faas up` runs; with
//! `--cluster` it is the edge of a cluster, behind the shared ALB.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use faas_gateway::async_call::AsyncSettings;

#[derive(Parser)]
#[command(version, about = "faas gateway: serves functions over HTTP")]
struct Args {
    /// Folder of Function manifests to serve and watch (local mode).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Cluster mode: functions from `Function` resources, served by their pods.
    #[arg(long, env = "FAAS_CLUSTER")]
    cluster: bool,
    /// Address to listen on (in cluster mode the public listener: functions and async
    /// calls only).
    #[arg(long, default_value = "127.0.0.1:8080", env = "FAAS_LISTEN")]
    listen: SocketAddr,
    /// Cluster mode: the admin listener (read-only /system, /ui, /metrics).
    #[arg(long, default_value = "127.0.0.1:9090", env = "FAAS_ADMIN_LISTEN")]
    admin_listen: SocketAddr,
    /// Cluster mode: namespaces whose Functions are served (comma-separated; empty: all).
    #[arg(long, env = "FAAS_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Cluster mode: longest hold of a request for a function with no ready replica.
    #[arg(long, env = "FAAS_SCALE_FROM_ZERO_TIMEOUT", value_parser = humantime::parse_duration, default_value = "30s")]
    scale_from_zero_timeout: Duration,
    /// Cluster mode: the SQS queue of async calls (its RedrivePolicy names the dead-letter
    /// queue). Local mode keeps async calls in the state directory.
    #[arg(long, env = "FAAS_ASYNC_QUEUE_URL")]
    async_queue_url: Option<String>,
    /// Attempts of an async call before it is dead-lettered.
    #[arg(long, env = "FAAS_ASYNC_MAX_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    async_max_attempts: u32,
    /// Let X-Callback-Url name loopback and private addresses (cluster mode refuses them by
    /// default: anyone who reaches the ALB names the URL). Local mode always allows them.
    #[arg(long, env = "FAAS_ASYNC_INTERNAL_CALLBACKS")]
    async_internal_callbacks: bool,
    /// After SIGTERM, how long traffic is still served while /readyz fails (the load
    /// balancer's deregistration delay). Default: 30s in cluster mode, 0 locally.
    #[arg(long, env = "FAAS_DRAIN_DELAY", value_parser = humantime::parse_duration)]
    drain_delay: Option<Duration>,
    /// Then, how long requests in flight may take to finish.
    #[arg(long, env = "FAAS_SHUTDOWN_GRACE", value_parser = humantime::parse_duration, default_value = "30s")]
    shutdown_grace: Duration,
    /// State directory (local mode: compiled-artifact cache, deployments, runs, async calls).
    #[arg(long, default_value = ".faas", env = "FAAS_STATE")]
    state: PathBuf,
    /// JSON logs (cluster mode).
    #[arg(long, env = "FAAS_JSON_LOGS")]
    json_logs: bool,
    /// Serve the management API (/system) and the dashboard to non-loopback clients and
    /// Host names; they must then send the management token (Authorization: Bearer).
    #[arg(long, requires = "management_token")]
    allow_remote_management: bool,
    /// Cluster mode: host names the platform answers on itself (comma-separated); no
    /// Function may claim them as `spec.http.hosts`.
    #[arg(long, env = "FAAS_PLATFORM_HOSTS", value_delimiter = ',')]
    platform_hosts: Vec<String>,
    /// Cluster mode: domains under which Functions may claim `*.` wildcard hosts
    /// (comma-separated; empty: no wildcard host is granted).
    #[arg(long, env = "FAAS_WILDCARD_HOST_SUFFIXES", value_delimiter = ',')]
    wildcard_host_suffixes: Vec<String>,
    /// The bearer token remote management requires (at least 16 characters).
    #[arg(long, env = "FAAS_MANAGEMENT_TOKEN", hide_env_values = true)]
    management_token: Option<String>,
    /// Cluster mode: the platform token, which the controller shows when its cron calls a
    /// function through the admin listener (only then are its run headers believed).
    // faas_api::contract::PLATFORM_TOKEN_ENV, spelt out: the chart tests read the literal.
    #[arg(long, env = "FAAS_PLATFORM_TOKEN", hide_env_values = true)]
    platform_token: Option<String>,
    /// Request bytes all bodies being read or served together may hold in memory; a body
    /// that does not fit is refused with 503 and Retry-After (e.g. 512Mi, 2Gi).
    #[arg(long, env = "FAAS_BODY_BUDGET", default_value = "512Mi", value_parser = faas_api::limits::parse_quantity)]
    body_budget: u64,
    /// Cluster mode: the memory of a runtime pool pod (the chart's runtime.pools.memory):
    /// a WASM function without spec.concurrency is admitted as many requests as its
    /// instances fit in it, as the pool pods do.
    #[arg(long, env = "FAAS_POOL_MEMORY", value_parser = faas_api::limits::parse_quantity)]
    pool_memory: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    faas_gateway::init_tracing(args.json_logs);
    let async_settings = AsyncSettings {
        max_attempts: args.async_max_attempts,
        internal_callbacks: args.async_internal_callbacks || !args.cluster,
        ..AsyncSettings::default()
    };
    if args.cluster {
        return Ok(
            faas_gateway::host::cluster::run(faas_gateway::host::cluster::ClusterOptions {
                listen: args.listen,
                admin_listen: args.admin_listen,
                namespaces: args
                    .namespaces
                    .into_iter()
                    .filter(|n| !n.is_empty())
                    .collect(),
                scale_from_zero_timeout: args.scale_from_zero_timeout,
                idle_check_interval: Duration::from_secs(10),
                async_queue_url: args.async_queue_url.filter(|u| !u.is_empty()),
                async_settings,
                drain_delay: args.drain_delay.unwrap_or(Duration::from_secs(30)),
                shutdown_grace: args.shutdown_grace,
                remote_management: args.allow_remote_management,
                platform_hosts: args.platform_hosts,
                wildcard_host_suffixes: args.wildcard_host_suffixes,
                loopback_upstreams: loopback_upstreams_for_tests(),
                management_token: args.management_token.clone(),
                platform_token: args.platform_token.filter(|t| !t.is_empty()),
                body_budget: args.body_budget,
                pool_memory_bytes: args.pool_memory,
            })
            .await?,
        );
    }
    faas_gateway::host::run(faas_gateway::host::HostOptions {
        dir: args.dir,
        listen: args.listen,
        state_dir: args.state,
        build: false,
        watch_interval: Duration::from_secs(1),
        remote_management: args.allow_remote_management,
        management_token: args.management_token,
        body_budget: args.body_budget,
        pool_keep_resident: faas_runtime::wasm::DEFAULT_KEEP_RESIDENT,
        role: faas_gateway::host::Role::Local,
        source: faas_gateway::source::FunctionSource::Folder { secrets: None },
        shutdown_grace: args.shutdown_grace,
        drain_delay: args.drain_delay.unwrap_or(Duration::ZERO),
        async_calls: Some(async_settings),
        internal_cidrs: Vec::new(),
        pool_memory_bytes: None,
        max_timeout: None,
        listening: None,
    })
    .await?;
    Ok(())
}

/// Whether EndpointSlice addresses on loopback are accepted: only by a debug build, and only
/// when `FAAS_TEST_LOOPBACK_UPSTREAMS` is set, for the whole-system test, whose pods are
/// processes on loopback addresses. A release build (every image) always refuses them: in a
/// cluster a loopback endpoint is the gateway itself, whose admin listener trusts loopback.
fn loopback_upstreams_for_tests() -> bool {
    cfg!(debug_assertions) && std::env::var_os(LOOPBACK_UPSTREAMS_ENV).is_some()
}

/// See [`loopback_upstreams_for_tests`].
const LOOPBACK_UPSTREAMS_ENV: &str = "FAAS_TEST_LOOPBACK_UPSTREAMS";
