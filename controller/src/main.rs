//! `faas-controller`: watches `Function` resources (and the Deployments it made) and
//! reconciles them; serves `/metrics`, `/healthz` and `/readyz`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use faas_api::Function;
use faas_controller::metrics::Metrics;
use faas_controller::reconcile::{self, Context};
use faas_controller::render::ClusterDefaults;
use faas_controller::render::network::NetworkDefaults;
use http_body_util::Full;
use k8s_openapi::api::core::v1::Toleration;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client};

#[derive(Parser)]
#[command(version, about = "faas controller: Functions become workloads")]
struct Args {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "FAAS_METRICS_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// The `faas-runtime` image (sidecars, pools).
    #[arg(long, env = "FAAS_RUNTIME_IMAGE")]
    runtime_image: String,
    /// The cluster's AWS region (Lambda handlers' AWS_REGION, KEDA's default).
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// The gateway's public base URL, for `status.url`.
    #[arg(long, env = "FAAS_PUBLIC_URL")]
    public_url: Option<String>,
    /// Tolerations of the functions node group, as a JSON list of Kubernetes tolerations.
    #[arg(long, env = "FAAS_FUNCTION_TOLERATIONS", default_value = "[]")]
    function_tolerations: String,
    /// Labels a functions node must have, as `key=value,key=value`.
    #[arg(long, env = "FAAS_FUNCTION_NODE_LABELS", default_value = "")]
    function_node_labels: String,
    /// CPU requested per function container when nothing else says.
    #[arg(long, env = "FAAS_DEFAULT_CPU_REQUEST", default_value = "100m")]
    default_cpu_request: String,
    /// Replicas of each WASM runtime pool.
    #[arg(long, env = "FAAS_POOL_REPLICAS", default_value_t = 2)]
    pool_replicas: i32,
    /// Most replicas of a pool under CPU load (a HorizontalPodAutoscaler between
    /// --pool-replicas and this); at or below --pool-replicas: fixed at --pool-replicas.
    #[arg(long, env = "FAAS_POOL_MAX_REPLICAS", default_value_t = 2)]
    pool_max_replicas: i32,
    /// Average CPU use of pool pods, in percent of their request, the autoscaler aims at.
    #[arg(long, env = "FAAS_POOL_CPU_TARGET_PERCENT", default_value_t = 70,
          value_parser = clap::value_parser!(i32).range(10..=100))]
    pool_cpu_target_percent: i32,
    /// Memory of a pool pod (request and limit).
    #[arg(long, env = "FAAS_POOL_MEMORY", default_value = "1Gi")]
    pool_memory: String,
    /// CPU requested by a pool pod.
    #[arg(long, env = "FAAS_POOL_CPU_REQUEST", default_value = "250m")]
    pool_cpu_request: String,
    /// A `kubernetes.io/dockerconfigjson` Secret (in each pool's namespace) mounted into pool
    /// pods as their docker config: the credentials of their artifact pulls. Empty: none.
    #[arg(long, env = "FAAS_POOL_REGISTRY_SECRET", default_value = "")]
    pool_registry_secret: String,
    /// The IAM role of every pool pod (IRSA on its ServiceAccount): ECR pulls of `oci://`
    /// artifacts only; functions get their own roles. Empty: none.
    #[arg(long, env = "FAAS_POOL_ROLE_ARN", default_value = "")]
    pool_role_arn: String,
    /// The longest `spec.timeout` a Function may have (container functions: long jobs, up
    /// to 24h; WASM functions stay within 15m).
    #[arg(long, env = "FAAS_MAX_TIMEOUT", default_value = "15m")]
    max_timeout: String,
    /// IAM roles each namespace's Functions may use: a JSON object of namespace (or `*`) to
    /// ARN patterns (`*` matches anything, `{namespace}` is the Function's namespace).
    /// Empty: no Function may name a role.
    #[arg(long, env = "FAAS_ALLOWED_ROLE_ARNS", default_value = "{}")]
    allowed_role_arns: String,
    /// Node groups `spec.placement.nodeGroup` may name, comma-separated. Empty: none.
    #[arg(long, env = "FAAS_ALLOWED_NODE_GROUPS", default_value = "")]
    allowed_node_groups: String,
    /// Node label keys `spec.placement.nodeSelector` may use, comma-separated. Empty: none.
    #[arg(long, env = "FAAS_ALLOWED_NODE_SELECTOR_KEYS", default_value = "")]
    allowed_node_selector_keys: String,
    /// Taint keys `spec.placement.tolerations` may tolerate, comma-separated. Empty: none.
    #[arg(long, env = "FAAS_ALLOWED_TOLERATION_KEYS", default_value = "")]
    allowed_toleration_keys: String,
    /// JSON logs.
    #[arg(long, env = "FAAS_JSON_LOGS")]
    json_logs: bool,
    /// Namespace of the leader-election Lease (the controller's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "faas-system")]
    lease_namespace: String,
    /// Host names the platform answers on itself (comma-separated), besides the host of
    /// `--public-url`: no Function may claim them as `spec.http.hosts`.
    #[arg(long, env = "FAAS_PLATFORM_HOSTS", value_delimiter = ',')]
    platform_hosts: Vec<String>,
    /// Domains under which Functions may claim `*.` wildcard hosts (comma-separated;
    /// empty: none).
    #[arg(long, env = "FAAS_WILDCARD_HOST_SUFFIXES", value_delimiter = ',')]
    wildcard_host_suffixes: Vec<String>,
    /// NetworkPolicies for function and pool pods, letting in only pods of the controller's
    /// namespace with these labels: a JSON list of label maps (the gateway's, the
    /// controller's). Unset: no NetworkPolicies are rendered.
    #[arg(long, env = "FAAS_NETWORK_POLICY_INGRESS_FROM")]
    network_policy_ingress_from: Option<String>,
    /// The gateway's admin listener (its in-cluster Service), through which cron and manual
    /// runs call functions, e.g. `http://faas-gateway.faas-system.svc.cluster.local:9090`.
    #[arg(long, env = "FAAS_GATEWAY_URL")]
    gateway_url: String,
    /// The platform token the gateway expects from the controller's runs (the chart's
    /// Secret); without it the gateway drops the runs' headers (trigger, run id, timeout).
    // faas_api::contract::PLATFORM_TOKEN_ENV, spelt out: the chart tests read the literal.
    #[arg(long, env = "FAAS_PLATFORM_TOKEN", hide_env_values = true)]
    platform_token: Option<String>,
    /// S3 bucket where job runs' whole logs are kept (`controller.runLogs`); none: a run
    /// keeps its last 4 KiB only.
    #[arg(long, env = "FAAS_RUN_LOG_BUCKET")]
    run_log_bucket: Option<String>,
    /// Key prefix of the run logs in that bucket.
    #[arg(long, env = "FAAS_RUN_LOG_PREFIX", default_value = "run-logs/")]
    run_log_prefix: String,
    /// Address the run-log bucket by path (`https://host/bucket/key`), for S3-compatible
    /// stores (MinIO) and local test servers.
    #[arg(long, env = "FAAS_RUN_LOG_PATH_STYLE")]
    run_log_path_style: bool,
}

