//! The STS sources against moto (a real STS-protocol server on loopback): the credentials a
//! function gets are its own role's, as STS itself says (`GetCallerIdentity`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use faas_identity::{
    AssumeRole, FunctionIdentity, RoleSource, TokenSource, WebIdentity, session_name,
};
use faas_invoke::InvocationEnv as _;

fn sts() -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&faas_e2e::moto::moto().sdk_config())
}

/// `GetCallerIdentity` with the credentials in `env`: whose they are.
async fn caller_of(env: &[(String, String)]) -> String {
    faas_e2e::aws::caller_of(&faas_e2e::moto::moto().sdk_config(), env).await
}

fn env_of(identity: &FunctionIdentity) -> Vec<(String, String)> {
    let mut env = Vec::new();
    identity.each(&mut |k, v| env.push((k.to_owned(), v.to_owned())));
    env
}

#[tokio::test]
async fn assume_role_gives_the_function_its_own_roles_credentials() {
    let role = "arn:aws:iam::123456789012:role/faas/team-a/orders";
    let source = AssumeRole::new(sts(), role.into(), session_name(Some("team-a"), "orders"));
    let credentials = source.fetch().await.expect("assumed");
    let lasting = credentials
        .expiration
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(lasting > Duration::from_secs(600), "{lasting:?}");
    let identity = FunctionIdentity::start(Arc::new(source));
    identity.settled(Duration::from_secs(10)).await;
    let env = env_of(&identity);
    assert_eq!(
        caller_of(&env).await,
        "arn:aws:sts::123456789012:assumed-role/orders/faas-team-a-orders"
    );
    // The region the STS client signs for is the guest's too.
    assert!(env.contains(&("AWS_REGION".into(), faas_e2e::moto::REGION.into())));
}

struct Token(&'static str);

impl TokenSource for Token {
    fn token(&self) -> faas_identity::BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            match self.0 {
                "" => Err("serviceaccounts \"fn-orders\" is forbidden: cannot create resource \"serviceaccounts/token\"".to_owned()),
                token => Ok(token.to_owned()),
            }
        })
    }
}

#[tokio::test]
async fn a_web_identity_token_is_exchanged_for_the_roles_credentials_or_the_refusal_is_said() {
    let role = "arn:aws:iam::123456789012:role/faas/team-a/billing";
    let session = session_name(Some("team-a"), "billing");
    let source = WebIdentity::new(
        sts(),
        role.into(),
        session.clone(),
        Arc::new(Token("eyJ.a.b")),
    );
    let identity = FunctionIdentity::start(Arc::new(source));
    identity.settled(Duration::from_secs(10)).await;
    assert_eq!(
        caller_of(&env_of(&identity)).await,
        "arn:aws:sts::123456789012:assumed-role/billing/faas-team-a-billing"
    );
    // No token (the pool's RBAC does not name the function): no credentials, and why.
    let refused = WebIdentity::new(sts(), role.into(), session, Arc::new(Token("")));
    let identity = FunctionIdentity::start(Arc::new(refused));
    identity.settled(Duration::from_secs(10)).await;
    assert!(env_of(&identity).is_empty());
    let status = identity.status();
    assert!(!status.ready);
    let error = status.error.unwrap();
    assert!(
        error.contains("no web identity token") && error.contains("serviceaccounts/token"),
        "{error}"
    );
}
