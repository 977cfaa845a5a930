//! Hosts: the composition roots, one per way the gateway runs. Each builds a [`Platform`]
//! with its [`Capabilities`], starts its function source and event sources, and hands its
//! listeners to the one [`crate::lifecycle`]. The request path is the same in every host;
//! what differs is decided here, once, and passed down as values (never a role to branch
//! on):
//!
//! - [`local`]: `faas up` (everything in one process: HTTP, cron, SQS, async calls,
//!   management);
//! - [`pool`]: `faas-runtime serve`, a runtime pool pod hosting WASM functions of many teams;
//! - [`sidecar`]: `faas-runtime sidecar`, beside one container function in its pod;
//! - [`cluster`]: `faas-gateway --cluster`, the edge behind the ALB, forwarding to pods.

pub mod cluster;
pub mod local;
pub mod pool;
pub mod sidecar;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::error::StartError;
use crate::health::State;
use crate::lifecycle::{Lifecycle, Stop, stop_with};
use crate::load::{ProcessLoading, WasmLoading};
use crate::platform::{GatewayConfig, Platform};
use crate::server::Exposure;
use crate::source::{FirstLoad, FunctionSource};

/// Which host a binary asks for ([`run`] is the one place that tells them apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `faas up`: [`local`].
    Local,
    /// `faas-runtime serve`: [`pool`].
    Pool,
    /// `faas-runtime sidecar`: [`sidecar`], serving the function's Lambda Runtime API on
    /// `runtime_api`.
    Sidecar { runtime_api: SocketAddr },
    /// `faas-gateway --cluster`: [`cluster`] (started by [`cluster::run`], not [`run`]).
    Cluster,
}

/// What a host does and allows, decided by its composition root. The request path reads
/// these values; nothing below the hosts asks which host it is in.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// `local`, `pool`, `sidecar` or `cluster`, as `/system/info` says.
    pub name: &'static str,
    /// The management API may deploy and delete (local mode only: in a cluster, functions
    /// come from `Function` resources).
    pub manages_functions: bool,
    /// Requests come through the cluster gateway (runtime pools, sidecars): the call id and
    /// mount point it sends are kept, so a function logs the id its caller got.
    pub behind_gateway: bool,
    /// Callers of a function see the detail of the platform's errors (a trap's backtrace,
    /// why it is not ready): only in local mode, where the caller is the developer. Runtime
    /// pods and the cluster gateway log it with the call id instead.
    pub shows_error_detail: bool,
    /// This process serves the dashboard: `faas up` and the cluster gateway (on its admin
    /// listener); never a runtime pod, which a load balancer may reach.
    pub has_dashboard: bool,
    /// `/system/functions/{name}` shows `spec.env` values. Never in a runtime pool: its
    /// functions belong to many teams, and its `/system` has no reader that needs them (the
    /// cluster's own view is the `Function` resource, under Kubernetes RBAC); a value that is
    /// not served cannot leak through any path to the pod.
    pub shows_env: bool,
    /// `/readyz` also waits for every function to be able to serve: a pod that exists for
    /// one function is not ready before that function is.
    pub ready_with_functions: bool,
    /// How WASM functions load here (or why they do not).
    pub wasm: WasmLoading,
    /// How container functions load here (or why they do not).
    pub process: ProcessLoading,
    /// Where the platform's AWS clients (SQS triggers) expect credentials from, which the
    /// "no AWS credentials found" error names: a developer's environment or profile under
    /// `faas up`, the ServiceAccount's role in a pod.
    pub aws: faas_sqs::aws_credentials::Place,
    /// Whose credentials SQS triggers read their queues with.
    pub triggers_read_as: TriggerCredentials,
}

/// Whose credentials a host's SQS triggers read their queues with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerCredentials {
    /// This process's own, for every trigger: a function's own pod (the sidecar), whose
    /// identity is its function's role.
    Process,
    /// The function's role when it has one (as Lambda's event source mapping uses the
    /// execution role), else this process's own: `faas up`, the developer's.
    RoleElseProcess,
    /// The function's role, and nothing for a function without one: a runtime pool, whose
    /// own identity (the platform's pull role) is never a tenant's.
    RoleOnly,
}

impl Capabilities {
    /// `faas up`.
    pub fn local() -> Self {
        Capabilities {
            name: "local",
            manages_functions: true,
            behind_gateway: false,
            shows_error_detail: true,
            has_dashboard: true,
            shows_env: true,
            ready_with_functions: false,
            wasm: WasmLoading::Local,
            process: ProcessLoading::Local,
            aws: faas_sqs::aws_credentials::Place::Local,
            triggers_read_as: TriggerCredentials::RoleElseProcess,
        }
    }

    /// A runtime pool pod.
    pub fn pool() -> Self {
        Capabilities {
            name: "pool",
            manages_functions: false,
            behind_gateway: true,
            shows_error_detail: false,
            has_dashboard: false,
            shows_env: false,
            ready_with_functions: false,
            wasm: WasmLoading::Pool,
            process: ProcessLoading::Refused(
                "spec.runtime.container: a runtime pool hosts WASM functions only; \
                 a container function runs in its own pods (beside faas-runtime sidecar)",
            ),
            aws: faas_sqs::aws_credentials::Place::Pod,
            triggers_read_as: TriggerCredentials::RoleOnly,
        }
    }

