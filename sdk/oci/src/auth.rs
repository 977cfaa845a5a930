//! Registry credentials, found where docker and its tools put them, and the token dance of
//! the distribution spec.
//!
//! Lookup order for a registry host: `credHelpers[host]` (e.g. `ecr-login` for ECR), then
//! `auths[host]` (what `docker login` writes; `auth` is base64 `user:password`), then
//! `credsStore` (the default helper), else anonymous. The config file is
//! `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
//!
//! A helper may also be built in ([`Helper`], given to [`crate::Registry::with_helper`]): then
//! it answers instead of the `docker-credential-<name>` program. Pool pods build `ecr-login` in,
//! so they log in to ECR with their own IAM role without a helper binary; with it, an ECR host
//! the docker config says nothing about uses `ecr-login` too ([`is_ecr_host`]).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::OciError;

/// What to send a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// An identity token (`docker login` with OAuth2 registries): exchanged for a bearer token.
    IdentityToken(String),
}

// Never print secrets, also not in debug logs.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

impl Credentials {
    /// The `Authorization` value for basic authentication, when there is one.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            _ => None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The docker config file this process would use.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// The docker credential helper of ECR (`docker-credential-ecr-login`).
pub const ECR_HELPER: &str = "ecr-login";

/// A credential helper built into the process (instead of a `docker-credential-*` program).
pub trait Helper: Send + Sync {
    /// Credentials for `registry` (a host, `host:port`).
    fn get<'a>(
        &'a self,
        registry: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Credentials, OciError>> + Send + 'a>>;
}

/// `<account>.dkr.ecr.<region>.amazonaws.com` (and the China and FIPS variants).
pub fn is_ecr_host(registry: &str) -> bool {
    ecr_host_parts(registry).is_some()
}

/// (account, region) of an ECR host.
pub fn ecr_host_parts(registry: &str) -> Option<(&str, &str)> {
    let host = registry.split(':').next().unwrap_or(registry);
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (account, rest) = rest.split_once(".dkr.ecr")?;
    let region = rest
        .strip_prefix("-fips.")
        .or_else(|| rest.strip_prefix('.'))?;
    let valid = !account.is_empty()
        && account.bytes().all(|b| b.is_ascii_digit())
        && !region.is_empty()
        && !region.contains('.');
    valid.then_some((account, region))
}

/// What the docker config says about a registry, before any helper runs.
pub(crate) enum Found {
    Credentials(Credentials),
    /// The name of the helper to ask (`credHelpers`, else `credsStore`).
    Helper(String),
    /// Nothing: anonymous, unless a built-in helper claims the host.
    Nothing,
}

/// Credentials for `registry` from the docker config at `path` (missing file: anonymous).
pub fn lookup(path: Option<&Path>, registry: &str) -> Result<Credentials, OciError> {
    resolve(find(path, registry)?, registry)
}

/// [`Found`] into credentials, running a helper program when one is named.
pub(crate) fn resolve(found: Found, registry: &str) -> Result<Credentials, OciError> {
    match found {
        Found::Credentials(credentials) => Ok(credentials),
        Found::Helper(helper) => from_helper(&helper, registry),
        Found::Nothing => Ok(Credentials::Anonymous),
    }
}

/// What the docker config at `path` says for `registry`, in docker's order.
pub(crate) fn find(path: Option<&Path>, registry: &str) -> Result<Found, OciError> {
    let Some(path) = path else {
        return Ok(Found::Nothing);
    };
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => {
            return Err(OciError::Credentials {
                registry: registry.to_owned(),
                why: format!("reading {}: {e}", path.display()),
            });
        }
    };
    let config: DockerConfig =
        serde_json::from_slice(&text).map_err(|e| OciError::Credentials {
            registry: registry.to_owned(),
            why: format!("{} is not a docker config: {e}", path.display()),
        })?;
    if let Some(helper) = config.cred_helpers.get(registry) {
        return Ok(Found::Helper(helper.clone()));
    }
    if let Some(entry) = config
        .auths
        .iter()
        .find(|(key, _)| host_of(key) == registry)
        .map(|(_, entry)| entry)
    {
        return from_entry(entry, registry, path).map(Found::Credentials);
    }
    Ok(match &config.creds_store {
        Some(store) => Found::Helper(store.clone()),
        None => Found::Nothing,
    })
}

/// `https://host/v1/` and `host` both name `host`.
fn host_of(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

fn from_entry(entry: &AuthEntry, registry: &str, path: &Path) -> Result<Credentials, OciError> {
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::IdentityToken(token.clone()));
    }
    if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let bad = |why: &str| OciError::Credentials {
            registry: registry.to_owned(),
            why: format!("auths.{registry}.auth in {}: {why}", path.display()),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad("not UTF-8"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| bad("expected base64 of user:password"))?;
        return Ok(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) => Ok(Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        }),
        _ => Ok(Credentials::Anonymous),
    }
}

