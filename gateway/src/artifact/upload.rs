//! Artifacts uploaded to the management API, kept under the state directory as
//! `artifacts/<sha256>.wasm` so that a restart (or a later deploy naming `sha256:<hex>`) finds
//! them. The file name is the digest and only a digest ([`Digest`] is 64 hex characters), so
//! a source can never name a path outside that folder.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use faas_api::artifact::{Digest, Expected, verify};

use super::FetchError;

/// Where the upload named `digest` is kept.
pub fn path(state_dir: &Path, digest: &Digest) -> PathBuf {
    state_dir.join("artifacts").join(format!("{digest}.wasm"))
}

/// Keeps `artifact` under its digest, which it returns (the name a stored manifest uses).
pub fn store(state_dir: &Path, artifact: &[u8]) -> std::io::Result<Digest> {
    let digest = Digest::of(artifact);
    let path = path(state_dir, &digest);
    let dir = state_dir.join("artifacts");
    std::fs::create_dir_all(&dir)?;
    // Written aside and renamed: a crash leaves no half file under the digest's name.
    let tmp = dir.join(format!(".{digest}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, artifact)?;
    std::fs::rename(tmp, path)?;
    Ok(digest)
}

/// The upload named `digest`, checked against its name.
pub(super) fn read(state_dir: &Path, digest: &Digest) -> Result<Bytes, FetchError> {
    let bytes = std::fs::read(path(state_dir, digest))
        .map_err(|_| FetchError::NoSuchUpload(digest.clone()))?;
    let expected = Expected {
        sha256: Some(digest.as_str()),
        max_bytes: None,
    };
    match verify(&bytes, &expected) {
        Ok(_) => Ok(Bytes::from(bytes)),
        Err(_) => Err(FetchError::DamagedUpload {
            name: digest.clone(),
            actual: Digest::of(&bytes),
        }),
    }
}
