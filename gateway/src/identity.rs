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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

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

/// The identities of the functions loaded here.
pub struct Identities {
    how: How,
    clients: Arc<Clients>,
    sts: tokio::sync::OnceCell<Result<aws_sdk_sts::Client, String>>,
    live: Mutex<HashMap<(String, String, String), Weak<FunctionIdentity>>>,
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
        }
    }

    /// The identity of `function`, `None` without a role. Waits (briefly) for its first
    /// credentials when it is new.
    pub async fn of(&self, function: &Function) -> Option<Arc<FunctionIdentity>> {
        let role_arn = function.spec.iam.as_ref()?.role_arn.clone();
        let namespace = function.metadata.namespace.clone().unwrap_or_default();
        let name = function.metadata.name.clone().unwrap_or_default();
        let key = (namespace.clone(), name.clone(), role_arn.clone());
        if let Some(live) = self.lock().get(&key).and_then(Weak::upgrade) {
            return Some(live);
        }
        let source = self.source(&namespace, &name, role_arn).await;
        let identity = Arc::new(FunctionIdentity::start(source));
        {
            let mut live = self.lock();
            live.retain(|_, weak| weak.strong_count() > 0);
            live.insert(key, Arc::downgrade(&identity));
        }
        identity.settled(FIRST_FETCH_WAIT).await;
        Some(identity)
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

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String, String), Weak<FunctionIdentity>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
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
