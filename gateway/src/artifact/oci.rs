//! Artifacts in an OCI registry (`oci://...`), pulled by runtime pool pods with their own
//! credentials and verified by digest ([`faas_oci::Registry::pull_wasm`]).

use bytes::Bytes;
use faas_api::artifact::OciSource;

use super::FetchError;

/// The module `source` names; `pinned` is `spec.runtime.wasm.sha256`.
pub(super) async fn fetch(source: &OciSource, pinned: Option<&str>) -> Result<Bytes, FetchError> {
    let reference = faas_oci::Reference::parse(&source.reference)?;
    let pulled = registry()?.pull_wasm(&reference, pinned).await?;
    Ok(pulled.wasm)
}

/// The registry client of this pod: credentials from its docker config (`DOCKER_CONFIG`, the
/// chart's `runtime.pools.registrySecret` mounted by the controller), and ECR logins with the
/// pod's IAM role ([`super::ecr`]); made once (loading the CA roots is not free, and ECR tokens
/// are kept).
fn registry() -> Result<&'static faas_oci::Registry, FetchError> {
    static REGISTRY: std::sync::OnceLock<Result<faas_oci::Registry, String>> =
        std::sync::OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            faas_oci::Registry::from_env()
                .map(|registry| {
                    registry.with_helper(
                        faas_oci::auth::ECR_HELPER,
                        std::sync::Arc::new(super::ecr::EcrLogin::from_env()),
                    )
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|why| FetchError::OciRegistry(why.clone()))
}
