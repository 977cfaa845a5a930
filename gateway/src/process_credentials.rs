//! The own AWS identities of container functions under `faas up`: a process function with
//! `spec.iam.roleArn` gets its role's credentials the way an ECS task or an EKS Pod Identity
//! pod gets its own. `AWS_CONTAINER_CREDENTIALS_FULL_URI` names [`PATH`] on this gateway's
//! loopback address and `AWS_CONTAINER_AUTHORIZATION_TOKEN` a token of that process alone;
//! every AWS SDK (boto3, JavaScript, Rust, Java, Go) reads them there and renews them before
//! they expire by itself, so a process that runs for hours keeps working credentials, which
//! variables fixed at its start could not give.
//!
//! The credentials are those of the function's [`FunctionIdentity`] (`AssumeRole` with the
//! developer's own chain, the same identity its SQS triggers read with). A token names one
//! function's identity and dies with the loaded version that holds it; a request from
//! anywhere but loopback, without a token, or with another's, gets none.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use faas_api::Function;
use faas_identity::FunctionIdentity;
use faas_invoke::{CallContext, Degradation, InvocationEnv, InvokeError, Invoker, ResponseBody};
use http::{HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

use crate::reply::json_error;

/// Where processes fetch their credentials (`GET`, header `Authorization: <token>`).
pub const PATH: &str = "/system/credentials";

/// The tokens given out, each naming one identity.
#[derive(Default)]
pub struct Grants {
    by_token: Mutex<HashMap<String, Weak<FunctionIdentity>>>,
}

/// One process's right to its function's credentials: held by the loaded version (so the
/// identity keeps being renewed), withdrawn when it is dropped.
pub struct Grant {
    grants: Weak<Grants>,
    token: String,
    identity: Arc<FunctionIdentity>,
}

impl Drop for Grant {
    fn drop(&mut self) {
        if let Some(grants) = self.grants.upgrade() {
            grants.lock().remove(&self.token);
        }
    }
}

impl Grant {
    /// The identity it grants.
    pub fn identity(&self) -> &Arc<FunctionIdentity> {
        &self.identity
    }

    /// The variables that point the process's AWS SDK at its credentials, served by the
    /// gateway listening on `listener`. Static keys and profiles are turned off (blank, or an
    /// empty file): the SDKs read them before the container endpoint, and neither the
    /// developer's profile nor keys in `spec.env` may stand in for the function's role, as
    /// the platform's `AWS_*` win for a WASM guest. The region is the role's unless
    /// `spec.env` names one.
    pub fn env(&self, function: &Function, listener: Option<SocketAddr>) -> Vec<(String, String)> {
        let mut env: Vec<(&str, String)> = [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ]
        .into_iter()
        .map(|k| (k, String::new()))
        .chain([
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", self.token.clone()),
        ])
        .collect();
        if let Some(listener) = listener {
            let url = format!("http://{}{PATH}", crate::host::local_address(listener));
            env.push(("AWS_CONTAINER_CREDENTIALS_FULL_URI", url));
        }
        // Both names, as Lambda sets them (boto3 reads only the second).
        let spec = &function.spec.env;
        let region = spec
            .get("AWS_REGION")
            .map(str::to_owned)
            .or_else(|| self.identity.current().and_then(|c| c.region.clone()));
        if let Some(region) = region {
            for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
                if !spec.contains_key(name) {
                    env.push((name, region.clone()));
                }
            }
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

impl Grants {
    /// A new token for `identity`.
    pub fn grant(self: &Arc<Self>, identity: Arc<FunctionIdentity>) -> Result<Grant, String> {
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| format!("no randomness for a credentials token: {e}"))?;
        let token = hex::encode(bytes);
        self.lock().insert(token.clone(), Arc::downgrade(&identity));
        Ok(Grant {
            grants: Arc::downgrade(self),
            token,
            identity,
        })
    }

    /// Answers a process asking for its credentials, as the ECS / EKS Pod Identity
    /// credential endpoints do.
    pub fn serve(
        &self,
        remote: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> http::Response<ResponseBody> {
        if !remote.is_some_and(|r| r.ip().to_canonical().is_loopback()) {
            return json_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "function credentials are served to processes on this machine only",
            );
        }
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let identity = self.find(token);
        let Some(identity) = identity else {
            return json_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "no function's credentials for this authorization token",
            );
        };
        let Some(credentials) = identity.current() else {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "CredentialsUnavailable",
                &identity.why_none(),
            );
        };
        let expiration = jiff::Timestamp::try_from(credentials.expiration)
            .ok()
            .and_then(|t| t.round(jiff::Unit::Second).ok())
            .map(|t| t.to_string())
            .unwrap_or_default();
        let body = serde_json::json!({
            "AccessKeyId": credentials.access_key_id,
            "SecretAccessKey": credentials.secret_access_key,
            "Token": credentials.session_token,
            "Expiration": expiration,
            "RoleArn": identity.status().role_arn,
        });
        crate::reply::json_response(StatusCode::OK, &body)
    }

    /// The identity `token` names, compared in constant time (a token is a secret).
    fn find(&self, token: &str) -> Option<Arc<FunctionIdentity>> {
        let grants = self.lock();
        let mut found = None;
        for (known, identity) in grants.iter() {
            if bool::from(known.as_bytes().ct_eq(token.as_bytes())) {
                found = identity.upgrade();
            }
        }
        found
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<FunctionIdentity>>> {
        self.by_token.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A process function that holds a [`Grant`]: served by `inner`, degraded as its identity is.
pub struct WithIdentity {
    pub inner: Arc<dyn Invoker>,
    pub grant: Grant,
}

impl Invoker for WithIdentity {
    fn invoke(
        &self,
        ctx: CallContext,
        request: http::Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, InvokeError>> + Send + '_>>
    {
        self.inner.invoke(ctx, request)
    }

    fn status(&self) -> Option<serde_json::Value> {
        self.inner.status()
    }

    fn readiness(&self) -> Result<(), String> {
        self.inner.readiness()
    }

    fn degraded(&self) -> Option<Degradation> {
        self.inner
            .degraded()
            .or_else(|| InvocationEnv::problem(self.grant.identity.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_identity::{AwsCredentials, BoxFuture, IdentityError, RoleSource, Unavailable};
    use http_body_util::BodyExt;
    use std::time::{Duration, SystemTime};

    const ROLE: &str = "arn:aws:iam::123456789012:role/team-a/orders";

    struct Fixed;

    impl RoleSource for Fixed {
        fn role_arn(&self) -> &str {
            ROLE
        }
        fn fetch(&self) -> BoxFuture<'_, Result<AwsCredentials, IdentityError>> {
            Box::pin(async {
                Ok(AwsCredentials {
                    access_key_id: "ASIAORDERS".into(),
                    secret_access_key: "orders-secret".into(),
                    session_token: "orders-token".into(),
                    expiration: SystemTime::now() + Duration::from_secs(3600),
                    region: Some("eu-west-3".into()),
                })
            })
        }
    }

    async fn identity(source: Arc<dyn RoleSource>) -> Arc<FunctionIdentity> {
        let identity = Arc::new(FunctionIdentity::start(source));
        identity.settled(Duration::from_secs(5)).await;
        identity
    }

    async fn ask(grants: &Grants, from: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert(
                http::header::AUTHORIZATION,
                token.parse().expect("a header"),
            );
        }
        let response = grants.serve(Some(from.parse().expect("an address")), &headers);
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn function(env: &str) -> Function {
        serde_yaml::from_str(&format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: orders}}\n\
             spec:\n  runtime:\n    container: {{command: [x]}}\n  env: {{{env}}}\n"
        ))
        .expect("a manifest")
    }

    #[tokio::test]
    async fn a_token_gets_its_own_functions_credentials_from_loopback_only() {
        let grants = Arc::new(Grants::default());
        let orders = grants
            .grant(identity(Arc::new(Fixed)).await)
            .expect("a grant");
        let (status, body) = ask(&grants, "127.0.0.1:5000", Some(&orders.token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["AccessKeyId"], "ASIAORDERS");
        assert_eq!(json["Token"], "orders-token");
        assert_eq!(json["RoleArn"], ROLE);
        // RFC 3339 in UTC, whole seconds, as the SDKs parse it.
        let expiration = json["Expiration"].as_str().expect("an expiration");
        assert!(
            expiration.ends_with('Z') && !expiration.contains('.'),
            "{expiration}"
        );
        assert_eq!(
            ask(&grants, "[::1]:5000", Some(&orders.token)).await.0,
            StatusCode::OK
        );

        for (from, token) in [
            ("192.0.2.7:5000", Some(orders.token.as_str())),
            ("127.0.0.1:5000", None),
            ("127.0.0.1:5000", Some("0123")),
            ("127.0.0.1:5000", Some(&orders.token[..63])),
        ] {
            let (status, body) = ask(&grants, from, token).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{from} {token:?}: {body}");
            assert!(!body.contains("orders-secret"), "{body}");
        }
        // The version that held it is gone: so is its token.
        let token = orders.token.clone();
        drop(orders);
        assert_eq!(
            ask(&grants, "127.0.0.1:5000", Some(&token)).await.0,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn a_role_that_cannot_be_assumed_is_a_503_that_says_why() {
        let grants = Arc::new(Grants::default());
        let source = Unavailable::new(ROLE.into(), "no AWS credentials here".into());
        let grant = grants
            .grant(identity(Arc::new(source)).await)
            .expect("a grant");
        let (status, body) = ask(&grants, "127.0.0.1:5000", Some(&grant.token)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains(ROLE) && body.contains("no AWS credentials here"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn the_process_environment_points_at_the_endpoint_and_nowhere_else() {
        let grants = Arc::new(Grants::default());
        let grant = grants
            .grant(identity(Arc::new(Fixed)).await)
            .expect("a grant");
        let env: HashMap<String, String> = grant
            .env(
                &function("AWS_ACCESS_KEY_ID: static"),
                Some("0.0.0.0:8080".parse().expect("an address")),
            )
            .into_iter()
            .collect();
        assert_eq!(
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
            "http://127.0.0.1:8080/system/credentials"
        );
        assert_eq!(env["AWS_CONTAINER_AUTHORIZATION_TOKEN"].len(), 64);
        // After spec.env, so the role wins over keys written there and over profiles.
        assert_eq!(env["AWS_ACCESS_KEY_ID"], "");
        assert_eq!(env["AWS_SHARED_CREDENTIALS_FILE"], "/dev/null");
        assert_eq!(env["AWS_REGION"], "eu-west-3");
        assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-3");
        let own_region: HashMap<String, String> = grant
            .env(
                &function("AWS_REGION: us-west-2"),
                Some("[::]:8080".parse().expect("an address")),
            )
            .into_iter()
            .collect();
        assert_eq!(
            own_region["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
            "http://[::1]:8080/system/credentials"
        );
        assert!(!own_region.contains_key("AWS_REGION"), "spec.env's stays");
        assert_eq!(own_region["AWS_DEFAULT_REGION"], "us-west-2");
        assert_ne!(
            grants
                .grant(identity(Arc::new(Fixed)).await)
                .expect("a grant")
                .token,
            grant.token,
            "one token per process"
        );
    }
}
