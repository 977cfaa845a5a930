//! Functions' secrets: the `spec.env` entries whose value comes from somewhere else
//! (`valueFrom`), read by the host, kept in memory, refreshed, and given to the function at
//! each invocation (WASM, through [`faas_invoke::InvocationEnv`]) or when its process starts
//! (containers under `faas up`).
//!
//! Where each source is read:
//! - `secretKeyRef`: locally the file `<dir>/<secret>/<key>` of `faas up --secrets DIR`
//!   (exact contents, as a mounted Secret's file); in a runtime pool the Secret through the
//!   Kubernetes API, which the pool's Role allows for its members' Secrets only
//!   (`controller/src/render/pool_access.rs`).
//! - `ssmParameter` (decrypted) and `secretsManager`: locally with the developer's own AWS
//!   credentials; in a pool with the function's own role's (its identity, `identity.rs`),
//!   never the pod's: one team's function reads what its role may read.
//!
//! A value is never logged, never put in an error, a status or an API answer: errors name
//! the reference (`SSM parameter /shop/db-password`), and `Debug` of the state shows names.
//! A source that fails keeps the last value it gave (a refresh that fails does not take a
//! working secret away) and degrades the function, saying which and why; one never read is
//! left out of the environment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_api::{Function, SecretRef};
use faas_identity::FunctionIdentity;
use faas_sqs::Clients;
use tokio::sync::watch;

/// How often a value is read again, by source: a local file is cheap and edited while one
/// works; the Kubernetes API and AWS are asked less often (AWS bills and throttles calls).
fn ttl(source: &SecretRef, local: bool) -> Duration {
    match source {
        SecretRef::Kubernetes(_) if local => Duration::from_secs(2),
        SecretRef::Kubernetes(_) => Duration::from_secs(60),
        SecretRef::Ssm(_) | SecretRef::SecretsManager(_) => Duration::from_secs(300),
    }
}
/// How long a loading function waits for its first values (its first invocation should
/// have them).
const FIRST_READ_WAIT: Duration = Duration::from_secs(5);
/// Retries of a failed read: from this, doubling, up to the source's TTL.
const RETRY_FIRST: Duration = Duration::from_secs(1);

/// Where this host reads Kubernetes Secrets from.
enum Kube {
    /// `faas up --secrets DIR` (none given: every `secretKeyRef` fails, saying so).
    Folder(Option<PathBuf>),
    /// The API, as the pool pod's ServiceAccount.
    Api(kube::Client),
}

/// The secret readers of this host.
pub struct Secrets {
    kube: Kube,
    clients: Arc<Clients>,
    /// The AWS configuration without credentials that each function's role is put on: built
    /// once (it loads the region chain and an HTTPS client with its CA roots).
    unsigned: tokio::sync::OnceCell<aws_config::SdkConfig>,
}

impl Secrets {
    /// Local mode: Secrets from `dir`, AWS with this process's own credentials.
    pub fn local(dir: Option<PathBuf>, clients: Arc<Clients>) -> Self {
        Secrets {
            kube: Kube::Folder(dir),
            clients,
            unsigned: tokio::sync::OnceCell::new(),
        }
    }

    /// A runtime pool: Secrets through `client`, AWS with each function's own role.
    pub fn pool(client: kube::Client, clients: Arc<Clients>) -> Self {
        Secrets {
            kube: Kube::Api(client),
            clients,
            unsigned: tokio::sync::OnceCell::new(),
        }
    }

    /// The secrets of `function`, `None` when it has none; reading starts now and the first
    /// values are waited for (briefly). `identity` is the function's role, for AWS sources
    /// in a pool.
    pub async fn of(
        self: &Arc<Self>,
        function: &Function,
        identity: Option<Arc<FunctionIdentity>>,
    ) -> Option<Arc<FunctionSecrets>> {
        let wanted: Vec<(String, SecretRef)> = function
            .spec
            .env
            .secrets()
            .map(|(name, source)| (name.to_owned(), source))
            .collect();
        if wanted.is_empty() {
            return None;
        }
        let namespace = function.metadata.namespace.clone().unwrap_or_default();
        let reader = Reader {
            secrets: Arc::clone(self),
            namespace,
            identity,
        };
        let (publish, state) = watch::channel(State::default());
        let task = tokio::spawn(refresh(reader, wanted, publish));
        let secrets = Arc::new(FunctionSecrets { state, task });
        secrets.settled(FIRST_READ_WAIT).await;
        Some(secrets)
    }

    fn is_local(&self) -> bool {
        matches!(self.kube, Kube::Folder(_))
    }

    /// One secret of a function of `namespace` read now (a webhook's token, a notify URL),
    /// and how long the value may be kept before it is read again (the same rule as the
    /// environment's secrets). The error names the source and why, never a value.
    pub async fn read_one(
        self: &Arc<Self>,
        namespace: &str,
        source: &SecretRef,
    ) -> Result<(String, Duration), String> {
        let reader = Reader {
            secrets: Arc::clone(self),
            namespace: namespace.to_owned(),
            identity: None,
        };
        let value = reader
            .read(source)
            .await
            .map_err(|why| format!("{source}: {why}"))?;
        Ok((value, ttl(source, self.is_local())))
    }
}