/// The S3 archive of job runs' logs, when a bucket is named: the platform's AWS
/// configuration (the controller's IRSA role).
async fn log_archive(
    args: &Args,
) -> anyhow::Result<Option<faas_controller::log_archive::LogArchive>> {
    let Some(bucket) = args.run_log_bucket.as_deref().filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    let config = faas_sqs::Clients::from_env()
        .sdk_config()
        .await
        .context("run logs: no AWS credentials for the controller (its IRSA role)")?;
    tracing::info!(bucket, prefix = %args.run_log_prefix, "job runs' whole logs go to S3");
    let s3 = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(args.run_log_path_style)
        .build();
    Ok(Some(faas_controller::log_archive::LogArchive::new(
        aws_sdk_s3::Client::from_conf(s3),
        bucket,
        &args.run_log_prefix,
    )))
}

fn defaults(args: &Args) -> anyhow::Result<ClusterDefaults> {
    let function_tolerations: Vec<Toleration> = serde_json::from_str(&args.function_tolerations)
        .context("--function-tolerations: expected a JSON list of tolerations")?;
    let mut function_node_labels = BTreeMap::new();
    for pair in args
        .function_node_labels
        .split(',')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--function-node-labels: {pair:?} is not key=value"))?;
        function_node_labels.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    let list = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let policy = faas_api::ClusterPolicy {
        allowed_role_arns: serde_json::from_str(&args.allowed_role_arns).context(
            "--allowed-role-arns: expected a JSON object of namespace to a list of ARN patterns",
        )?,
        allowed_node_groups: list(&args.allowed_node_groups),
        allowed_node_selector_keys: list(&args.allowed_node_selector_keys),
        allowed_toleration_keys: list(&args.allowed_toleration_keys),
        pool_memory_bytes: Some(
            faas_api::limits::parse_quantity(&args.pool_memory)
                .map_err(anyhow::Error::msg)
                .context("--pool-memory")?,
        ),
        max_timeout: Some(
            faas_api::limits::parse_duration(&args.max_timeout)
                .map_err(anyhow::Error::msg)
                .context("--max-timeout")?,
        ),
    };
    let network = match args.network_policy_ingress_from.as_deref() {
        None | Some("") => None,
        Some(json) => Some(NetworkDefaults {
            platform_namespace: args.lease_namespace.clone(),
            ingress_from: serde_json::from_str(json)
                .context("--network-policy-ingress-from: expected a JSON list of label maps")?,
        }),
    };
    Ok(ClusterDefaults {
        policy,
        function_tolerations,
        function_node_labels,
        runtime_image: args.runtime_image.clone(),
        default_cpu_request: args.default_cpu_request.clone(),
        region: args.region.clone(),
        pool_replicas: args.pool_replicas,
        pool_max_replicas: args.pool_max_replicas,
        pool_cpu_target_percent: args.pool_cpu_target_percent,
        pool_memory: args.pool_memory.clone(),
        pool_cpu_request: args.pool_cpu_request.clone(),
        pool_registry_secret: Some(args.pool_registry_secret.trim().to_owned())
            .filter(|s| !s.is_empty()),
        pool_role_arn: Some(args.pool_role_arn.trim().to_owned()).filter(|s| !s.is_empty()),
        network,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    faas_telemetry::init_tracing(args.json_logs);
    let defaults = defaults(&args)?;
    let client = Client::try_default()
        .await
        .context("no Kubernetes API to talk to (in-cluster config or KUBECONFIG)")?;
    let functions: Api<Function> = Api::all(client.clone());
    functions
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .context("cannot list Functions: is the CRD installed (charts/faas/crds) and may this ServiceAccount list functions.faas.dev?")?;
    let keda = reconcile::keda_installed(&client).await;
    tracing::info!(
        keda,
        "KEDA ScaledObjects {}",
        if keda {
            "available: SQS triggers scale on queue depth"
        } else {
            "not installed: functions keep scale.min replicas"
        }
    );
    let metrics = Metrics::new()?;
    // The same rule as the gateway's: the platform's own hosts are the public URL's host and
    // the listed ones.
    let mut platform_hosts = args.platform_hosts.clone();
    platform_hosts.extend(args.public_url.as_deref().and_then(url_host));
    let routing =
        faas_api::routing::RoutingPolicy::cluster(&platform_hosts, &args.wildcard_host_suffixes);
    // Every Function, for the routes they claim against each other, and for cron.
    let (functions_store, writer) = kube::runtime::reflector::store();
    let reporter = Reporter {
        controller: reconcile::MANAGER.to_owned(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let job_defaults = Arc::new(defaults.clone());
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        defaults,
        keda,
        public_url: args.public_url.clone(),
        metrics,
        routing,
        functions: Some(functions_store.clone()),
        platform_token: args.platform_token.clone().filter(|t| !t.is_empty()),
    });
    let ready = Arc::new(AtomicBool::new(false));
    let server = tokio::spawn(serve(args.listen, Arc::clone(&ctx), Arc::clone(&ready)));

    // One leader among the replicas: it reconciles and fires schedules; the others wait.
    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("faas-controller-{}", std::process::id()));
    let lease = kube_lease_manager::LeaseManagerBuilder::new(
        client.clone(),
        faas_api::contract::CONTROLLER_LEASE,
    )
    .with_namespace(args.lease_namespace.clone())
    .with_identity(identity.clone())
    .with_duration(15)
    .with_grace(5)
    .build()
    .await
    .context("cannot set up the leader-election Lease (RBAC on coordination.k8s.io/leases?)")?;
    let (mut leader, lease_task) = lease.watch().await;
    ready.store(true, Ordering::Release);

    let cron_metrics = faas_schedule::CronMetrics::new(ctx.metrics.registry())?;
    if args.platform_token.as_deref().is_none_or(str::is_empty) {
        tracing::warn!(
            "no platform token ({}): the gateway will drop the run headers (trigger, run id, timeout) of cron and manual runs",
            faas_api::contract::PLATFORM_TOKEN_ENV
        );
    }
    let cron = Arc::new(
        faas_controller::cron::ClusterCron::new(
            client.clone(),
            functions_store,
            job_defaults,
            leader.clone(),
            cron_metrics,
            run_owner(&identity),
            args.gateway_url.clone(),
            args.platform_token.clone().filter(|t| !t.is_empty()),
        )
        .with_archive(log_archive(&args).await?),
    );
    let following = tokio::spawn(faas_controller::cron::follow(
        client.clone(),
        Arc::clone(&cron),
        writer,
    ));

    tracing::info!("waiting for the leader Lease");
    if leader.wait_for(|leads| *leads).await.is_err() {
        anyhow::bail!("the Lease manager stopped");
    }
    tracing::info!("leading: reconciling Functions and firing schedules");
    let requests = tokio::spawn(faas_controller::cron::follow_requests(
        client.clone(),
        Arc::clone(&cron),
    ));
    let controller = reconcile::run(ctx, None, true);
    let lost = async {
        let _ = leader.wait_for(|leads| !*leads).await;
    };
    let lost_lease = tokio::select! {
        () = controller => false,
        () = lost => true,
    };
    cron.shutdown(std::time::Duration::from_secs(30)).await;
    following.abort();
    requests.abort();
    server.abort();
    drop(lease_task);
    if lost_lease {
        // Another replica leads now; start again as a standby rather than reconcile beside it.
        anyhow::bail!("lost the leader Lease");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Who owns the runs this process starts: the pod (the Lease identity) and this process's
/// start, not the pod alone. A controller killed in its pod (OOM, `kill -9`) is restarted in
/// the same pod and may lead again at once; its predecessor's unfinished runs must look
/// orphaned to it (to be resumed by their retry policy), not like its own runs in flight,
/// which it would leave `Running` for ever.
fn run_owner(identity: &str) -> String {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{identity}/{started}")
}

async fn serve(listen: SocketAddr, ctx: Arc<Context>, ready: Arc<AtomicBool>) {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%listen, error = %e, "cannot serve metrics");
            return;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let ctx = Arc::clone(&ctx);
        let ready = Arc::clone(&ready);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: http::Request<_>| {
                let (status, body) = match request.uri().path() {
                    "/metrics" => (200, ctx.metrics.render()),
                    "/healthz" => (200, "ok\n".to_owned()),
                    "/readyz" if ready.load(Ordering::Acquire) => (200, "ready\n".to_owned()),
                    "/readyz" => (503, "starting\n".to_owned()),
                    _ => (404, "not found\n".to_owned()),
                };
                let mut response = http::Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() =
                    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The host of `https://host[:port]/...`.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then(|| host.to_owned())
}
