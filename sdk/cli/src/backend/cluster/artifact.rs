//! Getting a WASM artifact where the cluster can fetch it: an OCI registry (pushed in the wasm
//! OCI layout, pinned by digest), or a ConfigMap for small modules when no registry is set.

use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use faas_api::Function;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use sha2::{Digest as _, Sha256};

use super::MANAGER;
use crate::target::{Cluster, explain};

/// ConfigMaps hold 1 MiB in all; leave room for metadata.
pub const CONFIGMAP_LIMIT: usize = 900 * 1024;

/// Where the artifact went, for the applied spec.
pub struct Placed {
    /// The new `spec.runtime.wasm.source`.
    pub source: String,
    /// Hex sha256 of the module (`spec.runtime.wasm.sha256`).
    pub sha256: String,
    /// The ConfigMap to own once the Function exists.
    pub config_map: Option<String>,
    /// For the progress line.
    pub summary: String,
}

/// The ConfigMap holding function `name`'s module.
pub fn config_map_name(function: &str) -> String {
    faas_api::contract::wasm_config_map(function)
}

/// Pushes `wasm` to `registry_base` (`host/path`, the function's name and a tag from the
/// digest are appended), or stores it in a ConfigMap when no registry is given.
pub async fn place(
    cluster: &Cluster,
    registry: Option<&faas_oci::Registry>,
    registry_base: Option<&str>,
    name: &str,
    wasm: Bytes,
) -> anyhow::Result<Placed> {
    let sha256 = hex::encode(Sha256::digest(&wasm));
    if let Some(base) = registry_base {
        let base = base.trim_start_matches("oci://").trim_end_matches('/');
        let text = format!("{base}/{name}:sha256-{}", &sha256[..16]);
        let reference = faas_oci::Reference::parse(&text)
            .map_err(|why| anyhow::anyhow!("--registry {base}: {why}"))?;
        let registry = registry.context("no registry client")?;
        let pushed = registry
            .push_wasm(
                &reference,
                wasm,
                &[
                    ("dev.faas.function", name),
                    ("org.opencontainers.image.source", "faas deploy"),
                ],
            )
            .await
            .with_context(|| format!("pushing {reference}"))?;
        return Ok(Placed {
            source: format!("oci://{}", pushed.reference),
            summary: format!(
                "{} ({}{})",
                pushed.reference,
                faas_api::limits::format_bytes(pushed.size),
                if pushed.reused_blob {
                    ", already in the registry"
                } else {
                    ""
                }
            ),
            sha256: pushed.wasm_sha256,
            config_map: None,
        });
    }
    if wasm.len() > CONFIGMAP_LIMIT {
        anyhow::bail!(
            "the artifact is too large for a ConfigMap ({} KiB > {} KiB); hint: push it to a registry with --registry HOST/PATH (or FAAS_REGISTRY), e.g. --registry 123456789012.dkr.ecr.eu-west-3.amazonaws.com/functions",
            wasm.len().div_ceil(1024),
            CONFIGMAP_LIMIT / 1024
        );
    }
    let map_name = config_map_name(name);
    let key = format!("{name}.wasm");
    let object = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": map_name,
            "labels": {
                "faas.dev/function": name,
                "app.kubernetes.io/managed-by": MANAGER,
            },
            "annotations": {"faas.dev/sha256": sha256},
        },
        "binaryData": {key.clone(): base64::engine::general_purpose::STANDARD.encode(&wasm)},
    });
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    maps.patch(
        &map_name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .map_err(|e| explain(e, &format!("storing the artifact in ConfigMap {map_name}")))?;
    Ok(Placed {
        source: format!("configmap://{map_name}/{key}"),
        summary: format!(
            "ConfigMap {map_name} ({}; no registry set)",
            faas_api::limits::format_bytes(wasm.len() as u64)
        ),
        sha256,
        config_map: Some(map_name),
    })
}

/// Makes the Function own its artifact ConfigMap, so that deleting the Function deletes it.
pub async fn own(cluster: &Cluster, map_name: &str, function: &Function) -> anyhow::Result<()> {
    let Some(uid) = function.metadata.uid.as_deref() else {
        return Ok(());
    };
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let patch = serde_json::json!({
        "metadata": {"ownerReferences": [{
            "apiVersion": "faas.dev/v1alpha1",
            "kind": "Function",
            "name": name,
            "uid": uid,
        }]}
    });
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    maps.patch(map_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| explain(e, &format!("linking ConfigMap {map_name} to its Function")))?;
    Ok(())
}
