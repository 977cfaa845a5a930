//! Cluster mode (`faas-gateway --cluster`): the edge behind the shared ALB.
//!
//! The same request path as every mode (routing, body limit, concurrency, metrics, async
//! calls); what differs is where functions come from and where they run:
//!
//! - [`functions`]: the registry follows `Function` resources (a watch per namespace, or one
//!   for all); each entry's invoker is a [`upstream::RemoteFunction`];
//! - [`endpoints`]: the ready pods of every function and pool Service, from EndpointSlices;
//! - [`upstream`]: least in-flight of two random pods, the hold while a function at zero
//!   replicas starts, forwarding;
//! - [`scaler`]: scale from zero and back to zero for the functions whose replicas the
//!   gateway owns (`faas_api::scaling`);
//! - [`relist`]: which objects a watch's relist saw, per watch scope (both watches use it).
//!
//! Two listeners: the public one (functions with `http.public` not false and their async
//! calls, behind the ALB through the TargetGroupBinding) and the admin one, never behind the
//! ALB: in-cluster callers reach every function there, private ones included, besides the
//! read-only `/system`, the dashboard and `/metrics`.
//! On SIGTERM `/readyz` fails at once, traffic keeps being served for the drain delay (the
//! target group's deregistration delay: the ALB still sends requests until it is over), then
//! the listeners close and requests in flight get the grace period.

pub mod endpoints;
pub mod functions;
pub mod relist;
pub mod scaler;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::Context as _;
use faas_api::Function;
use futures::StreamExt as _;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::net::TcpListener;

use crate::async_call::{AsyncSettings, SqsQueue, Worker};
use crate::platform::{GatewayConfig, Platform, Role};
use crate::server::Exposure;
use endpoints::Endpoints;
use functions::ClusterFunctions;
use scaler::Scaler;

/// The slices the gateway watches: those the EndpointSlice controller made
/// ([`endpoints::SLICE_MANAGER_LABEL`]) for a Service the faas controller created (the
/// EndpointSlice controller copies the Service's labels), not every slice of the cluster, and
/// never a hand-made one. [`endpoints::Endpoints::apply`] checks the manager label again.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=faas-controller,\
     endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io";

/// Settings of `faas-gateway --cluster`.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The public listener (behind the ALB).
    pub listen: SocketAddr,
    /// The admin listener.
    pub admin_listen: SocketAddr,
    /// Namespaces whose Functions are served; empty: all.
    pub namespaces: Vec<String>,
    /// Longest hold of a request for a function without a ready pod.
    pub scale_from_zero_timeout: Duration,
    /// How often idle functions are looked for.
    pub idle_check_interval: Duration,
    /// The SQS queue of async calls, if any.
    pub async_queue_url: Option<String>,
    /// Retries of async calls.
    pub async_settings: AsyncSettings,
    /// After SIGTERM, how long traffic keeps being served while `/readyz` fails.
    pub drain_delay: Duration,
    /// Then, how long requests in flight may take.
    pub shutdown_grace: Duration,
    /// Serve `/system` and `/ui` to non-loopback clients of the admin listener (with the
    /// token).
    pub remote_management: bool,
    /// Host names the platform answers on itself (the ALB's host for `/function/...`):
    /// no Function may claim them.
    pub platform_hosts: Vec<String>,
    /// Domains under which Functions may claim `*.` wildcard hosts (none by default).
    pub wildcard_host_suffixes: Vec<String>,
    /// Accept loopback EndpointSlice addresses: tests only (their pods listen on loopback);
    /// the binary never sets it.
    pub loopback_upstreams: bool,
    /// `GatewayConfig::management_token`.
    pub management_token: Option<String>,
    /// `GatewayConfig::body_budget`.
    pub body_budget: u64,
}

/// A started cluster gateway (without its listeners).
pub struct Cluster {
    pub platform: Arc<Platform>,
    pub endpoints: Arc<Endpoints>,
    pub scaler: Arc<Scaler>,
}

/// Builds the platform and starts following Functions and EndpointSlices through `client`.
/// The platform turns ready once the first list of both is in.
pub fn start(options: &ClusterOptions, client: Client) -> anyhow::Result<Cluster> {
    let mut config = GatewayConfig::new(std::env::temp_dir().join("faas-gateway"));
    config.role = Role::Cluster;
    config.shutdown_grace = options.shutdown_grace;
    config.remote_management = options.remote_management;
    config.management_token = options.management_token.clone();
    config.body_budget = options.body_budget;
    // Nothing is compiled here: no artifact cache on a read-only root filesystem.
    config.wasm.cache_dir = None;
    let platform = Platform::new(config)?;
    platform
        .registry
        .set_policy(faas_api::routing::RoutingPolicy::cluster(
            &options.platform_hosts,
            &options.wildcard_host_suffixes,
        ));
    let endpoints = Arc::new(if options.loopback_upstreams {
        Endpoints::allowing_loopback()
    } else {
        Endpoints::default()
    });
    let scaler = Arc::new(Scaler::new(
        client.clone(),
        platform.metrics.scale_events.clone(),
    ));
    let functions = Arc::new(Mutex::new(ClusterFunctions::new(
        Arc::clone(&endpoints),
        Arc::clone(&scaler),
        upstream::pod_client(),
        options.scale_from_zero_timeout,
    )));
    let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    let pending = Arc::new(AtomicUsize::new(scopes.len() * 2));
    for scope in scopes {
        let functions_api: Api<Function> = match &scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let slices_api: Api<EndpointSlice> = match &scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        tokio::spawn(follow_functions(
            Arc::downgrade(&platform),
            Arc::clone(&functions),
            functions_api,
            scope.clone(),
            Arc::clone(&pending),
        ));
        tokio::spawn(follow_slices(
            Arc::downgrade(&platform),
            Arc::clone(&endpoints),
            slices_api,
            scope,
            Arc::clone(&pending),
        ));
    }
    scaler.spawn_idle_checks(options.idle_check_interval);
    Ok(Cluster {
        platform,
        endpoints,
        scaler,
    })
}

