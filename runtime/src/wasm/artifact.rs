//! Artifacts: content addressing, kind detection, and the on-disk cache of compiled code.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::hmac;

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
///
/// A cache entry is native code that `deserialize` maps executable without any check of its
/// own, so every entry carries an HMAC-SHA256 under a per-cache secret key, over the code *and*
/// the name it answers for (artifact sha256, engine key). An entry that does not verify (a
/// planted file, a valid entry of another artifact copied under this name, a torn or
/// corrupted write, an entry of another cache) is never deserialized: the artifact is
/// compiled again and the entry replaced. The key lives beside the directory, not in it
/// (`<dir>.key`, mode 0600, created on first use), so whoever can only drop files into the
/// directory cannot forge entries; the gateway refuses any guest grant that reaches either.
/// A MAC rather than a digest kept in memory: the cache must survive restarts (that is its
/// point), and the key is the one thing that then has to stay out of reach.
#[derive(Clone)]
pub struct DiskCache {
    dir: PathBuf,
    engine_key: String,
    // `None` when the key could neither be read nor created: the cache is then off (every
    // artifact compiled), never trusted without verification.
    key: Option<Arc<hmac::Key>>,
}

impl std::fmt::Debug for DiskCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskCache")
            .field("dir", &self.dir)
            .field("engine_key", &self.engine_key)
            .field("keyed", &self.key.is_some())
            .finish()
    }
}

/// First bytes of every entry: format version.
const MAGIC: &[u8; 8] = b"faascw1\n";
/// Bytes of the key and of the tag.
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 32;

impl DiskCache {
    /// A cache under `dir` for `engine`, with its key at `<dir>.key` (read, or created).
    pub fn new(dir: &Path, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let key = match load_or_create_key(&Self::key_path(dir)) {
            Ok(key) => Some(Arc::new(key)),
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "no key for the compiled-code cache: the cache is off, every artifact is compiled");
                None
            }
        };
        Self {
            dir: dir.to_path_buf(),
            engine_key: format!("{:016x}", hasher.finish()),
            key,
        }
    }

    /// Where the key of the cache in `dir` lives: beside it.
    pub fn key_path(dir: &Path) -> PathBuf {
        let mut name = dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "cache".into());
        name.push(".key");
        match dir.parent() {
            Some(parent) if dir.file_name().is_some() => parent.join(name),
            _ => dir.join(name),
        }
    }

    /// Where the compiled form of `sha256` lives.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    fn tag(&self, key: &hmac::Key, sha256: &str, code: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(key);
        // What the entry answers for is part of what is signed: a valid entry of another
        // artifact renamed to this one does not verify.
        for part in [
            b"faas-cwasm\0".as_slice(),
            sha256.as_bytes(),
            b"\0",
            self.engine_key.as_bytes(),
            b"\0",
        ] {
            ctx.update(part);
        }
        ctx.update(code);
        ctx.sign()
    }

    /// Reads a cached compiled artifact, if there is one that verifies under the cache key.
    /// What is returned is the verified copy in memory: the file is read once, so it cannot
    /// change between the check and its use.
    pub fn get(&self, sha256: &str) -> Option<Vec<u8>> {
        let key = self.key.as_deref()?;
        let path = self.path(sha256);
        let mut bytes = std::fs::read(&path).ok()?;
        let header = MAGIC.len() + TAG_LEN;
        let verified = bytes.len() > header
            && bytes[..MAGIC.len()] == MAGIC[..]
            && same_in_constant_time(
                self.tag(key, sha256, &bytes[header..]).as_ref(),
                &bytes[MAGIC.len()..header],
            );
        if !verified {
            tracing::warn!(path = %path.display(), "compiled-code cache entry failed verification (planted, foreign or corrupt): compiling the artifact again");
            return None;
        }
        Some(bytes.split_off(header))
    }

    /// Stores compiled bytes with their tag, atomically (write to a temp file, then rename),
    /// so a concurrent reader or a crash never sees half a file.
    pub fn put(&self, sha256: &str, compiled: &[u8]) -> std::io::Result<()> {
        let Some(key) = self.key.as_deref() else {
            return Ok(());
        };
        create_private_dir(&self.dir)?;
        let tag = self.tag(key, sha256, compiled);
        let tmp = self
            .dir
            .join(format!(".{sha256}.{}.tmp", std::process::id()));
        let mut file = private_file(&tmp)?;
        file.write_all(MAGIC)?;
        file.write_all(tag.as_ref())?;
        file.write_all(compiled)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, self.path(sha256))
    }

    /// Removes a cached entry that failed to load.
    pub fn evict(&self, sha256: &str) {
        let _ = std::fs::remove_file(self.path(sha256));
    }
}

/// Whether two tags are equal, in time independent of where they differ.
fn same_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Creates `dir` (and its parents) readable by this user only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// A new file (replacing a leftover of the same name) with mode 0600.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Reads the cache key at `path`, or creates one (32 random bytes, mode 0600). Creation is
/// race-free between processes sharing the cache: the key is written to a temporary file and
/// linked into place only if no key exists, so every process ends up with the same key.
fn load_or_create_key(path: &Path) -> std::io::Result<hmac::Key> {
    if let Ok(bytes) = std::fs::read(path) {
        if bytes.len() == KEY_LEN {
            return Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes));
        }
        // A key of the wrong size is no key: replace it (every entry then fails to verify
        // and is compiled again).
        tracing::warn!(path = %path.display(), "compiled-code cache key has the wrong size: replacing it");
        std::fs::remove_file(path)?;
    }
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        create_private_dir(parent)?;
    }
    let mut secret = [0u8; KEY_LEN];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| std::io::Error::other("the system random source failed"))?;
    let tmp = path.with_extension(format!("key.{}.tmp", std::process::id()));
    let mut file = private_file(&tmp)?;
    file.write_all(&secret)?;
    file.sync_all()?;
    drop(file);
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(hmac::Key::new(hmac::HMAC_SHA256, &secret)),
        // Another process created it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = std::fs::read(path)?;
            if bytes.len() != KEY_LEN {
                return Err(std::io::Error::other("the cache key has the wrong size"));
            }
            Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
        }
        Err(err) => Err(err),
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
