//! The I/O of WASM runtime pools (what a pool is: [`crate::render::pool`]): label the
//! Function with its pool, apply the pool's shared objects, look for the artifact, and delete
//! pools that no Function uses any more.

use faas_api::Function;
use faas_api::artifact::{ArtifactSource, Expected, verify};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};

use crate::applier::Applier;
use crate::reconcile::{Context, Error, MANAGER, api_error};
use crate::render::pool::{POOL_LABEL, Pool, conflict, pool_objects, pool_of};
use crate::status::Observed;

/// Puts `function` in its pool and fills what was observed of the pool and the artifact.
pub async fn apply_pool(
    function: &Function,
    ctx: &Context,
    namespace: &str,
    observed: &mut Observed,
) -> Result<(), Error> {
    let pool = pool_of(function);
    let name = function.name_any();
    let functions: Api<Function> = Api::namespaced(ctx.client.clone(), namespace);
    let members = functions
        .list(&ListParams::default().labels(&format!("{POOL_LABEL}={}", pool.name)))
        .await
        .map_err(api_error(format!(
            "listing the Functions of pool {}",
            pool.name
        )))?
        .items;
    for other in members.iter().filter(|f| f.name_any() != name) {
        if let Some(why) = conflict(&pool, &pool_of(other)) {
            observed.pool_conflict = Some(why);
            return Ok(());
        }
    }
    let previous = function.labels().get(POOL_LABEL).cloned();
    if previous.as_deref() != Some(pool.name.as_str()) {
        // How pool pods find their functions: a label they watch.
        let patch = serde_json::json!({
            "apiVersion": faas_api::API_VERSION,
            "kind": "Function",
            "metadata": {"name": name, "labels": {POOL_LABEL: pool.name}},
        });
        functions
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(api_error(format!(
                "labelling Function {name} with its pool"
            )))?;
    }
    // Only members the pool admits count: a label alone makes no member.
    let admitted: Vec<&Function> = members
        .iter()
        .filter(|f| f.name_any() != name && pool.admits(f))
        .chain(std::iter::once(function))
        .collect();
    let deployment = apply_pool_objects(ctx, namespace, &pool, &admitted).await?;
    observed.pool = Some((pool.name.clone(), deployment));
    observed.pool_pods = live_pods(ctx, namespace, &pool.name).await?;
    forget_stale_reports(function, ctx, namespace, &observed.pool_pods).await?;
    observed.artifact = Some(find_artifact(function, ctx, namespace).await?);
    if let Some(left) = previous.filter(|p| *p != pool.name) {
        leave(ctx, namespace, &name, &left).await?;
    }
    Ok(())
}

/// Applies the objects of `pool` as its `admitted` members need them (their longest timeout,
/// their SQS queues where KEDA scales the pool); returns the pool's Deployment as applied.
async fn apply_pool_objects(
    ctx: &Context,
    namespace: &str,
    pool: &Pool,
    admitted: &[&Function],
) -> Result<Deployment, Error> {
    let longest_timeout = admitted
        .iter()
        .filter_map(|f| f.spec.limits().ok())
        .map(|l| l.timeout.as_secs())
        .max()
        .unwrap_or(30);
    let mut objects = pool_objects(pool, longest_timeout, &ctx.defaults);
    // Members with SQS triggers, where KEDA is installed: it scales the pool on their queues
    // and on CPU, through an autoscaler of its own, which then alone owns `replicas`.
    let keda = ctx
        .keda
        .then(|| crate::render::scaling::pool_scaling(pool, admitted, &ctx.defaults))
        .flatten();
    if keda.is_some() {
        objects.autoscaler = None;
        objects.deployment.spec.replicas = None;
    }
    let shared = Applier {
        client: &ctx.client,
        namespace,
        owner: None,
    };
    if let Some(network) = &ctx.defaults.network {
        // Before the pods: none runs unrestricted.
        shared
            .typed(crate::render::network::pool_policy(
                pool, namespace, network,
            ))
            .await?;
    }
    shared.typed(objects.role).await?;
    shared.typed(objects.role_binding).await?;
    // Its members' identities and Secrets, exactly: rendered again at every change of members.
    let (access, access_binding) = crate::render::pool_access::pool_member_access(pool, admitted);
    shared.typed(access).await?;
    shared.typed(access_binding).await?;
    shared.typed(objects.service_account).await?;
    let deployment = shared.typed(objects.deployment).await?;
    shared.typed(objects.service).await?;
    match objects.pdb {
        Some(pdb) => {
            shared.typed(pdb).await?;
        }
        None => {
            shared
                .delete::<PodDisruptionBudget>(&pool.object_name())
                .await?;
        }
    }
    // One autoscaler at a time on the Deployment: the outgoing one goes first (KEDA's with
    // its ScaledObject, ours by name), then the incoming one is applied.
    if ctx.keda && keda.is_none() {
        shared
            .delete_dynamic("ScaledObject", &pool.object_name())
            .await?;
        shared
            .delete_dynamic("TriggerAuthentication", &pool.object_name())
            .await?;
    }
    match objects.autoscaler {
        Some(autoscaler) => {
            shared.typed(autoscaler).await?;
        }
        None => {
            shared
                .delete::<HorizontalPodAutoscaler>(&pool.object_name())
                .await?;
        }
    }
    if let Some((scaled_object, authentication)) = keda {
        shared.dynamic(authentication).await?;
        shared.dynamic(scaled_object).await?;
    }
    Ok(deployment)
}

