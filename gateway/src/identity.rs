//! Functions' own AWS identities for the WASM executor (`faas-identity`): a function with
//! `spec.iam.roleArn` gets its role's temporary credentials at each invocation, one identity
//! per function and role, shared by the function's loaded versions and renewed while any of
//! them is loaded.
//!
//! Where the credentials come from depends on the host:
//! - **Local** (`faas up`, or a pool fed from a folder): STS `AssumeRole` into the role with
//!   this process's own credentials (the developer's chain under the platform's policy: never
//!   instance metadata unless allowed), so a function is tried with the permissions it will
//!   have in production. `AWS_ENDPOINT_URL_STS` points STS elsewhere (tests: moto).
//! - **Pool** (a runtime pool pod): a token of the function's ServiceAccount (`fn-<name>`,
//!   TokenRequest, audience `sts.amazonaws.com`) exchanged with STS
//!   `AssumeRoleWithWebIdentity`: the trust relationship IRSA uses, so a function's role and
//!   its trust policy are the same whether it runs in its own pod or a shared one. The pool's
//!   Role may create tokens only for its member functions' ServiceAccounts.
//!
//! A function's SQS triggers read its queues with the same identity its guest holds
//! ([`Identities::queue_clients`]), as Lambda's event source mapping uses the function's
//! execution role: so a pool pod never needs a role of its own for its members' queues.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};

use faas_api::Function;
use faas_identity::{
    AssumeRole, BoxFuture, FunctionIdentity, RoleSource, TokenSource, Unavailable, WebIdentity,
    session_name,
};
use faas_sqs::Clients;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;

/// How long a ServiceAccount token asked for lasts (only to be exchanged at once).
const TOKEN_SECONDS: i64 = 600;
/// How long a loading function waits for its first credentials: its first invocation should
/// not run without them for want of an STS round trip.
const FIRST_FETCH_WAIT: Duration = Duration::from_secs(5);

/// How this host gets functions' credentials.
enum How {
    Local,
    Pool { client: kube::Client },
}

/// A function's identity: (namespace, name, role ARN).
type Key = (String, String, String);

/// The identities of the functions loaded here.
pub struct Identities {
    how: How,
    clients: Arc<Clients>,
    sts: tokio::sync::OnceCell<Result<aws_sdk_sts::Client, String>>,
    live: Mutex<HashMap<Key, Weak<FunctionIdentity>>>,
    /// SQS clients signing as each identity, kept while a poller holds them.
    queues: Mutex<HashMap<Key, Weak<Clients>>>,
}

impl Identities {
    /// Roles assumed with this process's own credentials, from `clients`' configuration.
    pub fn local(clients: Arc<Clients>) -> Self {
        Self::new(How::Local, clients)
    }

    /// Roles assumed with the function's ServiceAccount tokens, created through `client`.
    pub fn pool(client: kube::Client, clients: Arc<Clients>) -> Self {
        Self::new(How::Pool { client }, clients)
    }

