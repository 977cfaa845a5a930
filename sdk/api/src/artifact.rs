//! Where a WASM function's artifact comes from (`spec.runtime.wasm.source`), in typed form, and
//! the one check that a fetched artifact is the one that was asked for.
//!
//! - `oci://registry/repository:tag` (or `@sha256:...`): an OCI artifact (a registry such as
//!   ECR), what `faas deploy` pushes.
//! - `configmap://name/key`: a key of a ConfigMap in the function's namespace (binary data),
//!   for modules small enough (ConfigMaps hold 1 MiB) when no registry is set.
//! - `sha256:<64 hex>`: an artifact uploaded to a local platform earlier, stored under that
//!   name (so the name is a digest and nothing else: it never becomes a path).
//! - `file:///abs/path.wasm` or a path (relative to the manifest): a file on this machine,
//!   local mode only.
//!
//! Fetching is I/O and lives with whoever fetches (the gateway's `artifact` module, the
//! controller); parsing and [`verify`] are pure and live here, so every fetcher reads a source
//! and checks bytes the same way.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// A parsed artifact source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtifactSource {
    /// `oci://...`.
    Oci(OciSource),
    /// `configmap://name/key`.
    ConfigMap { name: String, key: String },
    /// `sha256:<hex>`: uploaded to the local platform.
    Uploaded(Digest),
    /// A path on this machine (`file://` stripped).
    File(String),
}

/// An `oci://` source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciSource {
    /// The reference after the scheme, as written.
    pub reference: String,
    /// The manifest digest when the reference ends in `@sha256:<64 hex>` (pinned).
    pub digest: Option<Digest>,
}

/// A sha256 digest: 64 lowercase hexadecimal characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(hex::encode(Sha256::digest(bytes)))
    }

    /// `hex` as a digest (either case), or `None` when it is not 64 hexadecimal characters.
    pub fn parse(hex: &str) -> Option<Digest> {
        is_sha256_hex(hex).then(|| Digest(hex.to_ascii_lowercase()))
    }

    /// The 64 lowercase hexadecimal characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` is a sha256 in hexadecimal: exactly 64 hexadecimal characters (either case).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why a source does not parse (shown after `spec.runtime.wasm.source: `).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("must not be empty")]
    Empty,
    #[error("expected oci://registry/repository:tag, got {0:?}")]
    OciShape(String),
    #[error("expected configmap://<name>/<key>, got {0:?}")]
    ConfigMapShape(String),
    #[error("expected configmap://<name>/<key>, got {given:?}: ConfigMap name {why}")]
    ConfigMapName { given: String, why: String },
    #[error(
        "expected configmap://<name>/<key>, got {0:?}: a ConfigMap key is letters, digits, '-', \
         '_' and '.'"
    )]
    ConfigMapKey(String),
    #[error("expected sha256:<64 hex digits> (an uploaded artifact), got {0:?}")]
    UploadDigest(String),
    #[error("unknown scheme in {0:?}: use oci://, configmap://, file:// or a path")]
    UnknownScheme(String),
}

impl ArtifactSource {
    /// Parses `source`; the error says what is wrong with it.
    pub fn parse(source: &str) -> Result<ArtifactSource, SourceError> {
        let source = source.trim();
        if source.is_empty() {
            return Err(SourceError::Empty);
        }
        if let Some(reference) = source.strip_prefix("oci://") {
            if reference.is_empty() || !reference.contains('/') {
                return Err(SourceError::OciShape(source.to_owned()));
            }
            let digest = reference
                .rsplit_once("@sha256:")
                .and_then(|(_, hex)| Digest::parse(hex));
            return Ok(ArtifactSource::Oci(OciSource {
                reference: reference.to_owned(),
                digest,
            }));
        }
        if let Some(rest) = source.strip_prefix("configmap://") {
            let (name, key) = rest
                .split_once('/')
                .ok_or_else(|| SourceError::ConfigMapShape(source.to_owned()))?;
            crate::validate::check_dns_subdomain(name).map_err(|why| {
                SourceError::ConfigMapName {
                    given: source.to_owned(),
                    why,
                }
            })?;
            let key_ok = !key.is_empty()
                && key.len() <= 253
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !key_ok {
                return Err(SourceError::ConfigMapKey(source.to_owned()));
            }
            return Ok(ArtifactSource::ConfigMap {
                name: name.to_owned(),
                key: key.to_owned(),
            });
        }
        if let Some(sha) = source.strip_prefix("sha256:") {
            // The name of a stored file: a digest, never a path.
            return Digest::parse(sha)
                .map(ArtifactSource::Uploaded)
                .ok_or_else(|| SourceError::UploadDigest(source.to_owned()));
        }
        if source.contains("://") && !source.starts_with("file://") {
            return Err(SourceError::UnknownScheme(source.to_owned()));
        }
        Ok(ArtifactSource::File(
            source.strip_prefix("file://").unwrap_or(source).to_owned(),
        ))
    }

