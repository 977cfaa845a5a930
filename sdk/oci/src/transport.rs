//! One registry request: scheme choice, authentication on a 401 challenge (basic or bearer
//! token, cached per repository and access), redirects (blob downloads from ECR and S3-backed
//! registries redirect to another host), size limits and timeouts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::OciError;
use crate::auth::{self, Challenge, Credentials};
use crate::reference::Reference;

/// One request to make.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: &'a str,
    pub headers: &'a [(header::HeaderName, String)],
    pub body: Bytes,
    /// Most bytes of the answer to read.
    pub limit: u64,
}

/// A fully read response.
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The registry's own words: the first `errors[].message` of a distribution error body,
    /// else the body text.
    pub fn message(&self) -> String {
        let parsed = serde_json::from_slice::<serde_json::Value>(&self.body).ok();
        let from_json = parsed.as_ref().and_then(|v| {
            let first = v.get("errors")?.get(0)?;
            let code = first.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let message = first.get("message").and_then(|m| m.as_str()).unwrap_or("");
            Some(
                format!("{code}: {message}")
                    .trim_matches([':', ' '])
                    .to_owned(),
            )
        });
        from_json.unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&self.body);
            text.trim().chars().take(300).collect()
        })
    }
}

/// Which access a request needs; bearer tokens are scoped by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    Pull,
    Push,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        }
    }
}

pub(crate) struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    docker_config: Option<PathBuf>,
    /// Hosts reached over plain HTTP besides loopback ones (`FAAS_INSECURE_REGISTRIES`).
    insecure: Vec<String>,
    /// Authorization values that worked, per (registry, repository, access).
    authorizations: Mutex<HashMap<(String, String, Access), HeaderValue>>,
    /// Credential helpers built into this process, by helper name.
    pub helpers: HashMap<String, std::sync::Arc<dyn auth::Helper>>,
    pub timeout: Duration,
}

const MAX_REDIRECTS: usize = 5;