    fn new(how: How, clients: Arc<Clients>) -> Self {
        Identities {
            how,
            clients,
            sts: tokio::sync::OnceCell::new(),
            live: Mutex::new(HashMap::new()),
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// SQS clients that sign with `function`'s own role (`None` without one): the same `Arc`
    /// for as long as a poller holds it, so a redeploy that keeps the role keeps the poller.
    /// The identity is started at the first call the clients make, if no guest started it.
    pub fn queue_clients(self: &Arc<Self>, function: &Function) -> Option<Arc<Clients>> {
        let key = key_of(function)?;
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(clients) = queues.get(&key).and_then(Weak::upgrade) {
            return Some(clients);
        }
        queues.retain(|_, weak| weak.strong_count() > 0);
        let clients = Arc::new(Clients::with_credentials(SharedCredentialsProvider::new(
            RoleCredentials {
                identities: Arc::downgrade(self),
                key: key.clone(),
                held: tokio::sync::OnceCell::new(),
            },
        )));
        queues.insert(key, Arc::downgrade(&clients));
        Some(clients)
    }

    /// The identity of `function`, `None` without a role. Waits (briefly) for its first
    /// credentials when it is new.
    pub async fn of(&self, function: &Function) -> Option<Arc<FunctionIdentity>> {
        Some(self.identity(key_of(function)?).await)
    }

    async fn identity(&self, key: Key) -> Arc<FunctionIdentity> {
        if let Some(live) = self.lock().get(&key).and_then(Weak::upgrade) {
            return live;
        }
        let (namespace, name, role_arn) = key.clone();
        let source = self.source(&namespace, &name, role_arn).await;
        let identity = Arc::new(FunctionIdentity::start(source));
        {
            let mut live = self.lock();
            live.retain(|_, weak| weak.strong_count() > 0);
            live.insert(key, Arc::downgrade(&identity));
        }
        identity.settled(FIRST_FETCH_WAIT).await;
        identity
    }

    async fn source(&self, namespace: &str, name: &str, role_arn: String) -> Arc<dyn RoleSource> {
        let session = session_name(Some(namespace).filter(|n| !n.is_empty()), name);
        let sts = match self.sts().await {
            Ok(sts) => sts,
            Err(why) => return Arc::new(Unavailable::new(role_arn, why)),
        };
        match &self.how {
            How::Local => Arc::new(AssumeRole::new(sts, role_arn, session)),
            How::Pool { client } => Arc::new(WebIdentity::new(
                sts,
                role_arn,
                session,
                Arc::new(ServiceAccountToken {
                    api: kube::Api::namespaced(client.clone(), namespace),
                    name: faas_api::contract::function_object(name),
                }),
            )),
        }
    }

    async fn sts(&self) -> Result<aws_sdk_sts::Client, String> {
        self.sts
            .get_or_init(|| async {
                let config = match self.how {
                    How::Local => self.clients.sdk_config().await.map_err(|e| {
                        format!("no AWS credentials here to assume the role with: {e}")
                    })?,
                    // The exchange is not signed: the token is the proof, and the pool pod
                    // has no identity of its own to sign with.
                    How::Pool { .. } => self.clients.unsigned_sdk_config().await,
                };
                Ok(aws_sdk_sts::Client::new(&config))
            })
            .await
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Weak<FunctionIdentity>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn key_of(function: &Function) -> Option<Key> {
    let role_arn = function.spec.iam.as_ref()?.role_arn.clone();
    let namespace = function.metadata.namespace.clone().unwrap_or_default();
    let name = function.metadata.name.clone().unwrap_or_default();
    Some((namespace, name, role_arn))
}

/// The AWS SDK's view of a function's identity, for its SQS clients: the credentials its
/// guest gets now, or why there are none (the SDK then fails the call, and the trigger
/// reports the error).
struct RoleCredentials {
    identities: Weak<Identities>,
    key: Key,
    /// The identity, once a call asked for it: held, so it is renewed while polling goes on.
    held: tokio::sync::OnceCell<Arc<FunctionIdentity>>,
}

impl std::fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleCredentials")
            .field("role_arn", &self.key.2)
            .finish()
    }
}

impl ProvideCredentials for RoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let identity = self
                .held
                .get_or_try_init(|| async {
                    let identities = self.identities.upgrade().ok_or_else(|| {
                        CredentialsError::not_loaded("the platform is shutting down")
                    })?;
                    Ok::<_, CredentialsError>(identities.identity(self.key.clone()).await)
                })
                .await?;
            let Some(now) = identity.current() else {
                return Err(CredentialsError::not_loaded(identity.why_none()));
            };
            Ok(Credentials::new(
                now.access_key_id.clone(),
                now.secret_access_key.clone(),
                Some(now.session_token.clone()),
                Some(now.expiration),
                "FunctionRole",
            ))
        })
    }
}

/// A token of a function's ServiceAccount, for STS.
struct ServiceAccountToken {
    api: kube::Api<ServiceAccount>,
    name: String,
}

impl TokenSource for ServiceAccountToken {
    fn token(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let request = TokenRequest {
                spec: Some(TokenRequestSpec {
                    audiences: Some(vec![faas_api::contract::TOKEN_AUDIENCE.to_owned()]),
                    expiration_seconds: Some(TOKEN_SECONDS),
                    ..TokenRequestSpec::default()
                }),
                ..TokenRequest::default()
            };
            self.api
                .create_token_request(&self.name, &kube::api::PostParams::default(), &request)
                .await
                .map_err(|e| format!("TokenRequest for ServiceAccount {}: {e}", self.name))
                .and_then(|answer| {
                    answer
                        .status
                        .and_then(|s| s.token)
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| format!("TokenRequest for {} gave no token", self.name))
                })
        })
    }
}