/// `function` left the pool `left` (deleted, moved to another pool, or no longer pooled):
/// the pool is rendered again from the members it keeps, so it no longer scales on the
/// queues of the one that left nor keeps its timeout; a pool nobody uses any more is deleted.
pub async fn leave(
    ctx: &Context,
    namespace: &str,
    function: &str,
    left: &str,
) -> Result<(), Error> {
    let functions: Api<Function> = Api::namespaced(ctx.client.clone(), namespace);
    let staying: Vec<Function> = functions
        .list(&ListParams::default().labels(&format!("{POOL_LABEL}={left}")))
        .await
        .map_err(api_error(format!("listing the Functions of pool {left}")))?
        .items
        .into_iter()
        .filter(|f| f.name_any() != function && f.metadata.deletion_timestamp.is_none())
        .collect();
    // The pool as its remaining members compute it (a stale label names no pool of theirs).
    if let Some(pool) = staying.iter().map(pool_of).find(|p| p.name == left) {
        let admitted: Vec<&Function> = staying.iter().filter(|f| pool.admits(f)).collect();
        if !admitted.is_empty() {
            apply_pool_objects(ctx, namespace, &pool, &admitted).await?;
        }
    }
    collect_unused(ctx, namespace).await
}

/// Removes the `faas.dev/pool` label from a Function that is in no pool: pool pods ignore
/// such a Function anyway (they compute its pool), this keeps the label meaning what the
/// controller decided. A JSON merge patch: the label may belong to another field manager
/// (whoever wrote the manifest), which an apply of ours could not remove.
pub async fn strip_pool_label(
    function: &Function,
    ctx: &Context,
    namespace: &str,
) -> Result<(), Error> {
    let name = function.name_any();
    let functions: Api<Function> = Api::namespaced(ctx.client.clone(), namespace);
    functions
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {POOL_LABEL: null}}})),
        )
        .await
        .map_err(api_error(format!(
            "removing the pool label of Function {name}"
        )))?;
    Ok(())
}

/// Names of the pool's pods that exist now.
async fn live_pods(ctx: &Context, namespace: &str, pool: &str) -> Result<Vec<String>, Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    Ok(pods
        .list(&ListParams::default().labels(&format!("{POOL_LABEL}={pool}")))
        .await
        .map_err(api_error(format!("listing the pods of pool {pool}")))?
        .items
        .into_iter()
        .map(|p| p.name_any())
        .collect())
}

/// Drops load reports of pods that are gone (a pod removes its own when it stops cleanly; a
/// crashed or evicted one cannot). A merge patch: the entries belong to the pods' field
/// managers, which an apply of ours could not remove.
async fn forget_stale_reports(
    function: &Function,
    ctx: &Context,
    namespace: &str,
    live: &[String],
) -> Result<(), Error> {
    let stale: serde_json::Map<String, serde_json::Value> = function
        .status
        .iter()
        .flat_map(|s| s.load_state.keys())
        .filter(|pod| !live.contains(pod))
        .map(|pod| (pod.clone(), serde_json::Value::Null))
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let name = function.name_any();
    let functions: Api<Function> = Api::namespaced(ctx.client.clone(), namespace);
    functions
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"loadState": stale}})),
        )
        .await
        .map_err(api_error(format!(
            "dropping stale load reports of Function {name}"
        )))?;
    Ok(())
}

