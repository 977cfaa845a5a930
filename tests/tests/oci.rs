//! OCI artifacts against a real registry (Debian's `docker-registry`, on loopback): push and
//! pull in the wasm OCI layout, digest pinning, tampered blobs and manifests refused,
//! authentication through the docker config, and the errors a user sees.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use faas_e2e::registry::{PASSWORD, RegistryServer};
use faas_oci::{OciError, Reference, Registry};

fn module(marker: u32) -> Bytes {
    Bytes::from(
        wat::parse_str(format!(
            r#"(module (func (export "marker") (result i32) i32.const {marker}))"#
        ))
        .unwrap(),
    )
}

fn anonymous() -> Registry {
    // No docker config at all: a machine's own ~/.docker must not leak into the tests.
    Registry::new(None, Vec::new()).unwrap()
}

#[tokio::test]
async fn a_pushed_module_pulls_back_byte_for_byte_and_pinned() {
    let server = RegistryServer::start(false);
    let registry = anonymous();
    let reference = Reference::parse(&format!("oci://{}/team/hello:v1", server.host)).unwrap();
    let wasm = module(1);
    let pushed = registry
        .push_wasm(&reference, wasm.clone(), &[("dev.faas.function", "hello")])
        .await
        .unwrap();
    assert!(!pushed.reused_blob);
    assert_eq!(pushed.size, wasm.len() as u64);
    assert_eq!(
        pushed.reference.digest.as_deref(),
        Some(pushed.manifest_digest.as_str())
    );
    assert_eq!(pushed.reference.tag.as_deref(), Some("v1"));

    // By tag, by pinned digest, and with the module's sha256 checked.
    let by_tag = registry.pull_wasm(&reference, None).await.unwrap();
    assert_eq!(by_tag.wasm, wasm);
    assert_eq!(by_tag.manifest_digest, pushed.manifest_digest);
    let pinned = registry
        .pull_wasm(&pushed.reference, Some(&pushed.wasm_sha256))
        .await
        .unwrap();
    assert_eq!(pinned.wasm, wasm);

    // A second push of the same bytes uploads nothing new and gives the same digest.
    let again = registry
        .push_wasm(&reference, wasm.clone(), &[("dev.faas.function", "hello")])
        .await
        .unwrap();
    assert!(again.reused_blob);
    assert_eq!(again.manifest_digest, pushed.manifest_digest);

    // Moving the tag does not move a pinned reference.
    registry
        .push_wasm(&reference, module(2), &[])
        .await
        .unwrap();
    assert_eq!(
        registry
            .pull_wasm(&pushed.reference, None)
            .await
            .unwrap()
            .wasm,
        wasm
    );
    assert_eq!(
        registry.pull_wasm(&reference, None).await.unwrap().wasm,
        module(2)
    );
}

#[tokio::test]
async fn tampered_artifacts_and_wrong_pins_are_refused() {
    let server = RegistryServer::start(false);
    let registry = anonymous();
    let reference = Reference::parse(&format!("{}/team/tamper:v1", server.host)).unwrap();
    let pushed = registry
        .push_wasm(&reference, module(7), &[])
        .await
        .unwrap();

    // The function pins another module's sha256.
    let other = faas_oci_sha(&module(8));
    let err = registry
        .pull_wasm(&pushed.reference, Some(&other))
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("spec.runtime.wasm.sha256"),
        "{err}"
    );

    // Someone rewrites the module's blob in the registry's storage.
    let layer = format!("sha256:{}", pushed.wasm_sha256);
    let blob = server.blob_file(&layer);
    let mut evil = module(666).to_vec();
    evil.resize(pushed.size as usize, 0);
    std::fs::write(&blob, &evil).unwrap();
    let err = registry
        .pull_wasm(&pushed.reference, None)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("module layer"), "{err}");

    // ... or the manifest itself: a pinned reference no longer matches.
    let manifest = server.blob_file(&pushed.manifest_digest);
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("\"schemaVersion\":2", "\"schemaVersion\": 2"),
    )
    .unwrap();
    let err = registry
        .pull_wasm(&pushed.reference, None)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("manifest"), "{err}");
}

#[tokio::test]
async fn what_is_not_a_wasm_artifact_is_named() {
    let server = RegistryServer::start(false);
    let registry = anonymous();
    let reference = Reference::parse(&format!("{}/team/not-wasm:v1", server.host)).unwrap();
    let err = registry
        .push_wasm(&reference, Bytes::from_static(b"#!/bin/sh\necho hi\n"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::NotWasm { .. }), "{err}");
    assert!(err.to_string().contains("magic bytes"), "{err}");

    let missing = Reference::parse(&format!("{}/team/absent:v9", server.host)).unwrap();
    let err = registry.pull_wasm(&missing, None).await.unwrap_err();
    assert!(matches!(err, OciError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("team/absent:v9"), "{err}");

    // A registry with a size ceiling refuses a module above it before downloading it.
    registry
        .push_wasm(&reference, module(3), &[])
        .await
        .unwrap();
    let mut small = anonymous();
    small.max_artifact_bytes = 8;
    let err = small.pull_wasm(&reference, None).await.unwrap_err();
    assert!(matches!(err, OciError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn credentials_come_from_the_docker_config() {
    let server = RegistryServer::start(true);
    let reference = Reference::parse(&format!("{}/team/private:v1", server.host)).unwrap();

    let err = anonymous()
        .push_wasm(&reference, module(4), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, OciError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("docker login"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let wrong = server.docker_config(dir.path(), "not-the-password");
    let err = Registry::new(Some(wrong), Vec::new())
        .unwrap()
        .push_wasm(&reference, module(4), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Unauthorized { .. }), "{err}");

    let right = server.docker_config(dir.path(), PASSWORD);
    let registry = Registry::new(Some(right), Vec::new()).unwrap();
    let pushed = registry
        .push_wasm(&reference, module(4), &[])
        .await
        .unwrap();
    let pulled = registry
        .pull_wasm(&pushed.reference, Some(&pushed.wasm_sha256))
        .await
        .unwrap();
    assert_eq!(pulled.wasm, module(4));
}

fn faas_oci_sha(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
