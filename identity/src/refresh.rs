//! A function's credentials kept fresh in the background, read at each invocation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use faas_api::backoff::Backoff;
use tokio::sync::watch;

use crate::{AwsCredentials, RoleSource};

/// Credentials are renewed this long before they expire (the AWS SDKs' own margin), or
/// halfway through a shorter session.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The first retry after a failure, doubled up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(5 * 60);

/// How long to wait at `now` before renewing credentials that expire at `expiration`.
pub fn refresh_in(now: SystemTime, expiration: SystemTime) -> Duration {
    let left = expiration.duration_since(now).unwrap_or_default();
    left.saturating_sub(REFRESH_MARGIN.min(left / 2))
}

/// What [`FunctionIdentity::status`] says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityStatus {
    /// The role.
    pub role_arn: String,
    /// Whether invocations get credentials now.
    pub ready: bool,
    /// When the credentials they get expire.
    pub expiration: Option<SystemTime>,
    /// Why the last attempt to assume the role failed, until one succeeds.
    pub error: Option<String>,
}

#[derive(Default)]
struct State {
    credentials: Option<Arc<AwsCredentials>>,
    error: Option<String>,
}

/// One function's identity: its role's credentials, renewed in the background while it
/// lives (dropping it stops the renewals).
pub struct FunctionIdentity {
    role_arn: String,
    state: watch::Receiver<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FunctionIdentity {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FunctionIdentity {
    /// Starts fetching credentials from `source` (on the current Tokio runtime).
    pub fn start(source: Arc<dyn RoleSource>) -> Self {
        let (publish, state) = watch::channel(State::default());
        let role_arn = source.role_arn().to_owned();
        let task = tokio::spawn(renew(source, publish));
        FunctionIdentity {
            role_arn,
            state,
            task,
        }
    }

    /// The credentials an invocation gets now: none before the first fetch, after a failure
    /// with nothing fetched, or once they expired.
    pub fn current(&self) -> Option<Arc<AwsCredentials>> {
        self.state
            .borrow()
            .credentials
            .clone()
            .filter(|c| c.valid_at(SystemTime::now()))
    }

    /// Whether it has credentials, and why not.
    pub fn status(&self) -> IdentityStatus {
        let state = self.state.borrow();
        let valid = state
            .credentials
            .as_ref()
            .filter(|c| c.valid_at(SystemTime::now()));
        IdentityStatus {
            role_arn: self.role_arn.clone(),
            ready: valid.is_some(),
            expiration: valid.map(|c| c.expiration),
            error: state.error.clone(),
        }
    }

    /// Why there are no credentials now, naming the role: the last error, or that none were
    /// fetched yet.
    pub fn why_none(&self) -> String {
        let error = self.state.borrow().error.clone();
        format!(
            "the function's role {} cannot be assumed: {}",
            self.role_arn,
            error.as_deref().unwrap_or("no credentials fetched yet")
        )
    }

    /// Waits until the first attempt ended (credentials, or an error), at most `limit`: a
    /// function's first invocation after it loaded should not run without its identity for
    /// want of a few milliseconds.
    pub async fn settled(&self, limit: Duration) {
        let mut state = self.state.clone();
        let _ = tokio::time::timeout(
            limit,
            state.wait_for(|s| s.credentials.is_some() || s.error.is_some()),
        )
        .await;
    }
}

impl faas_invoke::InvocationEnv for FunctionIdentity {
    fn each(&self, put: &mut dyn FnMut(&str, &str)) {
        let state = self.state.borrow();
        if let Some(credentials) = state
            .credentials
            .as_ref()
            .filter(|c| c.valid_at(SystemTime::now()))
        {
            credentials.each_env(put);
        }
    }

    fn problem(&self) -> Option<faas_invoke::Degradation> {
        let error = self.state.borrow().error.clone()?;
        Some(faas_invoke::Degradation::identity_unavailable(error))
    }
}

async fn renew(source: Arc<dyn RoleSource>, publish: watch::Sender<State>) {
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
    loop {
        let wait = match source.fetch().await {
            Ok(credentials) => {
                backoff.reset();
                let wait = refresh_in(SystemTime::now(), credentials.expiration);
                tracing::debug!(role = source.role_arn(), renew_in = ?wait, "function credentials fetched");
                publish.send_replace(State {
                    credentials: Some(Arc::new(credentials)),
                    error: None,
                });
                wait
            }
            Err(e) => {
                let wait = backoff.fail();
                tracing::warn!(role = source.role_arn(), error = %e, retry_in = ?wait, "cannot assume the function's role");
                // Credentials still valid stay in use until they expire.
                publish.send_modify(|s| s.error = Some(e.to_string()));
                wait
            }
        };
        tokio::time::sleep(wait.max(RETRY_FIRST)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{IdentityError, sts::BoxFuture};
    use faas_invoke::InvocationEnv as _;
    use std::sync::Mutex;

    #[test]
    fn renewal_comes_five_minutes_early_or_halfway_through_a_short_session() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = now + Duration::from_secs(3600);
        assert_eq!(refresh_in(now, hour), Duration::from_secs(3300));
        assert_eq!(
            refresh_in(now, now + Duration::from_secs(240)),
            Duration::from_secs(120)
        );
        assert_eq!(
            refresh_in(now, now - Duration::from_secs(1)),
            Duration::ZERO
        );
    }

    /// Answers from a script: each fetch takes the next entry (the last one repeats).
    struct Scripted {
        answers: Mutex<Vec<Result<Duration, &'static str>>>,
        fetches: Mutex<u32>,
    }

    impl RoleSource for Scripted {
        fn role_arn(&self) -> &str {
            "arn:aws:iam::123456789012:role/orders"
        }

        fn fetch(&self) -> BoxFuture<'_, Result<AwsCredentials, IdentityError>> {
            Box::pin(async move {
                let mut fetches = self.fetches.lock().unwrap();
                *fetches += 1;
                let mut answers = self.answers.lock().unwrap();
                let answer = if answers.len() > 1 {
                    answers.remove(0)
                } else {
                    answers[0]
                };
                match answer {
                    Ok(lasting) => Ok(AwsCredentials {
                        access_key_id: format!("ASIA{fetches}"),
                        secret_access_key: "secret".into(),
                        session_token: "token".into(),
                        expiration: SystemTime::now() + lasting,
                        region: None,
                    }),
                    Err(message) => Err(IdentityError::Sts {
                        role_arn: self.role_arn().into(),
                        message: message.into(),
                    }),
                }
            })
        }
    }

    fn key_of(identity: &FunctionIdentity) -> Option<String> {
        let mut key = None;
        identity.each(&mut |k, v| {
            if k == "AWS_ACCESS_KEY_ID" {
                key = Some(v.to_owned());
            }
        });
        key
    }

    #[tokio::test(start_paused = true)]
    async fn credentials_are_renewed_before_they_expire_and_a_failure_is_retried_and_said() {
        let source = Arc::new(Scripted {
            answers: Mutex::new(vec![
                Ok(Duration::from_secs(3600)),
                Err("AccessDenied: not authorized to perform sts:AssumeRole"),
                Ok(Duration::from_secs(3600)),
            ]),
            fetches: Mutex::new(0),
        });
        let identity = FunctionIdentity::start(source.clone());
        identity.settled(Duration::from_secs(5)).await;
        assert_eq!(key_of(&identity).as_deref(), Some("ASIA1"));
        assert!(identity.status().ready);
        // (Paused time moves the renewal's sleep, not the wall clock its expiry is read from:
        // the first renewal is 55 minutes in.)
        tokio::time::sleep(Duration::from_secs(3300 + 1)).await;
        assert_eq!(*source.fetches.lock().unwrap(), 2);
        // The renewal failed: the credentials still valid stay, and the status says why.
        let status = identity.status();
        assert!(status.ready);
        assert!(
            status.error.as_deref().unwrap().contains("AccessDenied"),
            "{status:?}"
        );
        assert_eq!(key_of(&identity).as_deref(), Some("ASIA1"));
        // Retried after the first backoff, and the error is gone.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(*source.fetches.lock().unwrap(), 3);
        assert_eq!(key_of(&identity).as_deref(), Some("ASIA3"));
        assert_eq!(identity.status().error, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_role_that_cannot_be_assumed_gives_no_credentials_and_says_why() {
        let source = Arc::new(Scripted {
            answers: Mutex::new(vec![Err("AccessDenied: trust policy")]),
            fetches: Mutex::new(0),
        });
        let identity = FunctionIdentity::start(source.clone());
        identity.settled(Duration::from_secs(5)).await;
        assert_eq!(key_of(&identity), None);
        let status = identity.status();
        assert!(!status.ready);
        assert!(status.error.unwrap().contains("trust policy"));
        // Backing off: 1 s, 2 s, 4 s... not a tight loop.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let fetches = *source.fetches.lock().unwrap();
        assert!((5..=8).contains(&fetches), "{fetches}");
        drop(identity);
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(
            *source.fetches.lock().unwrap(),
            fetches,
            "stopped when dropped"
        );
    }
}
