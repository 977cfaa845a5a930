//! WASM functions as OCI artifacts: what `faas deploy` pushes and pool pods pull.
//!
//! The layout is the CNCF wasm OCI artifact layout: an OCI image manifest whose config has
//! media type `application/vnd.wasm.config.v0+json` and whose single layer is the module or
//! component, media type `application/wasm`. Registries that speak the distribution spec take
//! it as is (ECR, the CNCF `distribution` registry, Harbor, GHCR), and `wasmtime`/`spin`
//! tooling can read it.
//!
//! Pulls verify everything by digest: the manifest against a pinned `@sha256:` reference, the
//! layer against the manifest, and the module against the function's `sha256`. A registry
//! that serves other bytes than were pushed is refused with [`OciError::DigestMismatch`].

pub mod auth;
mod reference;
mod transport;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use reference::{Reference, ReferenceError};
use transport::{Access, Call, Transport};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";

/// Manifests are small; anything bigger is not ours.
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Default ceiling for a module (`Registry::max_artifact_bytes`).
pub const DEFAULT_MAX_ARTIFACT_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid reference: {0}")]
    Reference(#[from] ReferenceError),
    #[error("{registry} refused our credentials ({status}: {message}); {hint}")]
    Unauthorized {
        registry: String,
        status: u16,
        message: String,
        hint: String,
    },
    #[error("{registry}: access denied to {repository} (403: {message})")]
    Denied {
        registry: String,
        repository: String,
        message: String,
    },
    #[error("{reference} not found ({message})")]
    NotFound { reference: String, message: String },
    #[error(
        "{what}: digest mismatch, expected {expected}, got {actual} (tampered or wrong artifact)"
    )]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what} is not a WASM artifact: {why}")]
    NotWasm { what: String, why: String },
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("{registry} answered {status} to {action}: {message}")]
    Registry {
        registry: String,
        action: String,
        status: u16,
        message: String,
    },
    #[error("cannot reach {registry}: {why}")]
    Transport { registry: String, why: String },
    #[error("credentials for {registry}: {why}")]
    Credentials { registry: String, why: String },
}

/// The manifest we write and read (only the fields we use).
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    annotations: std::collections::BTreeMap<String, String>,
}

/// The one WebAssembly layer of a pulled image manifest (`body`, as the registry sent it), or
/// why there is none. Its digest is checked to be a sha256 digest before anything uses it: it
/// becomes part of the next URL, and a registry is not trusted to send only digests there.
pub fn wasm_layer(reference: &Reference, body: &[u8]) -> Result<WasmLayer, OciError> {
    let not_wasm = |why: String| OciError::NotWasm {
        what: reference.to_string(),
        why,
    };
    let manifest: Manifest = serde_json::from_slice(body)
        .map_err(|e| not_wasm(format!("the manifest is not an OCI image manifest: {e}")))?;
    let layer = match manifest
        .layers
        .iter()
        .filter(|l| l.media_type == WASM_LAYER_MEDIA_TYPE)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [one] => (*one).clone(),
        [] => {
            let types: Vec<&str> = manifest
                .layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect();
            return Err(not_wasm(format!(
                "no {WASM_LAYER_MEDIA_TYPE} layer (layers: {}); is it a container image?",
                if types.is_empty() {
                    "none".to_owned()
                } else {
                    types.join(", ")
                }
            )));
        }
        _ => {
            return Err(not_wasm(format!(
                "more than one {WASM_LAYER_MEDIA_TYPE} layer"
            )));
        }
    };
    let hex = layer.digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(not_wasm(format!(
            "the module layer's digest {:?} is not a sha256 digest",
            layer.digest.chars().take(80).collect::<String>()
        )));
    }
    Ok(WasmLayer {
        digest: layer.digest,
        size: layer.size,
    })
}

/// The WebAssembly layer of an image manifest: `sha256:<64 hex>` and its declared size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmLayer {
    pub digest: String,
    pub size: u64,
}

/// The result of a push.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The reference pinned to the manifest's digest (`registry/repo:tag@sha256:...`).
    pub reference: Reference,
    pub manifest_digest: String,
    /// Hex sha256 of the module itself (what `spec.runtime.wasm.sha256` pins).
    pub wasm_sha256: String,
    pub size: u64,
    /// Whether the registry already had the module's blob (nothing uploaded).
    pub reused_blob: bool,
}