/// The scheduler's reader of secrets (notify URLs from `urlFrom`): this host's sources,
/// looked up when a notification is sent (the function source sets them after the
/// scheduler starts).
pub struct SchedulerSecrets(pub std::sync::Weak<crate::platform::Platform>);

impl faas_schedule::notify::SecretReader for SchedulerSecrets {
    fn read<'a>(
        &'a self,
        source: &'a SecretRef,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            let platform = self.0.upgrade().ok_or("the platform is stopping")?;
            let secrets = platform
                .secrets
                .get()
                .ok_or_else(|| format!("{source}: this host reads no secrets"))?;
            let (value, _) = secrets.read_one("", source).await?;
            Ok(value)
        })
    }
}

/// What was read, by variable, and what failed.
#[derive(Clone, Default)]
struct State {
    /// (variable, value), in `spec.env` order.
    values: Vec<(String, String)>,
    /// One line per source that failed last time, naming it, never a value.
    errors: Vec<String>,
    /// Every source was tried at least once.
    settled: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field(
                "variables",
                &self.values.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("errors", &self.errors)
            .finish()
    }
}

/// One function's secrets, refreshed in the background while it lives.
pub struct FunctionSecrets {
    state: watch::Receiver<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FunctionSecrets {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FunctionSecrets {
    /// The variables as of now (a container's environment at its start).
    pub fn values(&self) -> Vec<(String, String)> {
        self.state.borrow().values.clone()
    }

    async fn settled(&self, limit: Duration) {
        let mut state = self.state.clone();
        let _ = tokio::time::timeout(limit, state.wait_for(|s| s.settled)).await;
    }
}

impl faas_invoke::InvocationEnv for FunctionSecrets {
    fn each(&self, put: &mut dyn FnMut(&str, &str)) {
        for (name, value) in &self.state.borrow().values {
            put(name, value);
        }
    }

    fn problem(&self) -> Option<faas_invoke::Degradation> {
        let state = self.state.borrow();
        (!state.errors.is_empty())
            .then(|| faas_invoke::Degradation::secret_unavailable(state.errors.join("; ")))
    }
}

/// Reads one function's sources.
struct Reader {
    secrets: Arc<Secrets>,
    namespace: String,
    identity: Option<Arc<FunctionIdentity>>,
}

async fn refresh(reader: Reader, wanted: Vec<(String, SecretRef)>, publish: watch::Sender<State>) {
    let local = reader.secrets.is_local();
    // Per source: the value last read, when to read next, and its retry delay.
    let mut known: HashMap<usize, String> = HashMap::new();
    let mut due: Vec<Instant> = vec![Instant::now(); wanted.len()];
    let mut retry: Vec<Duration> = vec![RETRY_FIRST; wanted.len()];
    let mut errors: Vec<Option<String>> = vec![None; wanted.len()];
    loop {
        let now = Instant::now();
        for (i, (_, source)) in wanted.iter().enumerate() {
            if due[i] > now {
                continue;
            }
            match reader.read(source).await {
                Ok(value) => {
                    known.insert(i, value);
                    errors[i] = None;
                    retry[i] = RETRY_FIRST;
                    due[i] = Instant::now() + ttl(source, local);
                }
                Err(why) => {
                    tracing::warn!(source = %source, error = %why, "secret not read");
                    errors[i] = Some(format!("{source}: {why}"));
                    due[i] = Instant::now() + retry[i];
                    retry[i] = (retry[i] * 2).min(ttl(source, local));
                }
            }
        }
        let state = State {
            values: wanted
                .iter()
                .enumerate()
                .filter_map(|(i, (name, _))| Some((name.clone(), known.get(&i)?.clone())))
                .collect(),
            errors: errors.iter().flatten().cloned().collect(),
            settled: true,
        };
        publish.send_replace(state);
        let next = due.iter().min().copied().unwrap_or_else(Instant::now);
        tokio::select! {
            () = tokio::time::sleep_until(next.into()) => {}
            () = publish.closed() => return,
        }
    }
}

impl Reader {
    async fn read(&self, source: &SecretRef) -> Result<String, String> {
        match source {
            SecretRef::Kubernetes(r) => self.kubernetes(&r.name, &r.key).await,
            SecretRef::Ssm(r) => {
                let config = self.aws().await?;
                let answer = aws_sdk_ssm::Client::new(&config)
                    .get_parameter()
                    .name(&r.name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| aws_error(&e))?;
                answer
                    .parameter()
                    .and_then(|p| p.value())
                    .map(str::to_owned)
                    .ok_or_else(|| "the parameter has no value".to_owned())
            }
            SecretRef::SecretsManager(r) => {
                let config = self.aws().await?;
                let answer = aws_sdk_secretsmanager::Client::new(&config)
                    .get_secret_value()
                    .secret_id(&r.secret_id)
                    .send()
                    .await
                    .map_err(|e| aws_error(&e))?;
                let text = answer
                    .secret_string()
                    .ok_or("the secret has no string value (a binary secret)")?;
                match &r.json_key {
                    None => Ok(text.to_owned()),
                    Some(key) => json_key(text, key),
                }
            }
        }
    }

    async fn kubernetes(&self, name: &str, key: &str) -> Result<String, String> {
        let bytes = match &self.secrets.kube {
            Kube::Folder(None) => {
                return Err(
                    "no secrets folder: start faas up with --secrets DIR (one file \
                     per DIR/<secret>/<key>)"
                        .to_owned(),
                );
            }
            // Names and keys are validated: no separators, never `.` or `..`.
            Kube::Folder(Some(dir)) => {
                let path = dir.join(name).join(key);
                tokio::fs::read(&path)
                    .await
                    .map_err(|e| format!("reading {}: {e}", path.display()))?
            }
            Kube::Api(client) => {
                let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
                    kube::Api::namespaced(client.clone(), &self.namespace);
                let secret = secrets.get(name).await.map_err(|e| match e {
                    kube::Error::Api(s) if s.code == 404 => {
                        format!("no Secret {name} in namespace {}", self.namespace)
                    }
                    kube::Error::Api(s) if s.code == 403 => format!(
                        "this pool may not read it (is the Function a member of the pool, \
                         and is the Secret named in its spec.env?): {}",
                        s.message
                    ),
                    other => other.to_string(),
                })?;
                secret
                    .data
                    .and_then(|mut d| d.remove(key))
                    .map(|b| b.0)
                    .ok_or_else(|| format!("Secret {name} has no key {key}"))?
            }
        };
        String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
    }

    /// The AWS configuration to read with: locally this process's own credentials; in a
    /// pool the function's role's, never the pod's.
    async fn aws(&self) -> Result<aws_config::SdkConfig, String> {
        if self.secrets.is_local() {
            return self
                .secrets
                .clients
                .sdk_config()
                .await
                .map_err(|e| e.to_string());
        }
        let identity = self.identity.as_ref().ok_or(
            "the function has no spec.iam.roleArn: in a cluster, SSM and Secrets Manager are \
             read with the function's own role",
        )?;
        identity.settled(FIRST_READ_WAIT).await;
        let credentials = identity.current().ok_or_else(|| {
            let status = identity.status();
            format!(
                "no credentials of role {} to read it with{}",
                status.role_arn,
                status.error.map(|e| format!(": {e}")).unwrap_or_default()
            )
        })?;
        let base = self
            .secrets
            .unsigned
            .get_or_init(|| self.secrets.clients.unsigned_sdk_config())
            .await;
        Ok(base
            .clone()
            .into_builder()
            .credentials_provider(aws_sdk_ssm::config::SharedCredentialsProvider::new(
                aws_sdk_ssm::config::Credentials::new(
                    credentials.access_key_id.clone(),
                    credentials.secret_access_key.clone(),
                    Some(credentials.session_token.clone()),
                    Some(credentials.expiration),
                    "faas-function-role",
                ),
            ))
            .build())
    }
}

/// The text of the AWS error `e`, with its code (`ParameterNotFound`, `AccessDeniedException`).
fn aws_error<E, R>(e: &aws_sdk_ssm::error::SdkError<E, R>) -> String
where
    E: aws_sdk_ssm::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or_default()
        ),
        None => aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
    }
}

