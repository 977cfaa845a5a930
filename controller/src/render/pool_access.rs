//! What a pool's pods may do with their members' identities and secrets, and nothing more:
//! request ServiceAccount tokens (`serviceaccounts/token`, create) for exactly the members
//! that have an IAM role, which they exchange with STS for that role
//! (`gateway/src/identity.rs`), and read exactly the Secrets the members name in `spec.env`
//! (`gateway/src/secrets.rs`). One Role per pool, `pool-<pool>-members`, bound to the pool's
//! ServiceAccount and rendered again whenever its members change, so a function that leaves
//! a pool (or drops its role or a Secret) is no longer reachable from the pods it left.
//!
//! Why not one rule for every function of the namespace: a pod compromised through one
//! guest gets the roles and Secrets of its pool's members, never another pool's; and a token
//! of `fn-x` is `fn-x`'s IAM role wherever a trust policy names it.

use faas_api::{Function, contract};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::pool::{Pool, pool_labels};

/// The Role and RoleBinding that let `pool`'s pods request tokens of `members`' ServiceAccounts
/// (those with an IAM role) and read the Secrets they name (the admitted members only: a
/// label makes no member).
pub fn pool_member_access(pool: &Pool, members: &[&Function]) -> (Role, RoleBinding) {
    let name = contract::pool_member_access_object(&pool.name);
    let mut accounts: Vec<String> = members
        .iter()
        .filter(|f| f.spec.iam.is_some())
        .filter_map(|f| f.metadata.name.as_deref())
        .map(contract::function_object)
        .collect();
    accounts.sort();
    accounts.dedup();
    let meta = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(pool.key.namespace.clone()),
        labels: Some(pool_labels(pool)),
        ..ObjectMeta::default()
    };
    let mut secrets: Vec<String> = members
        .iter()
        .flat_map(|f| f.spec.env.secrets())
        .filter_map(|(_, source)| match source {
            faas_api::SecretRef::Kubernetes(secret) => Some(secret.name),
            _ => None,
        })
        .collect();
    secrets.sort();
    secrets.dedup();
    // An empty `resourceNames` would mean every name: a rule is there only with names.
    let rule = |resource: &str, verb: &str, names: Vec<String>| {
        (!names.is_empty()).then(|| PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec![resource.to_owned()]),
            verbs: vec![verb.to_owned()],
            resource_names: Some(names),
            ..PolicyRule::default()
        })
    };
    let role = Role {
        metadata: meta.clone(),
        rules: Some(
            [
                rule("serviceaccounts/token", "create", accounts),
                rule("secrets", "get", secrets),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ),
    };
    let binding = RoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name,
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: pool.object_name(),
            namespace: Some(pool.key.namespace.clone()),
            ..Subject::default()
        }]),
    };
    (role, binding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::{FunctionSpec, IamSpec};

    fn member(name: &str, role: Option<&str>) -> Function {
        let mut f = Function::new(name, FunctionSpec::default());
        f.metadata.namespace = Some("team-a".into());
        f.spec.iam = role.map(|r| IamSpec {
            role_arn: r.to_owned(),
        });
        f
    }

    #[test]
    fn the_pool_may_request_tokens_of_its_members_with_a_role_and_no_one_else() {
        let pool = super::super::pool::pool_of(&member("orders", None));
        let orders = member("orders", Some("arn:aws:iam::123456789012:role/orders"));
        let billing = member("billing", Some("arn:aws:iam::123456789012:role/billing"));
        let plain = member("plain", None);
        let (role, binding) = pool_member_access(&pool, &[&orders, &plain, &billing]);
        assert_eq!(role.metadata.name.as_deref(), Some("pool-default-members"));
        assert_eq!(role.metadata.namespace.as_deref(), Some("team-a"));
        let rules = role.rules.expect("rules");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].api_groups, Some(vec![String::new()]));
        assert_eq!(
            rules[0].resources,
            Some(vec!["serviceaccounts/token".to_owned()])
        );
        assert_eq!(rules[0].verbs, ["create"]);
        assert_eq!(
            rules[0].resource_names,
            Some(vec!["fn-billing".to_owned(), "fn-orders".to_owned()]),
            "sorted, so an unchanged pool applies an unchanged Role"
        );
        assert_eq!(
            binding.metadata.name.as_deref(),
            Some("pool-default-members")
        );
        assert_eq!(binding.role_ref.kind, "Role");
        assert_eq!(binding.role_ref.name, "pool-default-members");
        let subjects = binding.subjects.expect("subjects");
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, "pool-default");
        assert_eq!(subjects[0].namespace.as_deref(), Some("team-a"));
    }

    #[test]
    fn the_pool_may_read_the_secrets_its_members_name_and_no_others() {
        let mut orders = member("orders", None);
        orders.spec.env = serde_json::from_value(serde_json::json!([
            {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "DB_USER", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}},
            {"name": "API", "valueFrom": {"ssmParameter": {"name": "/shop/api"}}},
        ]))
        .expect("env");
        let mut billing = member("billing", None);
        billing.spec.env = serde_json::from_value(serde_json::json!([
            {"name": "STRIPE", "valueFrom": {"secretKeyRef": {"name": "stripe", "key": "key"}}},
        ]))
        .expect("env");
        let pool = super::super::pool::pool_of(&orders);
        let (role, _) = pool_member_access(&pool, &[&orders, &billing]);
        let rules = role.rules.expect("rules");
        assert_eq!(rules.len(), 1, "no token rule: no member has a role");
        assert_eq!(rules[0].resources, Some(vec!["secrets".to_owned()]));
        assert_eq!(rules[0].verbs, ["get"]);
        assert_eq!(
            rules[0].resource_names,
            Some(vec!["db".to_owned(), "stripe".to_owned()]),
            "each Secret once; SSM is read with the function's role, not here"
        );
    }

    #[test]
    fn without_a_member_with_a_role_the_role_grants_nothing() {
        // `resourceNames: []` would grant every ServiceAccount of the namespace.
        let plain = member("plain", None);
        let pool = super::super::pool::pool_of(&plain);
        let (role, _) = pool_member_access(&pool, &[&plain]);
        assert_eq!(role.rules, Some(vec![]));
        let (role, _) = pool_member_access(&pool, &[]);
        assert_eq!(role.rules, Some(vec![]));
    }
}
