//! `faas deploy` to a cluster: validate (the controller's own validation), build, put the
//! artifact where the cluster can fetch it, server-side apply the Function, wait for Ready.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use faas_api::Function;
use faas_api::artifact::ArtifactSource;
use kube::api::{Patch, PatchParams};

use super::{MANAGER, Progress, artifact, condition};
use crate::backend::{DeployOptions, Deployed, Fetched};
use crate::flags::Manifests;
use crate::target::{Cluster, explain};

/// What only a cluster requires of the manifests (namespace, cluster profile, images),
/// checked before anything is built, pushed or applied.
pub fn check(cluster: &Cluster, manifests: &Manifests) -> anyhow::Result<()> {
    let declared = manifests
        .file
        .as_deref()
        .map(declared_namespaces)
        .unwrap_or_default();
    for function in &manifests.functions {
        check_for_cluster(function, &declared, cluster)?;
    }
    let origin = manifests
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "flags".to_owned());
    let count = manifests.functions.len();
    Progress::new().done(
        "validated",
        &format!("{origin} ({count} function{})", plural(count)),
    );
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What only a cluster requires of a manifest (on top of `faas_api::validate`).
fn check_for_cluster(
    function: &Function,
    declared: &[(String, String)],
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    if let Some((_, ns)) = declared.iter().find(|(n, _)| n == name)
        && *ns != cluster.namespace
    {
        anyhow::bail!(
            "{name}: metadata.namespace is {ns:?} but the target namespace is {:?}; hint: pass -n {ns} or drop metadata.namespace",
            cluster.namespace
        );
    }
    // The cluster profile the controller also runs (host directories, unpinned artifacts):
    // refused here, before anything is pushed or applied.
    faas_api::validate_for_cluster(function, None)
        .map_err(|errors| anyhow::anyhow!("{name}: {errors} (refused in a cluster)"))?;
    if let Some(container) = &function.spec.runtime.container
        && container.image.is_none()
    {
        anyhow::bail!(
            "{name}: spec.runtime.container.image: required on a cluster (command, args and workingDir run only in local mode)"
        );
    }
    Ok(())
}

/// Refuses a Function whose `then` would close a loop of chained runs with the namespace's
/// other Functions (`faas_api::chain`). Only a Function that starts runs is checked: one
/// that starts none closes no loop, and costs no list.
async fn refuse_chain_loop(cluster: &Cluster, function: &Function) -> anyhow::Result<()> {
    if faas_api::chain::successors(&function.spec).is_empty() {
        return Ok(());
    }
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let others = super::read::list(cluster).await?;
    let others = others
        .iter()
        .filter_map(|f| Some((f.metadata.name.as_deref()?, &f.spec)));
    if let Some(names) = faas_api::chain::loop_with(others, function) {
        anyhow::bail!(
            "{name}: spec.then: deploying it would close a loop of chained runs ({names}); each run would start the next forever"
        );
    }
    Ok(())
}

