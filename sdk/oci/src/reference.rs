//! Image references: `registry[:port]/repository[:tag][@sha256:digest]`.

use std::fmt;

/// Why a reference does not parse; one line quoting it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("digest {0:?} must be sha256:<64 hex digits>")]
    Digest(String),
    #[error("expected registry/repository[:tag], got {0:?}")]
    Shape(String),
    #[error(
        "{text:?} names no registry host: write it in full, e.g. \
         123.dkr.ecr.eu-west-3.amazonaws.com/{rest}"
    )]
    NoRegistryHost { text: String, rest: String },
    #[error("{text:?}: repository must be 1-255 characters")]
    RepositoryLength { text: String },
    #[error(
        "{text:?}: repository component {part:?} must be lowercase letters and digits, \
         separated by '.', '_' or '-'"
    )]
    RepositoryComponent { text: String, part: String },
    #[error(
        "{text:?}: tag {tag:?} must be 1-128 letters, digits, '_', '.' or '-', not starting with \
         '.' or '-'"
    )]
    Tag { text: String, tag: String },
}

/// A parsed reference. Either `tag` or `digest` (or both) is set: a bare repository means
/// `:latest`, as with docker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Host and optional port, e.g. `123.dkr.ecr.eu-west-3.amazonaws.com` or `127.0.0.1:5000`.
    pub registry: String,
    /// Path inside the registry, e.g. `fn/resize`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`: the manifest's digest.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses a reference (an optional `oci://` prefix is accepted). The error says what is
    /// wrong with it.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let text = text.trim();
        let rest = text.strip_prefix("oci://").unwrap_or(text);
        let (rest, digest) = match rest.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest)?;
                (rest, Some(digest.to_ascii_lowercase()))
            }
            None => (rest, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| ReferenceError::Shape(text.to_owned()))?;
        // A registry names a host: it has a dot or a port, or is localhost. Without one,
        // docker would read the first segment as a Docker Hub namespace; we want no
        // accidental pushes to Docker Hub, so ask for the host.
        if registry.is_empty()
            || !(registry.contains('.') || registry.contains(':') || registry == "localhost")
        {
            return Err(ReferenceError::NoRegistryHost {
                text: text.to_owned(),
                rest: rest.to_owned(),
            });
        }
        // A tag follows the last ':' of the last path segment (a ':' before it is a port).
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (path, None),
        };
        check_repository(text, repository)?;
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return Err(ReferenceError::Tag {
                    text: text.to_owned(),
                    tag: tag.to_owned(),
                });
            }
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Ok(Reference {
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn lookup(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository, pinned to `digest` (the tag is kept for people reading it).
    pub fn pinned(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// Whether the registry is on this machine, where plain HTTP is the norm (as docker does
    /// for localhost).
    pub fn is_loopback(&self) -> bool {
        authority_is_loopback(&self.registry)
    }
}

/// Whether `host[:port]` (or `[v6]:port`) names this machine: `localhost`, 127.0.0.0/8, ::1.
pub(crate) fn authority_is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn check_digest(digest: &str) -> Result<(), ReferenceError> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        _ => Err(ReferenceError::Digest(digest.to_owned())),
    }
}

/// Repository names: lowercase path components of `[a-z0-9]` separated by `.`, `_`, `__` or
/// `-`, joined by `/` (the distribution spec's grammar, simplified to what registries accept).
fn check_repository(text: &str, repository: &str) -> Result<(), ReferenceError> {
    if repository.is_empty() || repository.len() > 255 {
        return Err(ReferenceError::RepositoryLength {
            text: text.to_owned(),
        });
    }
    for part in repository.split('/') {
        let ok = !part.is_empty()
            && part.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            return Err(ReferenceError::RepositoryComponent {
                text: text.to_owned(),
                part: part.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse_into_their_parts() {
        let ecr = Reference::parse("oci://123.dkr.ecr.eu-west-3.amazonaws.com/fn/resize:1.4")
            .expect("parses");
        assert_eq!(ecr.registry, "123.dkr.ecr.eu-west-3.amazonaws.com");
        assert_eq!(ecr.repository, "fn/resize");
        assert_eq!(ecr.tag.as_deref(), Some("1.4"));
        assert_eq!(ecr.lookup(), "1.4");
        assert!(!ecr.is_loopback());

        let local = Reference::parse("127.0.0.1:5000/team/hello").expect("parses");
        assert_eq!(local.registry, "127.0.0.1:5000");
        assert_eq!(local.tag.as_deref(), Some("latest"));
        assert!(local.is_loopback());

        let pinned = Reference::parse(&format!("localhost:5000/hello:v1@{DIGEST}")).expect("ok");
        assert_eq!(pinned.lookup(), DIGEST);
        assert_eq!(
            pinned.to_string(),
            format!("localhost:5000/hello:v1@{DIGEST}")
        );
        assert_eq!(
            Reference::parse(&pinned.to_string()).expect("round trip"),
            pinned
        );
        assert!(Reference::parse("[::1]:5000/a").expect("v6").is_loopback());
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for (bad, why) in [
            ("hello", "expected registry/repository"),
            ("library/hello:1", "names no registry host"),
            ("r.example.com/Hello", "lowercase"),
            ("r.example.com/a//b", "lowercase"),
            ("r.example.com/a:-x", "tag"),
            ("r.example.com/a@sha256:12", "64 hex"),
            ("r.example.com/a@md5:12", "sha256:"),
            ("r.example.com/", "repository must be 1-255 characters"),
        ] {
            let err = Reference::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