/// `key` of the JSON object `text`, as text (a string as itself, anything else as JSON).
/// Errors never quote the secret.
fn json_key(text: &str, key: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| format!("jsonKey {key}: the secret string is not JSON"))?;
    match value.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None if value.is_object() => Err(format!("jsonKey {key}: no such key in the secret")),
        None => Err(format!(
            "jsonKey {key}: the secret string is not a JSON object"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_key_is_taken_and_errors_never_quote_the_secret() {
        let secret = r#"{"password": "hunter2", "port": 5432}"#;
        assert_eq!(json_key(secret, "password").as_deref(), Ok("hunter2"));
        assert_eq!(json_key(secret, "port").as_deref(), Ok("5432"));
        let missing = json_key(secret, "user").expect_err("no such key");
        assert!(!missing.contains("hunter2"), "{missing}");
        let not_json = json_key("hunter2", "password").expect_err("not JSON");
        assert!(!not_json.contains("hunter2"), "{not_json}");
        let not_object = json_key(r#""hunter2""#, "password").expect_err("not an object");
        assert!(!not_object.contains("hunter2"), "{not_object}");
    }

    #[test]
    fn the_state_debug_names_variables_not_values() {
        let state = State {
            values: vec![("DB_PASSWORD".into(), "hunter2".into())],
            errors: vec![],
            settled: true,
        };
        let shown = format!("{state:?}");
        assert!(
            shown.contains("DB_PASSWORD") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