/// (name, namespace) of the documents that write `metadata.namespace` themselves (the manifest
/// loader fills in `default` for the others, which must not override `-n`).
fn declared_namespaces(file: &Path) -> Vec<(String, String)> {
    use serde::Deserialize as _;
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|document| serde_yaml::Value::deserialize(document).ok())
        .filter_map(|value| {
            let metadata = value.get("metadata")?;
            Some((
                metadata.get("name")?.as_str()?.to_owned(),
                metadata.get("namespace")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Puts the artifact where the cluster fetches it, applies the Function (server-side) and,
/// unless told not to, waits for it to be Ready.
pub async fn deploy_one(
    cluster: &Cluster,
    mut function: Function,
    base: &Path,
    options: &DeployOptions,
) -> anyhow::Result<Fetched<Deployed>> {
    let progress = &Progress::new();
    let registry = match options.registry {
        Some(_) => Some(faas_oci::Registry::from_env()?),
        None => None,
    };
    let name = function.metadata.name.clone().unwrap_or_default();
    let mut owned_map = None;
    // Resolved before the spec is rewritten below (relative to the manifest's folder).
    let local = faas_gateway::artifact::local_path(&function, base).ok();
    if let Some(wasm) = function.spec.runtime.wasm.as_mut() {
        match ArtifactSource::parse(&wasm.source) {
            Ok(ArtifactSource::File(path)) => {
                let local = local.unwrap_or_else(|| path.into());
                let bytes = std::fs::read(&local).with_context(|| {
                    format!(
                        "{name}: spec.runtime.wasm.source: cannot read {}{}",
                        local.display(),
                        if options.build {
                            " (build it first)"
                        } else {
                            " (build it first, or drop --no-build)"
                        }
                    )
                })?;
                let placed = artifact::place(
                    cluster,
                    registry.as_ref(),
                    options.registry.as_deref(),
                    &name,
                    Bytes::from(bytes),
                )
                .await
                .with_context(|| format!("{name}: artifact"))?;
                progress.done("pushed", &placed.summary);
                wasm.source = placed.source;
                wasm.sha256 = Some(placed.sha256);
                owned_map = placed.config_map;
            }
            Ok(ArtifactSource::Uploaded(_)) => anyhow::bail!(
                "{name}: spec.runtime.wasm.source: sha256: sources name artifacts uploaded to a local platform; point source at the .wasm file"
            ),
            // Already where the cluster fetches it.
            Ok(ArtifactSource::Oci(_) | ArtifactSource::ConfigMap { .. }) => {}
            Err(why) => anyhow::bail!("{name}: spec.runtime.wasm.source: {why}"),
        }
        // How to build is this machine's business, not the cluster's.
        wasm.build = None;
    }
    refuse_chain_loop(cluster, &function).await?;
    if !options.replace {
        refuse_replacement(cluster, &function).await?;
    }
    function.metadata.namespace = Some(cluster.namespace.clone());
    function.status = None;
    let applied = cluster
        .functions()
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&function),
        )
        .await
        .map_err(|e| {
            explain(
                e,
                &format!("applying Function {name} in {}", cluster.namespace),
            )
        })?;
    if let Some(map) = &owned_map {
        artifact::own(cluster, map, &applied).await?;
    }
    let generation = applied.metadata.generation.unwrap_or(0);
    progress.done(
        "applied",
        &format!(
            "Function {}/{name} (generation {generation}, context {})",
            cluster.namespace, cluster.context
        ),
    );
    let now = jiff::Timestamp::now();
    for schedule in &function.spec.schedules {
        let zone = schedule.time_zone.as_deref().unwrap_or("UTC");
        let next = crate::commands::schedules::next_fire(&schedule.cron, zone, now)
            .unwrap_or_else(|why| format!("invalid: {why}"));
        progress.done(
            "scheduled",
            &format!("{} ({}, {zone}): next {next}", schedule.name, schedule.cron),
        );
    }
    let last = if options.wait {
        wait_ready(cluster, &name, generation, options, progress).await?
    } else {
        applied
    };
    Ok(Fetched {
        raw: serde_json::to_value(&last)?,
        value: Deployed::Applied {
            waited: options.wait,
            url: last.status.and_then(|s| s.url),
        },
    })
}

/// Refuses to apply `function` over an existing Function that is a different one (another kind
/// or artifact source, see `faas_api::replace`), saying what differs.
async fn refuse_replacement(cluster: &Cluster, function: &Function) -> anyhow::Result<()> {
    let name = function.metadata.name.clone().unwrap_or_default();
    let existing = cluster.functions().get_opt(&name).await.map_err(|e| {
        explain(
            e,
            &format!("reading Function {name} in {}", cluster.namespace),
        )
    })?;
    let Some(existing) = existing else {
        return Ok(());
    };
    let mut differences = faas_api::replace::replacement(&existing, function);
    if differences.is_empty() {
        return Ok(());
    }
    let digest = |f: &Function| f.spec.runtime.wasm.as_ref().and_then(|w| w.sha256.clone());
    if let (Some(old), Some(new)) = (digest(&existing), digest(function))
        && old != new
    {
        differences.push(faas_api::replace::Difference {
            what: "digest",
            old: old.chars().take(12).collect(),
            new: new.chars().take(12).collect(),
        });
    }
    anyhow::bail!(
        "{name}: Function {}/{name} exists and this deploy would replace it with a different function ({}); hint: faas deploy --replace if that is meant, or choose another name",
        cluster.namespace,
        faas_api::replace::said(&differences)
    )
}

/// Polls the Function until its status has caught up with `generation` and says Ready,
/// printing each new reason; past `options.timeout`, fails with the reason and recent Events.
async fn wait_ready(
    cluster: &Cluster,
    name: &str,
    generation: i64,
    options: &DeployOptions,
    progress: &Progress,
) -> anyhow::Result<Function> {
    let started = Instant::now();
    let mut last_said = String::new();
    loop {
        let function = cluster
            .functions()
            .get(name)
            .await
            .map_err(|e| explain(e, &format!("reading Function {name}")))?;
        let observed = function
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .unwrap_or(0);
        let ready = condition(&function, "Ready");
        let current = observed >= generation;
        if current && ready.is_some_and(|c| c.status == "True") {
            let replicas = function
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            progress.done(
                "ready",
                &format!(
                    "{replicas} ready replica{} after {:.0?}",
                    plural(replicas as usize),
                    started.elapsed()
                ),
            );
            return Ok(function);
        }
        let said = match (current, ready) {
            (false, _) => "the controller has not seen this generation yet".to_owned(),
            (true, Some(c)) => format!(
                "{}: {}",
                c.reason.as_deref().unwrap_or("NotReady"),
                c.message.as_deref().unwrap_or("")
            ),
            (true, None) => "no Ready condition yet".to_owned(),
        };
        if said != last_said {
            progress.waiting(&said);
            last_said = said;
        }
        if started.elapsed() >= options.timeout {
            progress.failed("ready", &format!("not Ready after {:?}", options.timeout));
            let events = recent_events(cluster, name).await;
            anyhow::bail!(
                "{name} is not Ready after {:?}: {last_said}{events}\nhint: `faas describe {name}` shows its conditions; --timeout waits longer",
                options.timeout
            );
        }
        tokio::time::sleep(options.poll).await;
    }
}

/// The Function's last Events, one per line (empty when none or unreadable).
async fn recent_events(cluster: &Cluster, name: &str) -> String {
    let lines: Vec<String> = super::read::events(cluster, name, 5)
        .await
        .iter()
        .map(|e| format!("\n  {} {}: {}", e.kind, e.reason, e.message))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("\nrecent events:{}", lines.concat())
    }
}