impl Transport {
    pub fn new(docker_config: Option<PathBuf>, insecure: Vec<String>) -> Result<Self, OciError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| OciError::Transport {
                registry: "-".into(),
                why: format!("loading the system's CA certificates: {e}"),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            docker_config,
            insecure,
            authorizations: Mutex::new(HashMap::new()),
            helpers: HashMap::new(),
            timeout: Duration::from_secs(120),
        })
    }

    /// `http(s)://registry/v2/repository/` for `reference`.
    pub fn base(&self, reference: &Reference) -> String {
        let scheme = if reference.is_loopback() || self.insecure.contains(&reference.registry) {
            "http"
        } else {
            "https"
        };
        format!(
            "{scheme}://{}/v2/{}/",
            reference.registry, reference.repository
        )
    }

    /// Sends a request to the registry of `reference`, authenticating when challenged, and
    /// reads at most `limit` bytes of the answer.
    pub async fn send(
        &self,
        reference: &Reference,
        access: Access,
        call: Call<'_>,
    ) -> Result<Response, OciError> {
        let key = (
            reference.registry.clone(),
            reference.repository.clone(),
            access,
        );
        let cached = self.cached(&key);
        let first = self.exchange(reference, &call, cached.as_ref()).await?;
        if first.status != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let authorization = self.authorize(reference, access, &first).await?;
        let second = self
            .exchange(reference, &call, Some(&authorization))
            .await?;
        if second.status == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(reference, &second));
        }
        if let Ok(mut cache) = self.authorizations.lock() {
            cache.insert(key, authorization);
        }
        Ok(second)
    }

    fn cached(&self, key: &(String, String, Access)) -> Option<HeaderValue> {
        self.authorizations
            .lock()
            .ok()
            .and_then(|cache| cache.get(key).cloned())
    }

    /// Docker's lookup, with built-in helpers answering for their names (and `ecr-login`
    /// for ECR hosts the config says nothing about).
    async fn credentials(&self, registry: &str) -> Result<Credentials, OciError> {
        let found = auth::find(self.docker_config.as_deref(), registry)?;
        let built_in = match &found {
            auth::Found::Helper(name) => self.helpers.get(name),
            auth::Found::Nothing if auth::is_ecr_host(registry) => {
                self.helpers.get(auth::ECR_HELPER)
            }
            _ => None,
        };
        match built_in {
            Some(helper) => helper.get(registry).await,
            None => auth::resolve(found, registry),
        }
    }

    /// The Authorization value answering a 401's challenge.
    async fn authorize(
        &self,
        reference: &Reference,
        access: Access,
        challenged: &Response,
    ) -> Result<HeaderValue, OciError> {
        let challenge = challenged
            .header("www-authenticate")
            .and_then(auth::parse_challenge);
        let credentials = self.credentials(&reference.registry).await?;
        let value = match challenge {
            Some(Challenge::Basic) => {
                let header = credentials
                    .basic_header()
                    .ok_or_else(|| self.unauthorized(reference, challenged))?;
                refuse_plain_http(&self.base(reference), reference)?;
                header
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self
                    .token(reference, access, &realm, service.as_deref(), &credentials)
                    .await?;
                format!("Bearer {token}")
            }
            None => return Err(self.unauthorized(reference, challenged)),
        };
        HeaderValue::from_str(&value).map_err(|_| OciError::Credentials {
            registry: reference.registry.clone(),
            why: "the credentials contain characters not allowed in a header".into(),
        })
    }

    /// A bearer token from the registry's token service (distribution token spec).
    async fn token(
        &self,
        reference: &Reference,
        access: Access,
        realm: &str,
        service: Option<&str>,
        credentials: &Credentials,
    ) -> Result<String, OciError> {
        // The realm comes from the registry's answer: a password or refresh token goes to
        // it only over TLS (or to this machine).
        if *credentials != Credentials::Anonymous {
            refuse_plain_http(realm, reference)?;
        }
        let scope = format!("repository:{}:{}", reference.repository, access.actions());
        let mut query = vec![("scope", scope.as_str())];
        if let Some(service) = service {
            query.push(("service", service));
        }
        let encoded: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        let (method, url, body, mut headers) = match credentials {
            // OAuth2 refresh-token grant (identity tokens from `docker login`).
            Credentials::IdentityToken(token) => (
                Method::POST,
                realm.to_owned(),
                Bytes::from(format!(
                    "grant_type=refresh_token&refresh_token={}&client_id=faas&{}",
                    percent_encode(token),
                    encoded.join("&")
                )),
                vec![(
                    header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded".to_owned(),
                )],
            ),
            _ => (
                Method::GET,
                format!(
                    "{realm}{}{}",
                    if realm.contains('?') { '&' } else { '?' },
                    encoded.join("&")
                ),
                Bytes::new(),
                Vec::new(),
            ),
        };
        if let Some(basic) = credentials.basic_header() {
            headers.push((header::AUTHORIZATION, basic));
        }
        let call = Call {
            method,
            url: &url,
            headers: &headers,
            body,
            limit: 64 * 1024,
        };
        let answer = self
            .raw(&call, None)
            .await
            .map_err(|why| OciError::Transport {
                registry: reference.registry.clone(),
                why: format!("token service {realm}: {why}"),
            })?;
        if !answer.status.is_success() {
            return Err(OciError::Unauthorized {
                registry: reference.registry.clone(),
                status: answer.status.as_u16(),
                message: format!("token service {realm}: {}", answer.message()),
                hint: login_hint(&reference.registry),
            });
        }
        let parsed: serde_json::Value =
            serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
        parsed
            .get("token")
            .or_else(|| parsed.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| OciError::Transport {
                registry: reference.registry.clone(),
                why: format!("token service {realm} answered without a token"),
            })
    }

    fn unauthorized(&self, reference: &Reference, response: &Response) -> OciError {
        OciError::Unauthorized {
            registry: reference.registry.clone(),
            status: response.status.as_u16(),
            message: response.message(),
            hint: login_hint(&reference.registry),
        }
    }

    /// One request and its redirects, mapped to registry errors.
    async fn exchange(
        &self,
        reference: &Reference,
        call: &Call<'_>,
        authorization: Option<&HeaderValue>,
    ) -> Result<Response, OciError> {
        let mut headers = call.headers.to_vec();
        if let Some(value) = authorization
            && let Ok(value) = value.to_str()
        {
            headers.push((header::AUTHORIZATION, value.to_owned()));
        }
        let with_auth = Call {
            method: call.method.clone(),
            url: call.url,
            headers: &headers,
            body: call.body.clone(),
            limit: call.limit,
        };
        self.raw(&with_auth, Some(reference))
            .await
            .map_err(|why| match why {
                RawError::TooLarge => OciError::TooLarge {
                    what: format!("the answer to {} {}", call.method, call.url),
                    limit: call.limit,
                },
                other => OciError::Transport {
                    registry: reference.registry.clone(),
                    why: other.to_string(),
                },
            })
    }

    /// The request itself. Redirects are followed for GET and HEAD; the Authorization header
    /// goes only to the registry's own host (a presigned S3 URL must not see it).
    async fn raw(
        &self,
        call: &Call<'_>,
        reference: Option<&Reference>,
    ) -> Result<Response, RawError> {
        let (method, headers, body, limit) = (&call.method, call.headers, &call.body, call.limit);
        let mut url = call.url.to_owned();
        let origin = authority_of(&url).to_owned();
        for _ in 0..=MAX_REDIRECTS {
            let mut builder = http::Request::builder().method(method.clone()).uri(&url);
            let same_host = authority_of(&url) == origin;
            for (name, value) in headers {
                if *name == header::AUTHORIZATION && !same_host {
                    continue;
                }
                builder = builder.header(name, value);
            }
            let request = builder
                .body(Full::new(body.clone()))
                .map_err(|e| RawError::Other(format!("invalid request {url}: {e}")))?;
            let response = tokio::time::timeout(self.timeout, self.client.request(request))
                .await
                .map_err(|_| {
                    RawError::Other(format!("no answer from {url} in {:?}", self.timeout))
                })?
                .map_err(|e| RawError::Other(format!("{url}: {}", chain(&e))))?;
            let status = response.status();
            if status.is_redirection()
                && (*method == Method::GET || *method == Method::HEAD)
                && let Some(location) = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
            {
                url = resolve(&url, location);
                tracing::debug!(registry = ?reference.map(|r| &r.registry), %url, "following a redirect");
                continue;
            }
            let headers = response.headers().clone();
            let collected = tokio::time::timeout(
                self.timeout,
                Limited::new(response.into_body(), limit as usize).collect(),
            )
            .await
            .map_err(|_| RawError::Other(format!("reading {url} took over {:?}", self.timeout)))?
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    RawError::TooLarge
                } else {
                    RawError::Other(format!("reading {url}: {e}"))
                }
            })?;
            return Ok(Response {
                status,
                headers,
                body: collected.to_bytes(),
            });
        }
        Err(RawError::Other(format!(
            "more than {MAX_REDIRECTS} redirects from {url}"
        )))
    }
}

