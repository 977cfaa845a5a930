//! Getting a function's artifact: [`faas_api::artifact`] says what `spec.runtime.wasm.source`
//! is (pure); here is one fetch per kind of source (a file, an upload kept in the state
//! directory, a ConfigMap, an OCI registry) and one entry point per place that needs bytes:
//! local mode ([`local_path`]), the management API ([`server_side`]) and pool pods
//! ([`for_pool`]). Each says which sources it serves, so "where may this artifact come from
//! here" is decided in this module only.
//!
//! The pinned `spec.runtime.wasm.sha256` is checked by the runtime when the module loads (the
//! same check for every source); uploads are also checked against their own name, since the
//! name is their digest.

mod configmap;
pub mod ecr;
mod file;
mod oci;
pub mod upload;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use faas_api::Function;
use faas_api::artifact::{ArtifactSource, Digest, SourceError};

/// Why an artifact cannot be had; one line naming the field, shown as the reason a function
/// is not loaded.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "spec.runtime.container: a container function has no artifact file (its command or \
         image is what runs)"
    )]
    NoArtifactFile,
    #[error("spec.runtime: a runtime pool serves WASM functions only")]
    PoolServesWasmOnly,
    #[error("spec.runtime.wasm.source: {0}")]
    Source(#[from] SourceError),
    #[error(
        "spec.runtime.wasm.source: {given} names an uploaded artifact; point source at the .wasm \
         file"
    )]
    UploadInLocalMode { given: String },
    #[error(
        "spec.runtime.wasm.source: {given} is fetched in a cluster; local mode serves files \
         (point source at the .wasm, or use `faas deploy` against a cluster)"
    )]
    ClusterOnly { given: String },
    #[error(
        "spec.runtime.wasm.source: {given:?} is not readable by the server; upload the artifact \
         (multipart part `artifact`, as `faas deploy` does) or give an absolute path"
    )]
    NotServerReadable { given: String },
    #[error(
        "spec.runtime.wasm.source: {given} is a file on one machine; a pool fetches configmap:// \
         or oci:// artifacts"
    )]
    OneMachineOnly { given: String },
    #[error("spec.runtime.wasm.source: cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("spec.runtime.wasm.source: no uploaded artifact with sha256 {0}")]
    NoSuchUpload(Digest),
    #[error(
        "spec.runtime.wasm.source: the uploaded artifact {name} is damaged (its sha256 is {actual})"
    )]
    DamagedUpload { name: Digest, actual: Digest },
    #[error("spec.runtime.wasm.source: reading ConfigMap {name}: {error}")]
    ConfigMapApi { name: String, error: kube::Error },
    #[error("spec.runtime.wasm.source: ConfigMap {name} does not exist in {namespace}")]
    NoConfigMap { name: String, namespace: String },
    #[error("spec.runtime.wasm.source: ConfigMap {name} has no binaryData key {key}")]
    NoConfigMapKey { name: String, key: String },
    #[error("spec.runtime.wasm.source: {0}")]
    OciReference(#[from] faas_oci::ReferenceError),
    #[error("spec.runtime.wasm.source: {0}")]
    OciRegistry(String),
    #[error("spec.runtime.wasm.source: {0}")]
    OciPull(#[from] faas_oci::OciError),
}

/// Local mode (`faas up`): the bytes of the file [`local_path`] found.
pub fn read_file(path: &Path) -> Result<Bytes, FetchError> {
    file::read(path)
}

/// Local mode (`faas up`): where a manifest's artifact lives on this machine (a path relative
/// to the manifest's folder `base`). Only files: uploads and cluster sources are refused.
pub fn local_path(function: &Function, base: &Path) -> Result<PathBuf, FetchError> {
    let Some(wasm) = &function.spec.runtime.wasm else {
        return Err(FetchError::NoArtifactFile);
    };
    let given = || wasm.source.clone();
    match ArtifactSource::parse(&wasm.source)? {
        ArtifactSource::File(path) => Ok(file::resolve(&path, base)),
        ArtifactSource::Uploaded(_) => Err(FetchError::UploadInLocalMode { given: given() }),
        ArtifactSource::Oci(_) | ArtifactSource::ConfigMap { .. } => {
            Err(FetchError::ClusterOnly { given: given() })
        }
    }
}

/// The management API, for a deploy without an uploaded artifact and for a restart: what the
/// server can read itself, an absolute path (or `file://` URL) on this machine or an earlier
/// upload kept under `state_dir`. A container function has no artifact (empty bytes).
pub fn server_side(function: &Function, state_dir: &Path) -> Result<Bytes, FetchError> {
    if function.spec.runtime.container.is_some() {
        return Ok(Bytes::new());
    }
    let Some(wasm) = &function.spec.runtime.wasm else {
        return Err(FetchError::NotServerReadable {
            given: String::new(),
        });
    };
    match ArtifactSource::parse(&wasm.source)? {
        ArtifactSource::Uploaded(digest) => upload::read(state_dir, &digest),
        ArtifactSource::File(path) if Path::new(&path).is_absolute() => {
            file::read(Path::new(&path))
        }
        _ => Err(FetchError::NotServerReadable {
            given: wasm.source.clone(),
        }),
    }
}

/// A runtime pool pod: the artifact from the cluster (a ConfigMap of `namespace`, or an OCI
/// registry with this pod's credentials). Files and uploads exist on one machine only.
pub async fn for_pool(
    client: &kube::Client,
    namespace: &str,
    function: &Function,
) -> Result<Bytes, FetchError> {
    let Some(wasm) = &function.spec.runtime.wasm else {
        return Err(FetchError::PoolServesWasmOnly);
    };
    match ArtifactSource::parse(&wasm.source)? {
        ArtifactSource::ConfigMap { name, key } => {
            configmap::fetch(client, namespace, &name, &key).await
        }
        ArtifactSource::Oci(source) => oci::fetch(&source, wasm.sha256.as_deref()).await,
        ArtifactSource::File(_) | ArtifactSource::Uploaded(_) => Err(FetchError::OneMachineOnly {
            given: wasm.source.clone(),
        }),
    }
}

#[cfg(test)]
mod tests;
