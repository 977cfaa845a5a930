//! A WASM function's own AWS identity in a shared pool: its pool pod requests a token of the
//! function's ServiceAccount and exchanges it with STS for the function's role, so the guest
//! holds that role's credentials and STS says so; a function without a role holds none; and
//! the pool's pods may request the tokens of their own members with a role, no one else's
//! (the cluster's RBAC refuses the rest).

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::Value;

use super::{Cluster, answered, deploy_wasm, object, until};
use crate::aws::{assumed_role_arn, aws_variables, caller_of};

/// Whether `client` may request a token of ServiceAccount `namespace/account`: true when it
/// got one, false when RBAC refused (403); anything else fails the test.
async fn may_request_token(client: kube::Client, namespace: &str, account: &str) -> bool {
    let accounts: kube::Api<ServiceAccount> = kube::Api::namespaced(client, namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec![faas_api::contract::TOKEN_AUDIENCE.to_owned()]),
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    match accounts
        .create_token_request(account, &kube::api::PostParams::default(), &request)
        .await
    {
        Ok(answer) => {
            assert!(
                answer
                    .status
                    .and_then(|s| s.token)
                    .is_some_and(|t| !t.is_empty()),
                "a token for {account}"
            );
            true
        }
        Err(kube::Error::Api(status)) if status.code == 403 => false,
        Err(e) => panic!("TokenRequest for {namespace}/{account}: {e}"),
    }
}

/// The ServiceAccounts the `pool-<pool>-members` Role lets the pool request tokens of
/// (`None`: no such rule).
async fn token_names<C: Cluster>(c: &C, pool: &str) -> Option<Vec<String>> {
    let name = faas_api::contract::pool_member_access_object(pool);
    let Some(role) = object(c, "rbac.authorization.k8s.io", "roles", c.team(), &name).await else {
        let roles = super::objects(c, "rbac.authorization.k8s.io", "roles", c.team()).await;
        let names: Vec<&str> = roles
            .iter()
            .filter_map(|r| r["metadata"]["name"].as_str())
            .collect();
        panic!(
            "Role {name} exists; the namespace has {names:?}\n{}",
            c.diagnostics()
        );
    };
    let rules = role["rules"].as_array().cloned().unwrap_or_default();
    let tokens: Vec<&Value> = rules
        .iter()
        .filter(|r| r["resources"] == serde_json::json!(["serviceaccounts/token"]))
        .collect();
    assert!(tokens.len() <= 1, "{role}");
    tokens.first().map(|rule| {
        rule["resourceNames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}

/// Two functions with two roles and one without share one pool (roles do not split pools):
/// each guest holds its own role's credentials and STS says so, the role-less one holds
/// none, and the pool may request exactly its members' tokens.
pub async fn a_pooled_function_holds_its_own_role_and_its_pool_only_its_members_tokens<
    C: Cluster,
>(
    c: &C,
) {
    let roles = c.allowed_roles();
    let sts = c.aws_config().await;
    if !c.meets(
        roles.len() >= 2 && sts.is_some(),
        "two IAM roles the chart allows in the test namespace (FAAS_E2E_ROLE_ARN, \
         FAAS_E2E_SECOND_ROLE_ARN) whose trust policies admit the namespace's fn-reader and \
         fn-writer ServiceAccounts, and an STS to ask",
    ) {
        return;
    }
    let sts = sts.expect("checked");
    let team = c.team();
    let (public, _) = super::gateway(c).await;
    let members = [("reader", &roles[0]), ("writer", &roles[1])];
    for (name, role) in members {
        deploy_wasm(c, name, "hostile", &["--role-arn", role]);
    }
    deploy_wasm(c, "plain", "hostile", &[]);

    // Each its own role's credentials, as a Lambda function gets them, and STS says whose.
    for (name, role) in members {
        let env = answered(
            c,
            &format!("{name} answers"),
            &format!("{public}/function/{name}/env"),
        )
        .await;
        let held = aws_variables(&env);
        assert_eq!(
            crate::aws::names_of(&held),
            crate::aws::ROLE_VARIABLES,
            "{}",
            c.diagnostics()
        );
        assert_eq!(
            caller_of(&sts, &held).await,
            assumed_role_arn(role, &format!("faas-{team}-{name}"))
        );
    }
    // None for a function without a role, and never the pool pod's own environment.
    let env = answered(c, "plain answers", &format!("{public}/function/plain/env")).await;
    assert_eq!(aws_variables(&env), [], "no role, no credentials");

    // One pool for the three: roles do not split pools.
    let pool_of = |name: &'static str| async move {
        object(c, "faas.dev", "functions", team, name)
            .await
            .and_then(|f| f["status"]["pool"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("{name}'s pool in its status"))
    };
    let pool = pool_of("plain").await;
    assert_eq!(pool_of("reader").await, pool);
    assert_eq!(pool_of("writer").await, pool);
    // Its token Role names exactly its members with a role.
    assert_eq!(
        token_names(c, &pool).await,
        Some(vec!["fn-reader".to_owned(), "fn-writer".to_owned()])
    );
    // And the cluster holds it to that: as the pool's ServiceAccount, only those tokens.
    let as_pool = || {
        let user = format!(
            "system:serviceaccount:{team}:{}",
            faas_api::contract::pool_object(&pool)
        );
        async move { c.client_as(&user).await }
    };
    assert!(may_request_token(as_pool().await, team, "fn-reader").await);
    assert!(may_request_token(as_pool().await, team, "fn-writer").await);
    assert!(!may_request_token(as_pool().await, team, "fn-plain").await);

    // The role leaves reader: so do its credentials and its pool's right to its token.
    // (A merge patch, as `kubectl edit` would send: the API stand-in's server-side apply never
    // removes a field an earlier apply set, so a `faas deploy` without `--role-arn` cannot.)
    let functions: kube::Api<faas_api::Function> = kube::Api::namespaced(c.client(), team);
    functions
        .patch(
            "reader",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"iam": null}})),
        )
        .await
        .expect("remove reader's role");
    until(
        c,
        "reader runs without its role",
        Duration::from_secs(60),
        || async {
            let (status, env) = super::get(&format!("{public}/function/reader/env")).await;
            (status == 200 && aws_variables(&env).is_empty()).then_some(())
        },
    )
    .await;
    assert_eq!(pool_of("reader").await, pool, "still in the same pool");
    until(
        c,
        "the pool may no longer request reader's token",
        Duration::from_secs(30),
        || async {
            (token_names(c, &pool).await == Some(vec!["fn-writer".to_owned()])).then_some(())
        },
    )
    .await;
    assert!(!may_request_token(as_pool().await, team, "fn-reader").await);
    assert!(may_request_token(as_pool().await, team, "fn-writer").await);
}