#[derive(Debug, thiserror::Error)]
enum RawError {
    #[error("answer larger than the limit")]
    TooLarge,
    #[error("{0}")]
    Other(String),
}

/// Whether credentials may be sent to `url`: over https, or plain http to this machine
/// (`localhost`, 127.0.0.0/8, ::1: the tests' registries, `docker run registry` on a laptop).
/// Never over plain http elsewhere, where anyone on the path reads them, and where a
/// registry (or whoever answers for it) could name any realm.
pub(crate) fn may_carry_credentials(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return true;
    }
    let Some(rest) = lower.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !authority.contains('@') && crate::reference::authority_is_loopback(authority)
}

fn refuse_plain_http(url: &str, reference: &Reference) -> Result<(), OciError> {
    if may_carry_credentials(url) {
        return Ok(());
    }
    Err(OciError::Credentials {
        registry: reference.registry.clone(),
        why: format!(
            "not sending credentials to {}: only https (or a registry on this machine) \
             gets them",
            authority_of(url)
        ),
    })
}

/// `scheme://authority` of a URL, for comparing hosts.
fn authority_of(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
        .unwrap_or(url.len());
    &url[..end]
}

/// Resolves a `Location` against the URL it came from (absolute, or a path on the same host).
pub(crate) fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{}{location}", authority_of(base))
    } else {
        let dir = base.rsplit_once('/').map(|(dir, _)| dir).unwrap_or(base);
        format!("{dir}/{location}")
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error with its sources, on one line (hyper's own message alone says little).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// What to do when a registry refuses us.
fn login_hint(registry: &str) -> String {
    if registry.contains(".dkr.ecr.") && registry.ends_with(".amazonaws.com") {
        format!(
            "log in with `aws ecr get-login-password | docker login --username AWS --password-stdin {registry}`, \
             or set \"credHelpers\": {{\"{registry}\": \"ecr-login\"}} in ~/.docker/config.json"
        )
    } else {
        format!(
            "log in with `docker login {registry}` (credentials are read from ~/.docker/config.json or $DOCKER_CONFIG)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_only_over_tls_or_to_this_machine() {
        for ok in [
            "https://auth.example.com/token",
            "HTTPS://auth.example.com",
            "http://127.0.0.1:5000/token",
            "http://localhost:5000/token",
            "http://[::1]:5000/token",
        ] {
            assert!(may_carry_credentials(ok), "{ok}");
        }
        for refused in [
            "http://auth.example.com/token",
            "http://0.0.0.0:5000/token",
            "http://10.0.0.1/token",
            "http://localhost.example.com/token",
            "http://127.0.0.1@evil.example.com/token",
            "ftp://127.0.0.1/token",
            "auth.example.com/token",
        ] {
            assert!(!may_carry_credentials(refused), "{refused}");
        }
    }

    /// A registry's challenge names a plain-HTTP token realm: the password is not sent
    /// there. The "realm" is a listener on this machine reached as 0.0.0.0 (which Linux
    /// delivers to loopback, so no traffic can leave): an address that is not loopback by
    /// its name, which is all a token realm from the network gives us.
    #[tokio::test]
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    async fn a_basic_credential_is_never_sent_to_a_plain_http_realm() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let server = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = vec![0u8; 4096];
                let n = stream.read(&mut head).await.unwrap_or(0);
                let _ = seen_tx.send(String::from_utf8_lossy(&head[..n]).into_owned());
                let body = r#"{"token":"t"}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        let transport = Transport::new(None, Vec::new()).unwrap();
        let reference = Reference::parse("registry.example.com/fn/a:1").unwrap();
        let basic = Credentials::Basic {
            username: "ci".into(),
            password: "s3cret".into(),
        };
        let realm = format!("http://0.0.0.0:{port}/token");
        let result = transport
            .token(&reference, Access::Pull, &realm, None, &basic)
            .await;
        let error = result.expect_err("refused");
        assert!(
            error.to_string().contains("not sending credentials"),
            "{error}"
        );
        assert!(
            seen_rx.try_recv().is_err(),
            "the realm must not even be contacted"
        );
        // Anonymous token requests carry nothing secret: those may use plain HTTP.
        let anonymous = transport
            .token(
                &reference,
                Access::Pull,
                &realm,
                None,
                &Credentials::Anonymous,
            )
            .await;
        assert_eq!(anonymous.ok().as_deref(), Some("t"));
        let request = seen_rx.recv().await.unwrap();
        assert!(
            !request.to_ascii_lowercase().contains("authorization"),
            "{request}"
        );
        server.abort();
    }

    #[test]
    fn locations_resolve_against_their_request() {
        let base = "http://127.0.0.1:5000/v2/a/blobs/uploads/";
        assert_eq!(
            resolve(base, "/v2/a/blobs/uploads/u1?_state=x"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            resolve(base, "https://s3.example.com/b?sig=1"),
            "https://s3.example.com/b?sig=1"
        );
        assert_eq!(
            authority_of("https://s3.example.com/b?sig=1"),
            "https://s3.example.com"
        );
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
