//! `faas target`: which platform commands act on and why, and `faas target set|unset` to
//! choose it, so that changing a cluster is never an accident of the kubeconfig.

use anyhow::Context as _;
use kube::config::Kubeconfig;

use crate::args::{TargetCommand, TargetKind};
use crate::stdout::outln;
use crate::target::record::{self, Chosen};
use crate::target::{TargetArgs, Why};

pub async fn run(args: &TargetArgs, action: Option<TargetCommand>) -> anyhow::Result<()> {
    match action {
        None => show(args).await,
        Some(TargetCommand::Set { kind }) => set(args, kind),
        Some(TargetCommand::Unset) => {
            if record::unchoose()? {
                outln!(
                    "target unset: a running `faas up` is preferred; a cluster must be chosen per command (--context/-n)"
                )
            } else {
                outln!("no target was saved")
            }
        }
    }
}

async fn show(args: &TargetArgs) -> anyhow::Result<()> {
    let resolved = args.resolve(None).await?;
    outln!("target: {}", resolved.said())?;
    outln!("why:    {}", resolved.why.said())?;
    if resolved.why == Why::Kubeconfig {
        outln!(
            "note:   deploy, delete, run and invoke refuse this target until it is chosen (--context, or `faas target set cluster`)"
        )?;
    }
    let running = record::running().await;
    if !running.is_empty() {
        outln!("local platforms running:")?;
        for platform in running {
            outln!(
                "  {}  pid {}  {}",
                platform.url,
                platform.pid,
                platform.dir.display()
            )?;
        }
    }
    Ok(())
}

fn set(args: &TargetArgs, kind: TargetKind) -> anyhow::Result<()> {
    let chosen = match kind {
        TargetKind::Local => {
            if args.context.is_some() || args.namespace.is_some() {
                anyhow::bail!(
                    "`faas target set local` takes --gateway URL (or nothing), not --context/-n"
                );
            }
            Chosen::Local {
                gateway: args.gateway.clone(),
            }
        }
        TargetKind::Cluster => {
            if args.gateway.is_some() {
                anyhow::bail!(
                    "`faas target set cluster` takes --context and -n, not --gateway (unset FAAS_GATEWAY if it is set)"
                );
            }
            let kubeconfig = Kubeconfig::read().context(
                "no usable kubeconfig; hint: set KUBECONFIG or write ~/.kube/config (e.g. `aws eks update-kubeconfig --name CLUSTER`)",
            )?;
            let names: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            let context = match args
                .context
                .clone()
                .or_else(|| kubeconfig.current_context.clone())
            {
                Some(context) => context,
                None => anyhow::bail!(
                    "the kubeconfig has no current context; hint: pass --context (one of: {})",
                    names.join(", ")
                ),
            };
            if !names.contains(&context.as_str()) {
                anyhow::bail!(
                    "context {context:?} not found in the kubeconfig; hint: use one of: {}",
                    names.join(", ")
                );
            }
            Chosen::Cluster {
                context,
                namespace: args.namespace.clone(),
            }
        }
    };
    let path = record::choose(&chosen)?;
    let said = match &chosen {
        Chosen::Local { gateway: Some(url) } => format!("local {url}"),
        Chosen::Local { gateway: None } => {
            "local (the running `faas up`, else http://127.0.0.1:8080)".to_owned()
        }
        Chosen::Cluster { context, namespace } => format!(
            "cluster {context}, namespace {}",
            namespace.as_deref().unwrap_or("(the context's)")
        ),
    };
    outln!("target set: {said} (saved in {})", path.display())
}
