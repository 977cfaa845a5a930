//! Which platform a command talks to: a local platform's gateway, or a Kubernetes cluster of
//! the kubeconfig. One set of commands serves both; this module decides which, says why, and
//! refuses to change a cluster nobody chose.
//!
//! The rule, first match wins:
//! 1. `--gateway URL` (or `FAAS_GATEWAY`): that local platform.
//! 2. `--context` / `-n` (or `FAAS_CONTEXT` / `FAAS_NAMESPACE`): that cluster.
//! 3. the target saved with `faas target set` ([`record::Chosen`]).
//! 4. a running `faas up` (it records itself, [`record::running`]).
//! 5. the kubeconfig's current context (`KUBECONFIG` or `~/.kube/config`): read-only commands
//!    use it; commands that change something refuse, since nobody chose it.
//! 6. the local platform on 127.0.0.1:8080.

pub mod record;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

use record::{Chosen, LocalPlatform};

/// The target flags every command accepts.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TargetArgs {
    /// A local platform's gateway URL.
    #[arg(long, env = "FAAS_GATEWAY", global = true)]
    pub gateway: Option<String>,
    /// Kubeconfig context (default: the one `faas target set` saved, else the current one).
    #[arg(long, env = "FAAS_CONTEXT", global = true)]
    pub context: Option<String>,
    /// Namespace (default: the one `faas target set` saved, else the context's, else
    /// `default`).
    #[arg(short = 'n', long, env = "FAAS_NAMESPACE", global = true)]
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

/// Why a target was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// `--gateway` / `FAAS_GATEWAY`.
    GatewayFlag,
    /// `--context` / `-n` (or their environment variables).
    ClusterFlag,
    /// `faas target set`, saved in this file.
    Saved(std::path::PathBuf),
    /// A running `faas up`.
    Running(LocalPlatform),
    /// The kubeconfig's current context, which nobody chose for faas.
    Kubeconfig,
    /// Nothing else: the default local address.
    Default,
}

impl Why {
    /// Whether the user chose this target (a cluster that was not chosen is never changed).
    pub fn chosen(&self) -> bool {
        *self != Why::Kubeconfig
    }

    /// The reason, as a sentence part.
    pub fn said(&self) -> String {
        match self {
            Why::GatewayFlag => "--gateway (or FAAS_GATEWAY)".into(),
            Why::ClusterFlag => {
                "--context/-n (or FAAS_CONTEXT/FAAS_NAMESPACE)".into()
            }
            Why::Saved(path) => format!("saved with `faas target set` in {}", path.display()),
            Why::Running(platform) => format!(
                "a running `faas up` (pid {}, serving {})",
                platform.pid,
                platform.dir.display()
            ),
            Why::Kubeconfig => {
                "the kubeconfig's current context (no local platform is running and no target was chosen)".into()
            }
            Why::Default => {
                "no kubeconfig, no running `faas up` and no saved target: the default address"
                    .into()
            }
        }
    }
}

/// A target and why it is the one.
pub struct Resolved {
    pub target: Target,
    pub why: Why,
}

impl Resolved {
    /// `local http://…` or `cluster CONTEXT, namespace NS`: what `→ …` lines and
    /// `faas target` print.
    pub fn said(&self) -> String {
        match &self.target {
            Target::Gateway(url) => format!("local {url}"),
            Target::Cluster(cluster) => format!(
                "cluster {}, namespace {}",
                cluster.context, cluster.namespace
            ),
        }
    }
}

/// Where a target points before any connection.
enum Plan {
    Gateway(String),
    Cluster {
        kubeconfig: Box<Kubeconfig>,
        context: Option<String>,
        namespace: Option<String>,
    },
}

impl TargetArgs {
    /// Resolves the target, connecting to the cluster when it is one. `action` is what the
    /// command will do when it changes something (`deploy`, `delete`, ...): such a command
    /// refuses a cluster that was not chosen, before connecting to it.
    pub async fn resolve(&self, action: Option<&str>) -> anyhow::Result<Resolved> {
        let (plan, why) = self.plan().await?;
        let target = match plan {
            Plan::Gateway(url) => Target::Gateway(url),
            Plan::Cluster {
                kubeconfig,
                context,
                namespace,
            } => {
                if let Some(action) = action
                    && !why.chosen()
                {
                    let current = kubeconfig.current_context.clone().unwrap_or_default();
                    anyhow::bail!(
                        "refusing to {action} on cluster context {current:?}: it is only the kubeconfig's current context, and no local platform is running; hint: choose it (`--context {current}`, or `faas target set cluster --context {current} [-n NAMESPACE]`), or start a local platform with `faas up`, or pass --gateway URL"
                    );
                }
                Target::Cluster(
                    Cluster::connect(*kubeconfig, context.as_deref(), namespace.as_deref()).await?,
                )
            }
        };
        Ok(Resolved { target, why })
    }

    async fn plan(&self) -> anyhow::Result<(Plan, Why)> {
        if let Some(gateway) = &self.gateway {
            if self.context.is_some() || self.namespace.is_some() {
                anyhow::bail!(
                    "--gateway targets a local platform; --context and --namespace target a cluster: give one or the other"
                );
            }
            return Ok((Plan::Gateway(gateway.clone()), Why::GatewayFlag));
        }
        let saved = record::chosen()?;
        let saved_why = || Why::Saved(record::chosen_path().unwrap_or_default());
        if self.context.is_some() || self.namespace.is_some() {
            // `-n` alone keeps a saved cluster's context.
            let context = self.context.clone().or(match &saved {
                Some(Chosen::Cluster { context, .. }) => Some(context.clone()),
                _ => None,
            });
            let plan = Plan::Cluster {
                kubeconfig: Box::new(read_kubeconfig()?),
                context,
                namespace: self.namespace.clone(),
            };
            return Ok((plan, Why::ClusterFlag));
        }
        match saved {
            Some(Chosen::Local {
                gateway: Some(gateway),
            }) => return Ok((Plan::Gateway(gateway), saved_why())),
            Some(Chosen::Local { gateway: None }) => {
                let url = record::running()
                    .await
                    .into_iter()
                    .next()
                    .map_or_else(|| DEFAULT_GATEWAY.to_owned(), |p| p.url);
                return Ok((Plan::Gateway(url), saved_why()));
            }
            Some(Chosen::Cluster { context, namespace }) => {
                let plan = Plan::Cluster {
                    kubeconfig: Box::new(read_kubeconfig()?),
                    context: Some(context),
                    namespace,
                };
                return Ok((plan, saved_why()));
            }
            None => {}
        }
        if let Some(platform) = record::running().await.into_iter().next() {
            return Ok((Plan::Gateway(platform.url.clone()), Why::Running(platform)));
        }
        match Kubeconfig::read() {
            Ok(kubeconfig) => Ok((
                Plan::Cluster {
                    kubeconfig: Box::new(kubeconfig),
                    context: None,
                    namespace: None,
                },
                Why::Kubeconfig,
            )),
            Err(_) => Ok((Plan::Gateway(DEFAULT_GATEWAY.to_owned()), Why::Default)),
        }
    }
}

/// The kubeconfig, for a cluster someone asked for.
fn read_kubeconfig() -> anyhow::Result<Kubeconfig> {
    Kubeconfig::read().map_err(|e| {
        anyhow::anyhow!(
            "no usable kubeconfig ({e}); hint: set KUBECONFIG or write ~/.kube/config (e.g. `aws eks update-kubeconfig --name CLUSTER`), or pass --gateway URL for a local platform"
        )
    })
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