/// The result of a pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub wasm: Bytes,
    pub manifest_digest: String,
    pub wasm_sha256: String,
}

/// A client for OCI registries.
pub struct Registry {
    transport: Transport,
    pub max_artifact_bytes: u64,
}

impl Registry {
    /// Credentials from the docker config of this process (`$DOCKER_CONFIG` or `~/.docker`);
    /// plain HTTP for loopback registries and for hosts in `FAAS_INSECURE_REGISTRIES`
    /// (comma-separated `host:port`).
    pub fn from_env() -> Result<Self, OciError> {
        let insecure = std::env::var("FAAS_INSECURE_REGISTRIES")
            .unwrap_or_default()
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Self::new(auth::docker_config_path(), insecure)
    }

    pub fn new(
        docker_config: Option<std::path::PathBuf>,
        insecure: Vec<String>,
    ) -> Result<Self, OciError> {
        Ok(Self {
            transport: Transport::new(docker_config, insecure)?,
            max_artifact_bytes: DEFAULT_MAX_ARTIFACT_BYTES,
        })
    }

    /// Answers for the docker credential helper `name` in this process instead of running
    /// `docker-credential-<name>` (e.g. [`auth::ECR_HELPER`] with the pod's IAM role).
    pub fn with_helper(mut self, name: &str, helper: std::sync::Arc<dyn auth::Helper>) -> Self {
        self.transport.helpers.insert(name.to_owned(), helper);
        self
    }

    /// Pushes `wasm` to `reference` (its tag; a digest in it is ignored) in the wasm OCI
    /// layout. `annotations` go on the manifest.
    pub async fn push_wasm(
        &self,
        reference: &Reference,
        wasm: Bytes,
        annotations: &[(&str, &str)],
    ) -> Result<Pushed, OciError> {
        let kind = wasm_kind(&wasm).map_err(|why| OciError::NotWasm {
            what: "the artifact to push".into(),
            why,
        })?;
        let wasm_sha256 = hex::encode(Sha256::digest(&wasm));
        let layer_digest = format!("sha256:{wasm_sha256}");
        let config = serde_json::json!({
            "architecture": "wasm",
            "os": kind.os(),
            "layerDigests": [layer_digest],
        });
        let config = Bytes::from(serde_json::to_vec(&config).unwrap_or_default());
        let config_digest = digest_of(&config);
        let reused_blob = self
            .put_blob(reference, &layer_digest, wasm.clone())
            .await?;
        self.put_blob(reference, &config_digest, config.clone())
            .await?;
        let mut title = std::collections::BTreeMap::new();
        title.insert(
            "org.opencontainers.image.title".to_owned(),
            format!(
                "{}.wasm",
                reference.repository.rsplit('/').next().unwrap_or("module")
            ),
        );
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            artifact_type: Some(WASM_CONFIG_MEDIA_TYPE.into()),
            config: Descriptor {
                media_type: WASM_CONFIG_MEDIA_TYPE.into(),
                digest: config_digest,
                size: config.len() as u64,
                annotations: Default::default(),
            },
            layers: vec![Descriptor {
                media_type: WASM_LAYER_MEDIA_TYPE.into(),
                digest: layer_digest,
                size: wasm.len() as u64,
                annotations: title,
            }],
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let body = Bytes::from(serde_json::to_vec(&manifest).unwrap_or_default());
        let manifest_digest = digest_of(&body);
        let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
        let url = format!("{}manifests/{tag}", self.transport.base(reference));
        let answer = self
            .transport
            .send(
                reference,
                Access::Push,
                Call {
                    method: Method::PUT,
                    url: &url,
                    headers: &[(header::CONTENT_TYPE, MANIFEST_MEDIA_TYPE.to_owned())],
                    body,
                    limit: MAX_MANIFEST_BYTES,
                },
            )
            .await?;
        check(reference, "PUT manifest", &answer)?;
        if let Some(said) = answer.header("docker-content-digest")
            && said != manifest_digest
        {
            return Err(OciError::DigestMismatch {
                what: format!("manifest stored at {reference}"),
                expected: manifest_digest,
                actual: said.to_owned(),
            });
        }
        tracing::info!(%reference, digest = %manifest_digest, bytes = wasm.len(), "pushed WASM artifact");
        Ok(Pushed {
            reference: reference.pinned(&manifest_digest),
            manifest_digest,
            wasm_sha256,
            size: wasm.len() as u64,
            reused_blob,
        })
    }

