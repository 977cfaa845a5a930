//! ECR logins of pool pods with their own IAM role (IRSA, Pod Identity): `GetAuthorizationToken`
//! through the AWS SDK, under the platform's credential policy (the node's role only when
//! `FAAS_ALLOW_IMDS_CREDENTIALS` allows it, see `faas_sqs::aws_credentials`), each token kept
//! until shortly before it expires (ECR's last 12 hours).
//!
//! It is built into the pod's registry client as docker's `ecr-login` credential helper
//! ([`faas_oci::auth::ECR_HELPER`]): ECR hosts the docker config says nothing about, and hosts it
//! maps to `ecr-login` (a pull-through proxy in front of ECR), log in this way, and no helper
//! binary has to ship in the runtime image.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_ecr::error::DisplayErrorContext;
use base64::Engine as _;
use faas_oci::OciError;
use faas_oci::auth::{Credentials, Helper};

/// A token is renewed this long before ECR says it expires (a pull may take a while).
const RENEW_BEFORE_SECS: i64 = 300;

/// The `ecr-login` helper of one process.
pub struct EcrLogin {
    clients: faas_sqs::Clients,
    /// Tokens by registry host: (user, password, expiry in Unix seconds).
    tokens: Mutex<HashMap<String, (String, String, i64)>>,
}

impl EcrLogin {
    /// With the environment's AWS configuration (the pod's role), loaded on first use.
    pub fn from_env() -> Self {
        Self::with_clients(faas_sqs::Clients::from_env())
    }

    /// With a given SDK configuration (tests point it at a local ECR API).
    pub fn new(config: aws_config::SdkConfig) -> Self {
        Self::with_clients(faas_sqs::Clients::new(config))
    }

    fn with_clients(clients: faas_sqs::Clients) -> Self {
        EcrLogin {
            clients,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    async fn login(&self, registry: &str) -> Result<Credentials, OciError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if let Some((username, password, _)) = self
            .tokens
            .lock()
            .ok()
            .and_then(|tokens| tokens.get(registry).cloned())
            .filter(|(_, _, expires)| fresh(*expires, now))
        {
            return Ok(Credentials::Basic { username, password });
        }
        let fail = |why: String| OciError::Credentials {
            registry: registry.to_owned(),
            why: format!("ECR login with the pod's IAM role: {why}"),
        };
        let config = self
            .clients
            .sdk_config()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut ecr = aws_sdk_ecr::config::Builder::from(&config);
        // A token is for the registries of one region (any the role may read there): an ECR
        // host names its region; another host mapped to `ecr-login` gets the configured one.
        if let Some((_, region)) = faas_oci::auth::ecr_host_parts(registry) {
            ecr = ecr.region(aws_config::Region::new(region.to_owned()));
        }
        let answer = aws_sdk_ecr::Client::from_conf(ecr.build())
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| fail(format!("GetAuthorizationToken: {}", DisplayErrorContext(e))))?;
        let data = answer
            .authorization_data()
            .first()
            .ok_or_else(|| fail("GetAuthorizationToken returned no authorization data".into()))?;
        let (username, password) = decode(data.authorization_token().unwrap_or_default())
            .ok_or_else(|| fail("the authorization token is not base64 of user:password".into()))?;
        let expires = data.expires_at().map(|t| t.secs()).unwrap_or(now);
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(
                registry.to_owned(),
                (username.clone(), password.clone(), expires),
            );
        }
        tracing::debug!(registry, expires, "ECR login");
        Ok(Credentials::Basic { username, password })
    }
}

impl Helper for EcrLogin {
    fn get<'a>(
        &'a self,
        registry: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Credentials, OciError>> + Send + 'a>> {
        Box::pin(self.login(registry))
    }
}

/// Whether a token expiring at `expires` may still be used at `now` (Unix seconds).
fn fresh(expires: i64, now: i64) -> bool {
    expires - now > RENEW_BEFORE_SECS
}

/// ECR's token: base64 of `AWS:<password>`.
fn decode(token: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_kept_until_shortly_before_they_expire() {
        assert!(fresh(10_000, 10_000 - RENEW_BEFORE_SECS - 1));
        assert!(!fresh(10_000, 10_000 - RENEW_BEFORE_SECS));
        assert!(!fresh(10_000, 20_000));
    }

    #[test]
    fn tokens_decode_to_user_and_password() {
        assert_eq!(
            decode("QVdTOnNlY3JldDpwYXJ0"),
            Some(("AWS".to_owned(), "secret:part".to_owned()))
        );
        assert_eq!(decode("not base64!"), None);
        assert_eq!(decode("bm9jb2xvbg=="), None);
    }
}