    /// The sidecar of a container function, serving its Lambda Runtime API on `runtime_api`.
    pub fn sidecar(runtime_api: SocketAddr) -> Self {
        Capabilities {
            name: "sidecar",
            manages_functions: false,
            behind_gateway: true,
            shows_error_detail: false,
            has_dashboard: false,
            shows_env: true,
            ready_with_functions: true,
            wasm: WasmLoading::Refused(
                "spec.runtime.wasm: faas-runtime sidecar serves a container function; \
                 WASM functions run in runtime pools (faas-runtime serve)",
            ),
            process: ProcessLoading::Beside { runtime_api },
            aws: faas_sqs::aws_credentials::Place::Pod,
            triggers_read_as: TriggerCredentials::Process,
        }
    }

    /// The cluster gateway.
    pub fn cluster() -> Self {
        Capabilities {
            name: "cluster",
            manages_functions: false,
            behind_gateway: false,
            shows_error_detail: false,
            has_dashboard: true,
            shows_env: true,
            ready_with_functions: false,
            wasm: WasmLoading::Refused(
                "the cluster gateway forwards to a function's pods; it compiles nothing",
            ),
            process: ProcessLoading::Refused(
                "the cluster gateway forwards to a function's pods; it runs no process",
            ),
            aws: faas_sqs::aws_credentials::Place::Pod,
            triggers_read_as: TriggerCredentials::Process,
        }
    }
}

/// Where a client on this machine reaches a listener bound to `address`: loopback for an
/// unspecified address (`0.0.0.0`, `[::]`), else the address itself.
pub fn local_address(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, address.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, address.port()))
        }
        _ => address,
    }
}

/// Options of the hosts that serve functions themselves (`faas up`, runtime pods).
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// Folder (or file) of Function manifests.
    pub dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// State directory.
    pub state_dir: PathBuf,
    /// Run the cargo builds the manifests ask for.
    pub build: bool,
    /// How often to look for changes.
    pub watch_interval: Duration,
    /// Serve the management API to non-loopback clients (with the token).
    pub remote_management: bool,
    /// `GatewayConfig::management_token`.
    pub management_token: Option<String>,
    /// `GatewayConfig::body_budget`.
    pub body_budget: u64,
    /// `WasmConfig::keep_resident_bytes`.
    pub pool_keep_resident: usize,
    /// `GatewayConfig::shutdown_grace`.
    pub shutdown_grace: Duration,
    /// Which host runs: `faas up` is [`Role::Local`]; `faas-runtime serve` and
    /// `faas-runtime sidecar` run a pool pod or a sidecar.
    pub role: Role,
    /// Where the functions come from.
    pub source: FunctionSource,
    /// After SIGTERM, how long requests are still taken while `/readyz` fails.
    pub drain_delay: Duration,
    /// Serve `/async-function/...` from a queue in the state directory, with these retries
    /// (`faas up`; runtime pods take no async calls: the cluster gateway does).
    pub async_calls: Option<crate::async_call::AsyncSettings>,
    /// `GatewayConfig::internal_cidrs` (runtime pools).
    pub internal_cidrs: Vec<faas_api::network::Cidr>,
    /// `GatewayConfig::pool_memory_bytes` (runtime pools).
    pub pool_memory_bytes: Option<u64>,
    /// `GatewayConfig::max_timeout` (`faas up --max-timeout`; runtime pods take what the
    /// controller admitted: `None`).
    pub max_timeout: Option<Duration>,
    /// Told the bound address once the host serves (`faas up` records itself as the local
    /// target with it; with port 0 nothing else knows the port).
    pub listening: Option<Arc<tokio::sync::watch::Sender<Option<SocketAddr>>>>,
}

/// Runs the host `options.role` names until SIGTERM/SIGINT.
pub async fn run(options: HostOptions) -> Result<(), StartError> {
    match options.role {
        Role::Local => local::run(options).await,
        Role::Pool => pool::run(options).await,
        Role::Sidecar { runtime_api } => sidecar::run(options, runtime_api).await,
        Role::Cluster => Err(StartError::Host(
            "the cluster gateway takes ClusterOptions: faas-gateway --cluster",
        )),
    }
}

/// Binds `address`, naming it when it cannot.
pub(crate) async fn bind(address: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Listen { address, source })
}

/// The event sources a host runs besides HTTP.
pub(crate) struct Extras {
    /// Cron fires here (local mode only: in a cluster the controller's leader schedules and
    /// calls in through HTTP, so a pool or sidecar replica never fires a schedule itself).
    pub cron: bool,
}

