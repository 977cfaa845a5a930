//! Artifacts that are files on this machine (local mode, and absolute paths given to the
//! management API).

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::FetchError;

/// `path` as written in a manifest: relative to the manifest's folder `base`.
pub(super) fn resolve(path: &str, base: &Path) -> PathBuf {
    let path = PathBuf::from(path);
    if path.is_relative() {
        base.join(path)
    } else {
        path
    }
}

/// The bytes of the file at `path`.
pub(super) fn read(path: &Path) -> Result<Bytes, FetchError> {
    std::fs::read(path)
        .map(Bytes::from)
        .map_err(|error| FetchError::Read {
            path: path.display().to_string(),
            error,
        })
}
