//! Which platform a command talks to: a local platform's gateway, or the Kubernetes cluster of
//! the kubeconfig. One set of commands serves both.
//!
//! The rule: `--gateway URL` (or `FAAS_GATEWAY`) picks a local platform; `--context` or
//! `-n/--namespace` pick the cluster; otherwise the cluster when a kubeconfig exists
//! (`KUBECONFIG` or `~/.kube/config`), else the local platform on 127.0.0.1:8080.

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The target flags every command accepts.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TargetArgs {
    /// A local platform's gateway URL (instead of the cluster of the kubeconfig).
    #[arg(long, env = "FAAS_GATEWAY", global = true)]
    pub gateway: Option<String>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
}

pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";

/// A resolved target.
pub enum Target {
    Gateway(String),
    Cluster(Cluster),
}

/// A cluster connection and the namespace commands act in.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub namespace: String,
    /// The context's name, for messages.
    pub context: String,
}

impl TargetArgs {
    /// Resolves the target, connecting to the cluster when it is one.
    pub async fn resolve(&self) -> anyhow::Result<Target> {
        if let Some(gateway) = &self.gateway {
            if self.context.is_some() || self.namespace.is_some() {
                anyhow::bail!(
                    "--gateway targets a local platform; --context and --namespace target a cluster: give one or the other"
                );
            }
            return Ok(Target::Gateway(gateway.clone()));
        }
        let wants_cluster = self.context.is_some() || self.namespace.is_some();
        let kubeconfig = match Kubeconfig::read() {
            Ok(kubeconfig) => kubeconfig,
            Err(_) if !wants_cluster => return Ok(Target::Gateway(DEFAULT_GATEWAY.to_owned())),
            Err(e) => anyhow::bail!(
                "no usable kubeconfig ({e}); hint: set KUBECONFIG or write ~/.kube/config (e.g. `aws eks update-kubeconfig --name CLUSTER`), or pass --gateway URL for a local platform"
            ),
        };
        Ok(Target::Cluster(
            Cluster::connect(
                kubeconfig,
                self.context.as_deref(),
                self.namespace.as_deref(),
            )
            .await?,
        ))
    }
}

impl Cluster {
    pub async fn connect(
        kubeconfig: Kubeconfig,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> anyhow::Result<Cluster> {
        let names: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
        let chosen = context
            .map(str::to_owned)
            .or_else(|| kubeconfig.current_context.clone());
        let Some(chosen) = chosen else {
            anyhow::bail!(
                "the kubeconfig has no current context; hint: pass --context (one of: {})",
                list_or_none(&names)
            );
        };
        if !names.contains(&chosen) {
            anyhow::bail!(
                "context {chosen:?} not found in the kubeconfig; hint: use one of: {}",
                list_or_none(&names)
            );
        }
        let options = KubeConfigOptions {
            context: Some(chosen.clone()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .with_context(|| format!("reading context {chosen:?} of the kubeconfig"))?;
        let namespace = namespace
            .map(str::to_owned)
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config)
            .with_context(|| format!("building a client for context {chosen:?}"))?;
        Ok(Cluster {
            client,
            namespace,
            context: chosen,
        })
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none defined".to_owned()
    } else {
        names.join(", ")
    }
}

/// A Kubernetes API error as one line with what to do about it.
pub fn explain(error: kube::Error, doing: &str) -> anyhow::Error {
    match &error {
        kube::Error::Api(status) if status.code == 403 => anyhow::anyhow!(
            "{doing}: forbidden: {}; hint: your RBAC role lacks this verb on this resource (ask the platform team for the faas developer role in the namespace)",
            status.message
        ),
        kube::Error::Api(status) if status.code == 401 => anyhow::anyhow!(
            "{doing}: unauthorized ({}); hint: your cluster credentials expired or are wrong (for EKS: `aws sso login`, then `aws eks update-kubeconfig`)",
            status.message
        ),
        kube::Error::Api(status)
            if status.code == 404
                && status
                    .message
                    .contains("the server could not find the requested resource") =>
        {
            anyhow::anyhow!(
                "{doing}: the Function resource (faas.dev/v1alpha1) is not installed in this cluster; hint: install the faas Helm chart (charts/faas)"
            )
        }
        kube::Error::Api(status) => {
            anyhow::anyhow!(
                "{doing}: {} ({} {})",
                status.message,
                status.code,
                status.reason
            )
        }
        other => anyhow::anyhow!(
            "{doing}: cannot reach the API server: {other}; hint: check the context (--context) and your network or VPN"
        ),
    }
}