    /// Uploads one blob unless the registry has it. Returns whether it was already there.
    async fn put_blob(
        &self,
        reference: &Reference,
        digest: &str,
        body: Bytes,
    ) -> Result<bool, OciError> {
        let base = self.transport.base(reference);
        let head = self
            .transport
            .send(
                reference,
                Access::Push,
                Call {
                    method: Method::HEAD,
                    url: &format!("{base}blobs/{digest}"),
                    headers: &[],
                    body: Bytes::new(),
                    limit: 0,
                },
            )
            .await?;
        if head.status == StatusCode::OK {
            return Ok(true);
        }
        let started = self
            .transport
            .send(
                reference,
                Access::Push,
                Call {
                    method: Method::POST,
                    url: &format!("{base}blobs/uploads/"),
                    headers: &[(header::CONTENT_LENGTH, "0".to_owned())],
                    body: Bytes::new(),
                    limit: MAX_MANIFEST_BYTES,
                },
            )
            .await?;
        check(reference, "start blob upload", &started)?;
        let location = started
            .header("location")
            .ok_or_else(|| OciError::Registry {
                registry: reference.registry.clone(),
                action: "start blob upload".into(),
                status: started.status.as_u16(),
                message: "no Location header in the answer".into(),
            })?;
        let upload = transport::resolve(&base, location);
        let separator = if upload.contains('?') { '&' } else { '?' };
        let url = format!("{upload}{separator}digest={}", digest.replace(':', "%3A"));
        let done = self
            .transport
            .send(
                reference,
                Access::Push,
                Call {
                    method: Method::PUT,
                    url: &url,
                    headers: &[(header::CONTENT_TYPE, "application/octet-stream".to_owned())],
                    body,
                    limit: MAX_MANIFEST_BYTES,
                },
            )
            .await?;
        check(reference, "upload blob", &done)?;
        Ok(false)
    }

    /// Pulls the WASM artifact at `reference`, verifying the manifest digest (when the
    /// reference pins one), the layer digest, and `expected_sha256` (hex) when given.
    pub async fn pull_wasm(
        &self,
        reference: &Reference,
        expected_sha256: Option<&str>,
    ) -> Result<Pulled, OciError> {
        let base = self.transport.base(reference);
        let answer = self
            .transport
            .send(
                reference,
                Access::Pull,
                Call {
                    method: Method::GET,
                    url: &format!("{base}manifests/{}", reference.lookup()),
                    headers: &[(
                    header::ACCEPT,
                    format!(
                        "{MANIFEST_MEDIA_TYPE}, application/vnd.oci.artifact.manifest.v1+json;q=0.5"
                    ),
                )],
                    body: Bytes::new(),
                    limit: MAX_MANIFEST_BYTES,
                },
            )
            .await?;
        check(reference, "GET manifest", &answer)?;
        let manifest_digest = digest_of(&answer.body);
        if let Some(pinned) = &reference.digest
            && *pinned != manifest_digest
        {
            return Err(OciError::DigestMismatch {
                what: format!("manifest of {reference}"),
                expected: pinned.clone(),
                actual: manifest_digest,
            });
        }
        let layer = wasm_layer(reference, &answer.body)?;
        if layer.size > self.max_artifact_bytes {
            return Err(OciError::TooLarge {
                what: format!("the module of {reference} ({} bytes)", layer.size),
                limit: self.max_artifact_bytes,
            });
        }
        let blob = self
            .transport
            .send(
                reference,
                Access::Pull,
                Call {
                    method: Method::GET,
                    url: &format!("{base}blobs/{}", layer.digest),
                    headers: &[],
                    body: Bytes::new(),
                    limit: self.max_artifact_bytes,
                },
            )
            .await?;
        check(reference, "GET blob", &blob)?;
        let wasm_sha256 = hex::encode(Sha256::digest(&blob.body));
        if layer.digest != format!("sha256:{wasm_sha256}") {
            return Err(OciError::DigestMismatch {
                what: format!("module layer of {reference}"),
                expected: layer.digest,
                actual: format!("sha256:{wasm_sha256}"),
            });
        }
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&wasm_sha256)
        {
            return Err(OciError::DigestMismatch {
                what: format!("module of {reference} against spec.runtime.wasm.sha256"),
                expected: expected.to_owned(),
                actual: wasm_sha256,
            });
        }
        wasm_kind(&blob.body).map_err(|why| OciError::NotWasm {
            what: reference.to_string(),
            why,
        })?;
        Ok(Pulled {
            wasm: blob.body,
            manifest_digest,
            wasm_sha256,
        })
    }
}