/// Serves functions from `options.source` in this process, with `capabilities`, until
/// SIGTERM/SIGINT: the body every host but the cluster gateway shares.
pub(crate) async fn serve(
    options: HostOptions,
    capabilities: Capabilities,
    extras: Extras,
) -> Result<(), StartError> {
    let mut config = GatewayConfig::new(options.state_dir.clone());
    config.host = capabilities;
    config.remote_management = options.remote_management;
    config.management_token = options.management_token.clone();
    config.body_budget = options.body_budget;
    config.wasm.keep_resident_bytes = options.pool_keep_resident;
    config.shutdown_grace = options.shutdown_grace;
    config.internal_cidrs = options.internal_cidrs.clone();
    config.pool_memory_bytes = options.pool_memory_bytes;
    if let Some(cap) = options.max_timeout {
        config.max_timeout = cap;
    }
    let platform = Platform::new(config)?;
    let listener = bind(options.listen).await?;
    let address = listener.local_addr().map_err(StartError::Serve)?;
    let _ = platform.listener.set(address);
    let first_load = options
        .source
        .start(
            &platform,
            options.dir.clone(),
            options.watch_interval,
            options.build,
        )
        .await?;
    if first_load == FirstLoad::Done {
        if platform.config.host.manages_functions {
            crate::management::restore(&platform).await;
        }
        platform.set_ready();
    }

    let mut services: Vec<Stop> = Vec::new();
    // One signal stops the HTTP server (drain connections), the scheduler (no new fires; runs
    // in flight get the grace period, then are recorded Interrupted) and the SQS pollers (no
    // new receives; batches in flight get the grace period, then their messages are made
    // visible again at once).
    if extras.cron {
        let scheduler = crate::cron::start(&platform, address.port())?;
        services.push(stop_with(move |grace| async move {
            scheduler.shutdown(grace).await;
        }));
    }
    let pollers = crate::sqs::start(&platform, address.port())?;
    services.push(stop_with(move |grace| async move {
        pollers.shutdown(grace).await;
    }));
    if let Some(settings) = options.async_calls.clone() {
        std::fs::create_dir_all(&options.state_dir).map_err(|source| StartError::StateDir {
            path: options.state_dir.clone(),
            source,
        })?;
        let path = options.state_dir.join("async.db");
        let queue = crate::async_call::SqliteQueue::open(&path).map_err(|source| {
            StartError::AsyncQueue {
                queue: path.display().to_string(),
                source,
            }
        })?;
        let queue: Arc<dyn crate::async_call::AsyncQueue> = Arc::new(queue);
        let _ = platform.async_queue.set(Arc::clone(&queue));
        let worker = crate::async_call::Worker::start(&platform, queue, settings);
        services.push(stop_with(move |grace| worker.shutdown(grace)));
    }
    print_functions(&platform, address).await;
    println!("faas: listening on http://{address}");
    if let Some(listening) = &options.listening {
        listening.send_replace(Some(address));
    }
    let schedules: usize = platform
        .registry
        .list()
        .iter()
        .map(|entry| entry.function.spec.schedules.len())
        .sum();
    if schedules > 0 {
        eprintln!(
            "faas: {schedules} schedule(s); runs recorded in {}",
            options.state_dir.join("runs.db").display()
        );
    }
    let lifecycle = Lifecycle {
        drain_delay: options.drain_delay,
        announce: true,
    };
    lifecycle
        .run(&platform, vec![(listener, Exposure::All)], services)
        .await?;
    eprintln!("faas: stopped");
    Ok(())
}

/// How long the banner waits for loaded functions (server processes, Lambda handlers) to
/// become able to serve, so that it reports what is true rather than "starting".
const BANNER_WAIT: Duration = Duration::from_secs(3);

/// What the person at the terminal sees first: each function, its state
/// ([`crate::health`]) and where it answers.
async fn print_functions(platform: &Platform, address: SocketAddr) {
    let deadline = tokio::time::Instant::now() + BANNER_WAIT;
    let settling = |entry: &crate::registry::Entry| {
        let starting = entry
            .state
            .as_ref()
            .is_ok_and(|loaded| loaded.invoker.readiness().is_err());
        let polling_starts = platform.sqs.get().is_some_and(|pollers| {
            pollers
                .status_of(entry.name())
                .iter()
                .any(|t| t.state == faas_sqs::TriggerState::Starting)
        });
        starting || polling_starts
    };
    while tokio::time::Instant::now() < deadline
        && platform.registry.list().iter().any(|e| settling(e))
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let entries = platform.registry.list();
    let healths: Vec<_> = entries
        .iter()
        .map(|entry| crate::management::Summary::health_in(platform, entry))
        .collect();
    let count = |state| healths.iter().filter(|h| h.state == state).count();
    eprintln!(
        "faas: {} function(s) ready, {} degraded, {} not ready",
        count(State::Ready),
        count(State::Degraded),
        count(State::NotReady)
    );
    for (entry, health) in entries.iter().zip(&healths) {
        let name = entry.name();
        match health.state {
            State::Ready => eprintln!("faas:   {name:<24} http://{address}/function/{name}"),
            State::Degraded => eprintln!(
                "faas:   {name:<24} http://{address}/function/{name}  DEGRADED: {}",
                health.summary()
            ),
            State::NotReady => eprintln!("faas:   {name:<24} NOT READY: {}", health.summary()),
        }
    }
}
