//! Where a WASM function's artifact comes from (`spec.runtime.wasm.source`), in typed form.
//!
//! - `oci://registry/repository:tag` (or `@sha256:...`): an OCI artifact (a registry such as
//!   ECR), what `faas deploy` pushes.
//! - `configmap://name/key`: a key of a ConfigMap in the function's namespace (binary data),
//!   for modules small enough (ConfigMaps hold 1 MiB) when no registry is set.
//! - `sha256:<hex>`: an artifact uploaded to a local platform earlier.
//! - `file:///abs/path.wasm` or a path (relative to the manifest): a file on this machine,
//!   local mode only.

/// A parsed artifact source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtifactSource {
    /// `oci://...`: the reference after the scheme.
    Oci(String),
    /// `configmap://name/key`.
    ConfigMap { name: String, key: String },
    /// `sha256:<hex>`: uploaded to the local platform.
    Uploaded(String),
    /// A path on this machine (`file://` stripped).
    File(String),
}

impl ArtifactSource {
    /// Parses `source`; the error says what is wrong with it.
    pub fn parse(source: &str) -> Result<ArtifactSource, String> {
        let source = source.trim();
        if source.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if let Some(reference) = source.strip_prefix("oci://") {
            if reference.is_empty() || !reference.contains('/') {
                return Err(format!(
                    "expected oci://registry/repository:tag, got {source:?}"
                ));
            }
            return Ok(ArtifactSource::Oci(reference.to_owned()));
        }
        if let Some(rest) = source.strip_prefix("configmap://") {
            let shape = || format!("expected configmap://<name>/<key>, got {source:?}");
            let (name, key) = rest.split_once('/').ok_or_else(shape)?;
            crate::validate::check_dns_subdomain(name)
                .map_err(|why| format!("{}: ConfigMap name {why}", shape()))?;
            let key_ok = !key.is_empty()
                && key.len() <= 253
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !key_ok {
                return Err(format!(
                    "{}: a ConfigMap key is letters, digits, '-', '_' and '.'",
                    shape()
                ));
            }
            return Ok(ArtifactSource::ConfigMap {
                name: name.to_owned(),
                key: key.to_owned(),
            });
        }
        if let Some(sha) = source.strip_prefix("sha256:") {
            return Ok(ArtifactSource::Uploaded(sha.to_owned()));
        }
        if source.contains("://") && !source.starts_with("file://") {
            return Err(format!(
                "unknown scheme in {source:?}: use oci://, configmap://, file:// or a path"
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_into_their_kind_or_say_why_not() {
        assert_eq!(
            ArtifactSource::parse("oci://123.dkr.ecr.eu-west-3.amazonaws.com/fn/resize:1.4"),
            Ok(ArtifactSource::Oci(
                "123.dkr.ecr.eu-west-3.amazonaws.com/fn/resize:1.4".into()
            ))
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
            ArtifactSource::parse("target/a.wasm"),
            Ok(ArtifactSource::File("target/a.wasm".into()))
        );
        assert!(matches!(
            ArtifactSource::parse("sha256:abc"),
            Ok(ArtifactSource::Uploaded(_))
        ));
        for (bad, why) in [
            ("", "must not be empty"),
            ("oci://", "oci://registry/repository"),
            ("configmap://only-a-name", "configmap://<name>/<key>"),
            ("configmap://Bad_Name/k", "ConfigMap name"),
            ("configmap://ok/bad key", "ConfigMap key"),
            ("s3://bucket/a.wasm", "unknown scheme"),
        ] {
            let err = ArtifactSource::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(
            ArtifactSource::parse("configmap://a/b")
                .expect("parses")
                .reachable_from_a_cluster()
        );
        assert!(
            !ArtifactSource::parse("a.wasm")
                .expect("parses")
                .reachable_from_a_cluster()
        );
    }
}