/// Maps a registry's non-success answer to an error naming the cause.
fn check(
    reference: &Reference,
    action: &str,
    answer: &transport::Response,
) -> Result<(), OciError> {
    match answer.status {
        s if s.is_success() => Ok(()),
        StatusCode::NOT_FOUND => Err(OciError::NotFound {
            reference: reference.to_string(),
            message: answer.message(),
        }),
        StatusCode::FORBIDDEN => Err(OciError::Denied {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            message: answer.message(),
        }),
        status => Err(OciError::Registry {
            registry: reference.registry.clone(),
            action: action.to_owned(),
            status: status.as_u16(),
            message: answer.message(),
        }),
    }
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WasmKind {
    Module,
    Component,
}

impl WasmKind {
    /// The config's `os`: what the artifact targets.
    fn os(self) -> &'static str {
        match self {
            WasmKind::Module => "wasip1",
            WasmKind::Component => "wasip2",
        }
    }
}

/// Core module or component, from the preamble (`\0asm` + version/layer).
fn wasm_kind(bytes: &[u8]) -> Result<WasmKind, String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("it does not start with the WebAssembly magic bytes \\0asm".to_owned());
    }
    match bytes[4..8] {
        [1, 0, 0, 0] => Ok(WasmKind::Module),
        [_, _, 1, 0] => Ok(WasmKind::Component),
        _ => Err("unknown WebAssembly version".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preamble_tells_modules_from_components() {
        let module = wat::parse_str("(module)").expect("wat");
        assert_eq!(wasm_kind(&module), Ok(WasmKind::Module));
        let component = wat::parse_str("(component)").expect("wat");
        assert_eq!(wasm_kind(&component), Ok(WasmKind::Component));
        assert!(wasm_kind(b"#!/bin/sh\necho hi").is_err());
        assert!(wasm_kind(b"").is_err());
    }

    #[test]
    fn the_wasm_layer_of_a_manifest_is_one_layer_with_a_sha256_digest() {
        let reference = Reference::parse("registry.example/team/fn:v1").expect("reference");
        let manifest = |layers: &str| {
            format!(
                r#"{{"schemaVersion": 2, "config": {{"mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2}},
                    "layers": [{layers}]}}"#
            )
        };
        let good = format!("sha256:{}", "ab".repeat(32));
        let layer =
            format!(r#"{{"mediaType": "application/wasm", "digest": "{good}", "size": 7}}"#);
        assert_eq!(
            wasm_layer(&reference, manifest(&layer).as_bytes()).expect("a wasm layer"),
            WasmLayer {
                digest: good.clone(),
                size: 7
            }
        );
        // A digest is part of the next URL: anything but sha256 hex is refused.
        for digest in [
            "sha256:../../v2/other/blobs/x",
            "sha256:AB",
            "md5:00",
            "",
            &format!("sha256:{}", "AB".repeat(32)),
        ] {
            let layer =
                format!(r#"{{"mediaType": "application/wasm", "digest": "{digest}", "size": 7}}"#);
            let err = wasm_layer(&reference, manifest(&layer).as_bytes()).expect_err(digest);
            assert!(err.to_string().contains("is not a sha256 digest"), "{err}");
        }
        let two = format!("{layer}, {layer}");
        assert!(wasm_layer(&reference, manifest(&two).as_bytes()).is_err());
        assert!(wasm_layer(&reference, manifest("").as_bytes()).is_err());
        assert!(wasm_layer(&reference, b"not json").is_err());
    }
}