/// Where the artifact is, or (reason, message) why a pool pod could not get it.
async fn find_artifact(
    function: &Function,
    ctx: &Context,
    namespace: &str,
) -> Result<Result<String, (String, String)>, Error> {
    let Some(wasm) = &function.spec.runtime.wasm else {
        return Ok(Err(("NotWasm".into(), "not a WASM function".into())));
    };
    let not = |reason: &str, message: String| Ok(Err((reason.to_owned(), message)));
    match ArtifactSource::parse(&wasm.source) {
        Ok(ArtifactSource::ConfigMap { name, key }) => {
            let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
            let Some(map) = maps
                .get_opt(&name)
                .await
                .map_err(api_error(format!("reading ConfigMap {name}")))?
            else {
                return not(
                    "ArtifactNotFound",
                    format!("ConfigMap {name} does not exist in namespace {namespace}"),
                );
            };
            let Some(bytes) = map.binary_data.as_ref().and_then(|d| d.get(&key)) else {
                let in_data = map.data.as_ref().is_some_and(|d| d.contains_key(&key));
                return not(
                    "ArtifactNotFound",
                    if in_data {
                        format!(
                            "ConfigMap {name} has {key} as text data; a module must be binaryData"
                        )
                    } else {
                        format!("ConfigMap {name} has no key {key}")
                    },
                );
            };
            let expected = Expected {
                sha256: wasm.sha256.as_deref(),
                max_bytes: None,
            };
            let digest = match verify(&bytes.0, &expected) {
                Ok(digest) => digest,
                Err(why) => {
                    return not(
                        "ArtifactDigestMismatch",
                        format!("ConfigMap {name} key {key} {why}"),
                    );
                }
            };
            Ok(Ok(format!(
                "ConfigMap {name}, key {key}: {} bytes, sha256 {digest}",
                bytes.0.len()
            )))
        }
        // The pool pods pull it with their own credentials (the controller has none for the
        // registry) and verify it by digest; their load state says whether they could.
        Ok(ArtifactSource::Oci(oci)) => match faas_oci::Reference::parse(&oci.reference) {
            Ok(parsed) => Ok(Ok(format!(
                "oci://{parsed}: pulled by the pool pods{}",
                if wasm.sha256.is_some() || parsed.digest.is_some() {
                    ", verified by digest"
                } else {
                    " (not pinned: set spec.runtime.wasm.sha256 or use @sha256:)"
                }
            ))),
            Err(why) => not("InvalidSource", format!("spec.runtime.wasm.source: {why}")),
        },
        Ok(ArtifactSource::File(_) | ArtifactSource::Uploaded(_)) => not(
            "NotReachableFromCluster",
            format!(
                "spec.runtime.wasm.source: {} exists on one machine only; a cluster fetches \
                 configmap:// (or oci://) artifacts",
                wasm.source
            ),
        ),
        Err(why) => not("InvalidSource", format!("spec.runtime.wasm.source: {why}")),
    }
}

/// Deletes the pools of `namespace` that no Function (not being deleted) belongs to.
pub async fn collect_unused(ctx: &Context, namespace: &str) -> Result<(), Error> {
    let functions: Api<Function> = Api::namespaced(ctx.client.clone(), namespace);
    let in_use: Vec<String> = functions
        .list(&ListParams::default().labels(POOL_LABEL))
        .await
        .map_err(api_error("listing pooled Functions"))?
        .items
        .into_iter()
        .filter(|f| f.metadata.deletion_timestamp.is_none())
        .filter_map(|f| f.labels().get(POOL_LABEL).cloned())
        .collect();
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
    let pools = deployments
        .list(&ListParams::default().labels(&format!(
            "{}={},{}={MANAGER}",
            faas_api::contract::COMPONENT_LABEL,
            faas_api::contract::POOL_COMPONENT,
            faas_api::contract::MANAGED_BY_LABEL,
        )))
        .await
        .map_err(api_error("listing runtime pools"))?
        .items;
    let shared = Applier {
        client: &ctx.client,
        namespace,
        owner: None,
    };
    for deployment in pools {
        let Some(pool) = deployment.labels().get(POOL_LABEL).cloned() else {
            continue;
        };
        if in_use.contains(&pool) {
            continue;
        }
        let object = faas_api::contract::pool_object(&pool);
        tracing::info!(namespace, pool = %pool, "deleting a runtime pool no Function uses");
        shared.delete::<Deployment>(&object).await?;
        shared.delete::<Service>(&object).await?;
        shared.delete::<PodDisruptionBudget>(&object).await?;
        shared.delete::<HorizontalPodAutoscaler>(&object).await?;
        if ctx.keda {
            shared.delete_dynamic("ScaledObject", &object).await?;
            shared
                .delete_dynamic("TriggerAuthentication", &object)
                .await?;
        }
        shared.delete::<RoleBinding>(&object).await?;
        let access = faas_api::contract::pool_member_access_object(&pool);
        shared.delete::<RoleBinding>(&access).await?;
        shared.delete::<Role>(&access).await?;
        shared.delete::<ServiceAccount>(&object).await?;
        if ctx.defaults.network.is_some() {
            shared.delete::<NetworkPolicy>(&object).await?;
        }
    }
    Ok(())
}
