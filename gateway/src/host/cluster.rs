//! The cluster gateway (`faas-gateway --cluster`): the edge behind the shared ALB. Functions
//! come from `Function` resources ([`crate::source::cluster`]) and run in their pods
//! ([`crate::load::remote`]); this process builds no WASM engine and runs no process.
//!
//! Two listeners: the public one (functions with `http.public` not false and their async
//! calls, behind the ALB through the TargetGroupBinding) and the admin one, never behind the
//! ALB: in-cluster callers reach every function there, private ones included, besides the
//! read-only `/system`, the dashboard and `/metrics`. On SIGTERM the shared
//! [`crate::lifecycle`] runs with the drain delay (the target group's deregistration delay).

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faas_api::Function;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{Api, Client};

use super::{Capabilities, bind};
use crate::async_call::{AsyncSettings, SqsQueue, Worker};
use crate::cluster::endpoints::Endpoints;
use crate::cluster::functions::ClusterFunctions;
use crate::cluster::scaler::Scaler;
use crate::cluster::upstream;
use crate::error::StartError;
use crate::lifecycle::{Lifecycle, stop_with};
use crate::platform::{GatewayConfig, Platform};
use crate::server::Exposure;
use crate::source::cluster::{follow_functions, follow_slices};

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
    /// `GatewayConfig::platform_token`.
    pub platform_token: Option<String>,
    /// `GatewayConfig::body_budget`.
    pub body_budget: u64,
    /// `GatewayConfig::pool_memory_bytes`: the pools' pod memory, which sizes the admission
    /// of WASM functions that leave `spec.concurrency` out.
    pub pool_memory_bytes: Option<u64>,
}

/// A started cluster gateway (without its listeners).
pub struct Cluster {
    pub platform: Arc<Platform>,
    pub endpoints: Arc<Endpoints>,
    pub scaler: Arc<Scaler>,
}

/// Builds the platform and starts following Functions and EndpointSlices through `client`.
/// The platform turns ready once the first list of both is in.
pub fn start(options: &ClusterOptions, client: Client) -> Result<Cluster, StartError> {
    let mut config = GatewayConfig::new(std::env::temp_dir().join("faas-gateway"));
    config.host = Capabilities::cluster();
    config.shutdown_grace = options.shutdown_grace;
    config.remote_management = options.remote_management;
    config.management_token = options.management_token.clone();
    config.platform_token = options.platform_token.clone();
    config.body_budget = options.body_budget;
    config.pool_memory_bytes = options.pool_memory_bytes;
    // Nothing is compiled here: no artifact cache on a read-only root filesystem.
    config.wasm.cache_dir = None;
    let platform = Platform::new(config)?;
    let _ = platform.kube.set(client.clone());
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
        platform.metrics.cold_starts.clone(),
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
    // The controller's cron records runs as FunctionRuns: the admin dashboard reads them.
    let _ = platform
        .run_history
        .set(Arc::new(crate::run_history::ClusterHistory::new(
            client.clone(),
            options.namespaces.clone(),
        )));
    Ok(Cluster {
        platform,
        endpoints,
        scaler,
    })
}

/// Runs the cluster gateway until SIGTERM/SIGINT, then drains.
pub async fn run(options: ClusterOptions) -> Result<(), StartError> {
    let client = Client::try_default()
        .await
        .map_err(|source| StartError::Kubernetes {
            what: "the cluster gateway reads Functions from the Kubernetes API",
            source,
        })?;
    let public = bind(options.listen).await?;
    let admin = bind(options.admin_listen).await?;
    let cluster = start(&options, client)?;
    let platform = cluster.platform;
    let mut services = Vec::new();
    if let Some(url) = &options.async_queue_url {
        let clients = faas_sqs::client::Clients::from_env();
        let queue =
            SqsQueue::open(&clients, url)
                .await
                .map_err(|source| StartError::AsyncQueue {
                    queue: url.clone(),
                    source,
                })?;
        let queue: Arc<dyn crate::async_call::AsyncQueue> = Arc::new(queue);
        let _ = platform.async_queue.set(Arc::clone(&queue));
        let worker = Worker::start(&platform, queue, options.async_settings.clone());
        // The worker stops with the listeners, within the same grace period: the pod's
        // terminationGracePeriodSeconds counts drain delay + one grace period.
        services.push(stop_with(move |grace| worker.shutdown(grace)));
    }
    tracing::info!(public = %options.listen, admin = %options.admin_listen, "cluster gateway listening");
    let lifecycle = Lifecycle {
        drain_delay: options.drain_delay,
        announce: false,
    };
    lifecycle
        .run(
            &platform,
            vec![(public, Exposure::Public), (admin, Exposure::Admin)],
            services,
        )
        .await?;
    tracing::info!("cluster gateway stopped");
    Ok(())
}
