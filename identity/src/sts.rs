//! Where a function's credentials come from: STS, into the function's role.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_sts::error::DisplayErrorContext;

use crate::AwsCredentials;

/// A boxed future (the sources are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How long the credentials asked for last: an hour, what Lambda's last too.
const SESSION_SECONDS: i32 = 3600;

/// Why a role could not be assumed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// STS refused or failed (a trust policy that does not name the caller, a role that does
    /// not exist, no permission to assume it, STS unreachable).
    #[error("cannot assume role {role_arn}: {message}")]
    Sts { role_arn: String, message: String },
    /// No token for the function's ServiceAccount (the pool's RBAC, the API unreachable).
    #[error("no web identity token for role {role_arn}: {message}")]
    Token { role_arn: String, message: String },
    /// STS answered without credentials.
    #[error("STS gave no credentials for role {role_arn}")]
    NoCredentials { role_arn: String },
}

/// Fetches fresh credentials for one role.
pub trait RoleSource: Send + Sync + 'static {
    /// The role.
    fn role_arn(&self) -> &str;
    /// New credentials for it.
    fn fetch(&self) -> BoxFuture<'_, Result<AwsCredentials, IdentityError>>;
}

/// A web identity token of the function's ServiceAccount (audience `sts.amazonaws.com`).
pub trait TokenSource: Send + Sync + 'static {
    fn token(&self) -> BoxFuture<'_, Result<String, String>>;
}

/// A role session name STS accepts (`[\w+=,.@-]`, 2 to 64 characters) that says whose
/// session it is: `faas-<namespace>-<function>` (CloudTrail shows it beside every call).
pub fn session_name(namespace: Option<&str>, function: &str) -> String {
    let raw = match namespace {
        Some(ns) if !ns.is_empty() => format!("faas-{ns}-{function}"),
        _ => format!("faas-{function}"),
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

/// A role that cannot be assumed from here at all (no credentials to call STS with): every
/// fetch says why, so the function's status does.
pub struct Unavailable {
    role_arn: String,
    why: String,
}

impl Unavailable {
    pub fn new(role_arn: String, why: String) -> Self {
        Unavailable { role_arn, why }
    }
}

impl RoleSource for Unavailable {
    fn role_arn(&self) -> &str {
        &self.role_arn
    }

    fn fetch(&self) -> BoxFuture<'_, Result<AwsCredentials, IdentityError>> {
        Box::pin(async move {
            Err(IdentityError::Sts {
                role_arn: self.role_arn.clone(),
                message: self.why.clone(),
            })
        })
    }
}

/// STS `AssumeRole` with the caller's own credentials (local mode: the developer's chain).
pub struct AssumeRole {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    session_name: String,
}

impl AssumeRole {
    pub fn new(sts: aws_sdk_sts::Client, role_arn: String, session_name: String) -> Self {
        AssumeRole {
            sts,
            role_arn,
            session_name,
        }
    }
}

impl RoleSource for AssumeRole {
    fn role_arn(&self) -> &str {
        &self.role_arn
    }

    fn fetch(&self) -> BoxFuture<'_, Result<AwsCredentials, IdentityError>> {
        Box::pin(async move {
            let output = self
                .sts
                .assume_role()
                .role_arn(&self.role_arn)
                .role_session_name(&self.session_name)
                .duration_seconds(SESSION_SECONDS)
                .send()
                .await
                .map_err(|e| IdentityError::Sts {
                    role_arn: self.role_arn.clone(),
                    message: DisplayErrorContext(&e).to_string(),
                })?;
            credentials_of(&self.sts, &self.role_arn, output.credentials())
        })
    }
}

/// STS `AssumeRoleWithWebIdentity` with a token of the function's ServiceAccount: what IRSA
/// does for a pod, done by the pool pod for each member function.
pub struct WebIdentity {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    session_name: String,
    token: Arc<dyn TokenSource>,
}

impl WebIdentity {
    pub fn new(
        sts: aws_sdk_sts::Client,
        role_arn: String,
        session_name: String,
        token: Arc<dyn TokenSource>,
    ) -> Self {
        WebIdentity {
            sts,
            role_arn,
            session_name,
            token,
        }
    }
}

impl RoleSource for WebIdentity {
    fn role_arn(&self) -> &str {
        &self.role_arn
    }

    fn fetch(&self) -> BoxFuture<'_, Result<AwsCredentials, IdentityError>> {
        Box::pin(async move {
            let token = self
                .token
                .token()
                .await
                .map_err(|message| IdentityError::Token {
                    role_arn: self.role_arn.clone(),
                    message,
                })?;
            let output = self
                .sts
                .assume_role_with_web_identity()
                .role_arn(&self.role_arn)
                .role_session_name(&self.session_name)
                .web_identity_token(token)
                .duration_seconds(SESSION_SECONDS)
                .send()
                .await
                .map_err(|e| IdentityError::Sts {
                    role_arn: self.role_arn.clone(),
                    message: DisplayErrorContext(&e).to_string(),
                })?;
            credentials_of(&self.sts, &self.role_arn, output.credentials())
        })
    }
}

fn credentials_of(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    given: Option<&aws_sdk_sts::types::Credentials>,
) -> Result<AwsCredentials, IdentityError> {
    let given = given.ok_or_else(|| IdentityError::NoCredentials {
        role_arn: role_arn.to_owned(),
    })?;
    Ok(AwsCredentials {
        access_key_id: given.access_key_id().to_owned(),
        secret_access_key: given.secret_access_key().to_owned(),
        session_token: given.session_token().to_owned(),
        expiration: SystemTime::try_from(*given.expiration()).unwrap_or(SystemTime::UNIX_EPOCH),
        region: sts.config().region().map(|r| r.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_say_whose_and_are_what_sts_accepts() {
        assert_eq!(session_name(Some("team-a"), "orders"), "faas-team-a-orders");
        assert_eq!(session_name(None, "orders"), "faas-orders");
        assert_eq!(session_name(Some(""), "a b/c"), "faas-a-b-c");
        let long = session_name(Some(&"n".repeat(63)), &"f".repeat(63));
        assert_eq!(long.len(), 64);
    }
}
