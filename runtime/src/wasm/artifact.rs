//! Artifacts: content addressing, kind detection, and the on-disk cache of compiled code.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;

use super::LoadError;

/// What a `.wasm` file contains, read from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A component (`wasi:http/proxy` expected).
    Component,
    /// A core module (WASI preview1 command expected, run CGI-style).
    CoreModule,
}

/// Hex sha256 of the bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Detects the artifact kind, or explains why the bytes are not WebAssembly.
pub fn detect_kind(bytes: &[u8]) -> Result<ArtifactKind, LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        let shown: String = bytes
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(LoadError::NotWasm(format!(
            "not a WebAssembly binary: expected it to start with 00 61 73 6d, found [{shown}] ({} bytes)",
            bytes.len()
        )));
    }
    match &bytes[4..8] {
        [1, 0, 0, 0] => Ok(ArtifactKind::CoreModule),
        [0x0d, 0, 1, 0] => Ok(ArtifactKind::Component),
        other => Err(LoadError::NotWasm(format!(
            "unsupported WebAssembly binary version/layer {other:02x?}"
        ))),
    }
}

/// On-disk cache of precompiled artifacts, keyed by the artifact's sha256 and the engine's
/// compatibility hash (wasmtime version + every setting that changes generated code), so a
/// restart or a new node skips compilation, and an engine upgrade never loads stale code.
#[derive(Clone, Debug)]
pub struct DiskCache {
    dir: PathBuf,
    engine_key: String,
}

impl DiskCache {
    /// A cache under `dir` for `engine`.
    pub fn new(dir: &Path, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir: dir.to_path_buf(),
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    /// Where the compiled form of `sha256` lives.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// Reads a cached compiled artifact, if any.
    pub fn get(&self, sha256: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(sha256)).ok()
    }

    /// Stores compiled bytes atomically (write to a temp file, then rename), so a concurrent
    /// reader or a crash never sees half a file.
    pub fn put(&self, sha256: &str, compiled: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self
            .dir
            .join(format!(".{sha256}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, compiled)?;
        std::fs::rename(&tmp, self.path(sha256))
    }

    /// Removes a cached entry that failed to load.
    pub fn evict(&self, sha256: &str) {
        let _ = std::fs::remove_file(self.path(sha256));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_detected_and_garbage_explained() {
        assert_eq!(
            detect_kind(b"\0asm\x01\0\0\0").ok(),
            Some(ArtifactKind::CoreModule)
        );
        assert_eq!(
            detect_kind(b"\0asm\x0d\0\x01\0").ok(),
            Some(ArtifactKind::Component)
        );
        let err = detect_kind(b"#!/bin/sh\necho hi").expect_err("not wasm");
        assert!(
            err.to_string().contains("not a WebAssembly binary"),
            "{err}"
        );
        assert!(detect_kind(b"").is_err());
        assert!(detect_kind(b"\0asm\x02\0\0\0").is_err());
    }
}