/// Runs `docker-credential-<helper> get` with the host on stdin, as docker does.
fn from_helper(helper: &str, registry: &str) -> Result<Credentials, OciError> {
    use std::io::Write as _;
    let program = format!("docker-credential-{helper}");
    let fail = |why: String| OciError::Credentials {
        registry: registry.to_owned(),
        why: format!("{program}: {why}"),
    };
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it ({e}); is it installed and on PATH?")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| fail(format!("writing to it: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for it: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout);
        let said = if said.trim().is_empty() {
            String::from_utf8_lossy(&out.stderr)
        } else {
            said
        };
        // Helpers answer "credentials not found in native keychain" when they have none:
        // that is anonymous access, not an error.
        if said.contains("credentials not found") {
            return Ok(Credentials::Anonymous);
        }
        return Err(fail(format!("failed ({}): {}", out.status, said.trim())));
    }
    #[derive(Deserialize)]
    struct HelperReply {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let reply: HelperReply =
        serde_json::from_slice(&out.stdout).map_err(|e| fail(format!("unexpected output: {e}")))?;
    // `<token>` as the user name marks an identity token (docker's convention).
    if reply.username == "<token>" {
        return Ok(Credentials::IdentityToken(reply.secret));
    }
    Ok(Credentials::Basic {
        username: reply.username,
        password: reply.secret,
    })
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Basic realm="x"` or `Bearer realm="...",service="...",scope="..."`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    for (key, value) in params_of(params) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            "scope" => scope = Some(value),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

/// `k="v",k2="v2"` (values may contain commas inside quotes, as scopes do).
fn params_of(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((value, remaining)) => (value.to_owned(), remaining),
                None => (quoted.to_owned(), ""),
            }
        } else {
            match after.split_once(',') {
                Some((value, remaining)) => (value.trim().to_owned(), remaining),
                None => (after.trim().to_owned(), ""),
            }
        };
        out.push((key, value));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:fn/a:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:fn/a:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
    }

    #[test]
    fn ecr_hosts_are_recognised() {
        assert_eq!(
            ecr_host_parts("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(("123456789012", "eu-west-1"))
        );
        assert_eq!(
            ecr_host_parts("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"),
            Some(("123456789012", "us-east-1"))
        );
        assert_eq!(
            ecr_host_parts("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            Some(("123456789012", "cn-north-1"))
        );
        for other in [
            "ghcr.io",
            "127.0.0.1:5000",
            "evil.dkr.ecr.us-east-1.amazonaws.com",
            "123.dkr.ecr.amazonaws.com",
            "123.dkr.ecr.us-east-1.amazonaws.com.example.com",
        ] {
            assert!(!is_ecr_host(other), "{other}");
        }
    }

    #[test]
    fn docker_config_entries_give_credentials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths": {
                "https://r1.example.com/v1/": {"auth": "dXNlcjpwYTpzcw=="},
                "r2.example.com": {"username": "u2", "password": "p2"},
                "r3.example.com": {"identitytoken": "tok"},
                "r4.example.com": {"auth": "not base64!"}
              },
              "credHelpers": {"r5.example.com": "faas-test-missing-helper"}}"#,
        )
        .expect("write");
        assert_eq!(
            lookup(Some(&path), "r1.example.com").expect("r1"),
            Credentials::Basic {
                username: "user".into(),
                password: "pa:ss".into()
            }
        );
        assert_eq!(
            lookup(Some(&path), "r2.example.com").expect("r2"),
            Credentials::Basic {
                username: "u2".into(),
                password: "p2".into()
            }
        );
        assert_eq!(
            lookup(Some(&path), "r3.example.com").expect("r3"),
            Credentials::IdentityToken("tok".into())
        );
        let err = lookup(Some(&path), "r4.example.com").expect_err("r4");
        assert!(err.to_string().contains("not base64"), "{err}");
        let err = lookup(Some(&path), "r5.example.com").expect_err("r5");
        assert!(
            err.to_string()
                .contains("docker-credential-faas-test-missing-helper"),
            "{err}"
        );
        assert_eq!(
            lookup(Some(&path), "other.example.com").expect("other"),
            Credentials::Anonymous
        );
        assert_eq!(
            lookup(Some(&dir.path().join("absent.json")), "r1.example.com").expect("absent"),
            Credentials::Anonymous
        );
        assert!(!format!("{:?}", lookup(Some(&path), "r1.example.com")).contains("pa:ss"));
    }
}