/// One initial list done; the platform is ready when all are.
fn initial_list_done(platform: &Platform, pending: &AtomicUsize) {
    if pending.fetch_sub(1, Ordering::AcqRel) == 1 {
        let (ready, failed) = platform.registry.counts();
        tracing::info!(
            ready,
            failed,
            "cluster gateway: functions and endpoints listed"
        );
        platform.set_ready();
    }
}

async fn follow_functions(
    platform: Weak<Platform>,
    functions: Arc<Mutex<ClusterFunctions>>,
    api: Api<Function>,
    scope: Option<String>,
    pending: Arc<AtomicUsize>,
) {
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let mut listed = false;
    while let Some(event) = stream.next().await {
        let Some(platform) = platform.upgrade() else {
            return;
        };
        let mut functions = functions.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Ok(Event::Init) => functions.relist_started(scope.as_deref()),
            Ok(Event::InitApply(f) | Event::Apply(f)) => functions.apply(&platform, f),
            Ok(Event::InitDone) => {
                functions.relist_done(&platform, scope.as_deref());
                if !listed {
                    listed = true;
                    initial_list_done(&platform, &pending);
                }
            }
            Ok(Event::Delete(f)) => functions.delete(&platform, &f),
            Err(e) => tracing::warn!(error = %e, "watching Functions failed; retrying"),
        }
    }
}

async fn follow_slices(
    platform: Weak<Platform>,
    endpoints: Arc<Endpoints>,
    api: Api<EndpointSlice>,
    scope: Option<String>,
    pending: Arc<AtomicUsize>,
) {
    let config = watcher::Config::default().labels(MANAGED_BY_SELECTOR);
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    let mut listed = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => endpoints.relist_started(scope.as_deref()),
            Ok(Event::InitApply(s) | Event::Apply(s)) => endpoints.apply(&s),
            Ok(Event::InitDone) => {
                endpoints.relist_done(scope.as_deref());
                if !listed {
                    listed = true;
                    let Some(platform) = platform.upgrade() else {
                        return;
                    };
                    initial_list_done(&platform, &pending);
                }
            }
            Ok(Event::Delete(s)) => endpoints.delete(&s),
            Err(e) => tracing::warn!(error = %e, "watching EndpointSlices failed; retrying"),
        }
    }
}

/// Runs the cluster gateway until SIGTERM/SIGINT, then drains.
pub async fn run(options: ClusterOptions) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("the cluster gateway reads Functions from the Kubernetes API: no in-cluster config or KUBECONFIG")?;
    let public = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let admin = TcpListener::bind(options.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.admin_listen))?;
    let cluster = start(&options, client)?;
    let platform = cluster.platform;
    let worker = match &options.async_queue_url {
        Some(url) => {
            let clients = faas_runtime::sqs::client::Clients::from_env();
            let queue = SqsQueue::open(&clients, url)
                .await
                .with_context(|| format!("async calls: cannot use the queue {url}"))?;
            let queue: Arc<dyn crate::async_call::AsyncQueue> = Arc::new(queue);
            let _ = platform.async_queue.set(Arc::clone(&queue));
            Some(Worker::start(
                &platform,
                queue,
                options.async_settings.clone(),
            ))
        }
        None => None,
    };
    tracing::info!(public = %options.listen, admin = %options.admin_listen, "cluster gateway listening");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let draining = Arc::clone(&platform);
    let drain_delay = options.drain_delay;
    tokio::spawn(async move {
        crate::local::shutdown_signal().await;
        crate::server::drain(&draining, drain_delay).await;
        stop.send_replace(true);
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    // The worker stops with the listeners, within the same grace period: the pod's
    // terminationGracePeriodSeconds counts drain delay + one grace period.
    let grace = options.shutdown_grace;
    let worker_stopped = until_stopped(stopped.clone());
    let (served, admin_served, ()) = tokio::join!(
        crate::server::serve_exposed(
            public,
            Arc::clone(&platform),
            Exposure::Public,
            until_stopped(stopped.clone()),
        ),
        crate::server::serve_exposed(
            admin,
            Arc::clone(&platform),
            Exposure::Admin,
            until_stopped(stopped),
        ),
        async move {
            worker_stopped.await;
            if let Some(worker) = worker {
                worker.shutdown(grace).await;
            }
        },
    );
    served?;
    admin_served?;
    tracing::info!("cluster gateway stopped");
    Ok(())
}