    /// Whether a cluster can fetch it (files and uploads exist on one machine only).
    pub fn reachable_from_a_cluster(&self) -> bool {
        matches!(
            self,
            ArtifactSource::Oci(_) | ArtifactSource::ConfigMap { .. }
        )
    }
}

/// What fetched bytes must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The pinned sha256 (hex, either case): `spec.runtime.wasm.sha256`.
    pub sha256: Option<&'a str>,
    /// The largest artifact accepted.
    pub max_bytes: Option<u64>,
}

/// Why fetched bytes are not the artifact that was asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("is {size} bytes, more than the {max} accepted")]
    TooLarge { size: u64, max: u64 },
    #[error("has sha256 {actual}, spec.runtime.wasm.sha256 pins {pinned}")]
    Mismatch { actual: Digest, pinned: String },
}

/// The digest of `bytes` when they are what `expected` asks for, else the reason.
pub fn verify(bytes: &[u8], expected: &Expected<'_>) -> Result<Digest, VerifyError> {
    let size = bytes.len() as u64;
    if let Some(max) = expected.max_bytes
        && size > max
    {
        return Err(VerifyError::TooLarge { size, max });
    }
    let actual = Digest::of(bytes);
    match expected.sha256 {
        Some(pinned) if !pinned.eq_ignore_ascii_case(actual.as_str()) => {
            Err(VerifyError::Mismatch {
                actual,
                pinned: pinned.to_owned(),
            })
        }
        _ => Ok(actual),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn sources_parse_into_their_kind() {
        assert_eq!(
            ArtifactSource::parse("oci://123.dkr.ecr.eu-west-3.amazonaws.com/fn/resize:1.4"),
            Ok(ArtifactSource::Oci(OciSource {
                reference: "123.dkr.ecr.eu-west-3.amazonaws.com/fn/resize:1.4".into(),
                digest: None,
            }))
        );
        assert_eq!(
            ArtifactSource::parse("configmap://fn-hello/hello.wasm"),
            Ok(ArtifactSource::ConfigMap {
                name: "fn-hello".into(),
                key: "hello.wasm".into()
            })
        );
        assert_eq!(
            ArtifactSource::parse("file:///srv/a.wasm"),
            Ok(ArtifactSource::File("/srv/a.wasm".into()))
        );
        assert_eq!(
            ArtifactSource::parse(" target/a.wasm "),
            Ok(ArtifactSource::File("target/a.wasm".into()))
        );
        assert_eq!(
            ArtifactSource::parse(&format!("sha256:{}", HELLO.to_uppercase())),
            Ok(ArtifactSource::Uploaded(Digest(HELLO.into())))
        );
    }

    #[test]
    fn an_oci_reference_is_pinned_only_by_a_full_sha256() {
        let digest = |source: &str| match ArtifactSource::parse(source) {
            Ok(ArtifactSource::Oci(oci)) => oci.digest,
            other => panic!("{source}: {other:?}"),
        };
        assert_eq!(
            digest(&format!("oci://r.example/fn@sha256:{HELLO}")),
            Some(Digest(HELLO.into()))
        );
        assert_eq!(
            digest(&format!(
                "oci://r.example/fn:1@sha256:{}",
                HELLO.to_uppercase()
            )),
            Some(Digest(HELLO.into()))
        );
        assert_eq!(digest("oci://r.example/fn@sha256:abc"), None);
        assert_eq!(digest("oci://r.example/fn:1"), None);
    }

    #[test]
    fn bad_sources_say_why() {
        for (bad, why) in [
            ("", "must not be empty"),
            ("  ", "must not be empty"),
            ("oci://", "oci://registry/repository"),
            ("oci://no-slash", "oci://registry/repository"),
            ("configmap://only-a-name", "configmap://<name>/<key>"),
            ("configmap://Bad_Name/k", "ConfigMap name"),
            ("configmap://ok/bad key", "ConfigMap key"),
            ("configmap://ok/", "ConfigMap key"),
            ("s3://bucket/a.wasm", "unknown scheme"),
            ("sha256:abc", "sha256:<64 hex digits>"),
        ] {
            let err = ArtifactSource::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    /// An uploaded artifact is a file named by its digest: a name that is not one (a path,
    /// `..`, a short or non-hex name) is refused before anything looks for the file.
    #[test]
    fn an_upload_is_named_by_a_digest_and_nothing_else() {
        for bad in [
            "sha256:../../etc/passwd",
            "sha256:",
            &format!("sha256:{}", &HELLO[..63]),
            &format!("sha256:{HELLO}0"),
            &format!("sha256:{}/x", &HELLO[..62]),
            &format!("sha256:{}zz", &HELLO[..62]),
        ] {
            assert_eq!(
                ArtifactSource::parse(bad),
                Err(SourceError::UploadDigest(bad.to_string())),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_oci_and_configmap_reach_a_cluster() {
        for (source, reachable) in [
            ("configmap://a/b", true),
            ("oci://r.example/fn:1", true),
            ("a.wasm", false),
            (&format!("sha256:{HELLO}"), false),
        ] {
            let parsed = ArtifactSource::parse(source).expect("parses");
            assert_eq!(parsed.reachable_from_a_cluster(), reachable, "{source}");
        }
    }

    #[test]
    fn sha256_hex_is_64_hex_characters() {
        assert!(is_sha256_hex(HELLO));
        assert!(is_sha256_hex(&HELLO.to_uppercase()));
        assert!(!is_sha256_hex(&HELLO[1..]));
        assert!(!is_sha256_hex(&format!("{}g", &HELLO[1..])));
        assert!(!is_sha256_hex(""));
        assert_eq!(Digest::parse("xyz"), None);
        assert_eq!(Digest::of(b"hello").as_str(), HELLO);
        assert_eq!(Digest::of(b"hello").to_string(), HELLO);
    }

    #[test]
    fn verify_returns_the_digest_or_the_reason() {
        assert_eq!(
            verify(b"hello", &Expected::default()),
            Ok(Digest(HELLO.into()))
        );
        let pinned = Expected {
            sha256: Some(HELLO),
            max_bytes: Some(5),
        };
        assert_eq!(verify(b"hello", &pinned), Ok(Digest(HELLO.into())));
        let upper = HELLO.to_uppercase();
        let pinned_upper = Expected {
            sha256: Some(&upper),
            max_bytes: None,
        };
        assert_eq!(verify(b"hello", &pinned_upper), Ok(Digest(HELLO.into())));
        assert_eq!(
            verify(b"hello!", &pinned),
            Err(VerifyError::TooLarge { size: 6, max: 5 })
        );
        let err = verify(b"hellO", &pinned).expect_err("another digest");
        assert!(matches!(&err, VerifyError::Mismatch { pinned, .. } if pinned == HELLO));
        assert!(
            err.to_string()
                .ends_with(&format!(", spec.runtime.wasm.sha256 pins {HELLO}")),
            "{err}"
        );
        assert_eq!(
            VerifyError::TooLarge { size: 6, max: 5 }.to_string(),
            "is 6 bytes, more than the 5 accepted"
        );
    }
}
