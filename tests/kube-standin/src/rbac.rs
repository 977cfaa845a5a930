//! Authorization of impersonated requests by the stored RBAC objects: a request carrying
//! `Impersonate-User` (kube-rs and client-go send it for a kubeconfig user with `as:`) is
//! allowed exactly when a Role or ClusterRole bound to that user (or to one of its groups)
//! has a rule for its verb, API group, resource (with its subresource, `pods/log`) and, where
//! the rule names some, the object's name. Requests without it are allowed, as the cluster
//! admin's are.
//!
//! So the kubelet stand-in can run each pod as its ServiceAccount
//! (`system:serviceaccount:<namespace>:<name>`, groups `system:serviceaccounts`,
//! `system:serviceaccounts:<namespace>` and `system:authenticated`) and a permission the
//! chart or the controller forgot, or granted too widely, shows up as a 403.
//!
//! Not emulated: aggregated ClusterRoles (`aggregationRule`), `nonResourceURLs` (discovery
//! and health paths are open to all), the `escalate`/`bind`/`impersonate` verbs (any
//! impersonation is accepted; a Role may grant what its writer lacks), and the default roles
//! of a cluster (only stored objects count).

use serde_json::Value;

use crate::error::ApiError;
use crate::store::Store;

/// Who an impersonated request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub user: String,
    pub groups: Vec<String>,
}

impl Subject {
    /// The user named by `Impersonate-User` and its groups: a ServiceAccount's implied ones
    /// plus `extra` (`Impersonate-Group`).
    pub fn impersonated(user: &str, extra: Vec<String>) -> Self {
        let mut groups = vec!["system:authenticated".to_owned()];
        if let Some(namespace) = service_account(user).map(|(ns, _)| ns) {
            groups.push("system:serviceaccounts".to_owned());
            groups.push(format!("system:serviceaccounts:{namespace}"));
        }
        groups.extend(extra);
        Subject {
            user: user.to_owned(),
            groups,
        }
    }
}

/// `(namespace, name)` of a `system:serviceaccount:<namespace>:<name>` user.
fn service_account(user: &str) -> Option<(&str, &str)> {
    user.strip_prefix("system:serviceaccount:")?.split_once(':')
}

/// What a request does, as RBAC sees it.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    /// The plural, with `/subresource` when there is one.
    pub resource: &'a str,
    /// `""` for cluster-scoped resources and all-namespace lists.
    pub namespace: &'a str,
    /// `""` for collections.
    pub name: &'a str,
}

/// Allows the request, or refuses it as the API server does (403 Forbidden).
pub fn authorize(store: &Store, who: &Subject, what: &Attributes<'_>) -> Result<(), ApiError> {
    if allows(store, who, what) {
        return Ok(());
    }
    let object = if what.name.is_empty() {
        String::new()
    } else {
        format!("{} {:?} is forbidden: ", what.resource, what.name)
    };
    let scope = if what.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace {:?}", what.namespace)
    };
    Err(ApiError::forbidden(format!(
        "{object}User {:?} cannot {} resource {:?} in API group {:?} {scope}",
        who.user, what.verb, what.resource, what.group
    )))
}

fn allows(store: &Store, who: &Subject, what: &Attributes<'_>) -> bool {
    let bound = |binding: &Value| {
        binding["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| names(who, s, binding))
    };
    let rbac = |plural: &str| (String::from("rbac.authorization.k8s.io"), plural.to_owned());
    // ClusterRoleBindings grant everywhere.
    let cluster = store
        .objects_of(&rbac("clusterrolebindings"), None)
        .into_iter()
        .filter(bound)
        .filter_map(|b| role_of(store, &b, ""));
    // RoleBindings grant in their namespace (a Role of it, or a ClusterRole's rules there).
    let local_bindings = if what.namespace.is_empty() {
        Vec::new()
    } else {
        store.objects_of(&rbac("rolebindings"), Some(what.namespace))
    };
    let local = local_bindings
        .into_iter()
        .filter(bound)
        .filter_map(|b| role_of(store, &b, what.namespace));
    cluster.chain(local).any(|role| {
        role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| rule_allows(r, what))
    })
}

/// Whether `subject` of `binding` is `who`.
fn names(who: &Subject, subject: &Value, binding: &Value) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str() {
        Some("ServiceAccount") => {
            // A RoleBinding's ServiceAccount subject without a namespace is in the binding's.
            let namespace = subject["namespace"]
                .as_str()
                .or_else(|| binding["metadata"]["namespace"].as_str())
                .unwrap_or_default();
            service_account(&who.user) == Some((namespace, name))
        }
        Some("User") => who.user == name,
        Some("Group") => who.groups.iter().any(|g| g == name),
        _ => false,
    }
}

/// The Role or ClusterRole `binding` refers to (a Role only in `namespace`).
fn role_of(store: &Store, binding: &Value, namespace: &str) -> Option<Value> {
    let name = binding["roleRef"]["name"].as_str()?;
    let group = String::from("rbac.authorization.k8s.io");
    match binding["roleRef"]["kind"].as_str()? {
        "ClusterRole" => store.object(&(group, "clusterroles".to_owned()), "", name),
        "Role" if !namespace.is_empty() => {
            store.object(&(group, "roles".to_owned()), namespace, name)
        }
        _ => None,
    }
}

fn rule_allows(rule: &Value, what: &Attributes<'_>) -> bool {
    let has = |field: &str, wanted: &str| {
        rule[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|v| v == "*" || v == wanted)
    };
    // An absent or empty `resourceNames` means every name; naming some, a collection
    // request (list, watch, create without a name) matches none of them.
    let names_ok = match rule["resourceNames"].as_array() {
        None => true,
        Some(names) if names.is_empty() => true,
        Some(names) => !what.name.is_empty() && names.iter().any(|n| n.as_str() == Some(what.name)),
    };
    has("verbs", what.verb)
        && has("apiGroups", what.group)
        && has("resources", what.resource)
        && names_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store_with(objects: &[Value]) -> Store {
        let mut store = Store::new(100, 16);
        for o in objects {
            let plural = match o["kind"].as_str() {
                Some("Role") => "roles",
                Some("RoleBinding") => "rolebindings",
                Some("ClusterRole") => "clusterroles",
                _ => "clusterrolebindings",
            };
            let res = store
                .registry()
                .find("rbac.authorization.k8s.io", "v1", plural)
                .cloned()
                .expect("a built-in resource");
            let ns = o["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            store.create(&res, "v1", &ns, o.clone()).expect("created");
        }
        store
    }

    fn token_for<'a>(namespace: &'a str, name: &'a str) -> Attributes<'a> {
        Attributes {
            verb: "create",
            group: "",
            resource: "serviceaccounts/token",
            namespace,
            name,
        }
    }

    #[test]
    fn a_role_naming_service_accounts_allows_their_tokens_and_no_others() {
        let store = store_with(&[
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "pool-default-tokens", "namespace": "team-a"},
                   "rules": [{"apiGroups": [""], "resources": ["serviceaccounts/token"],
                              "verbs": ["create"], "resourceNames": ["fn-orders"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "pool-default-tokens", "namespace": "team-a"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": "pool-default-tokens"},
                   "subjects": [{"kind": "ServiceAccount", "name": "pool-default",
                                 "namespace": "team-a"}]}),
        ]);
        let pool = Subject::impersonated("system:serviceaccount:team-a:pool-default", vec![]);
        assert!(authorize(&store, &pool, &token_for("team-a", "fn-orders")).is_ok());
        let refused =
            authorize(&store, &pool, &token_for("team-a", "fn-billing")).expect_err("not named");
        assert_eq!((refused.code, refused.reason), (403, "Forbidden"));
        assert!(
            refused
                .message
                .contains("serviceaccounts/token \"fn-billing\" is forbidden")
                && refused
                    .message
                    .contains("system:serviceaccount:team-a:pool-default"),
            "{}",
            refused.message
        );
        // Same names in another namespace, another pool's account, another verb: refused.
        assert!(authorize(&store, &pool, &token_for("team-b", "fn-orders")).is_err());
        let other = Subject::impersonated("system:serviceaccount:team-a:pool-p1", vec![]);
        assert!(authorize(&store, &other, &token_for("team-a", "fn-orders")).is_err());
        let get = Attributes {
            verb: "get",
            resource: "serviceaccounts",
            ..token_for("team-a", "fn-orders")
        };
        assert!(authorize(&store, &pool, &get).is_err());
    }

    #[test]
    fn an_empty_rule_list_grants_nothing_and_cluster_roles_grant_by_binding_scope() {
        let store = store_with(&[
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "pool-default-tokens", "namespace": "team-a"},
                   "rules": []}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "pool-default-tokens", "namespace": "team-a"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": "pool-default-tokens"},
                   "subjects": [{"kind": "ServiceAccount", "name": "pool-default"}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "reader"},
                   "rules": [{"apiGroups": ["faas.dev"], "resources": ["functions"],
                              "verbs": ["get", "list", "watch"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "reader", "namespace": "team-a"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "reader"},
                   "subjects": [{"kind": "Group", "name": "system:serviceaccounts:team-a"}]}),
        ]);
        let pool = Subject::impersonated("system:serviceaccount:team-a:pool-default", vec![]);
        assert!(authorize(&store, &pool, &token_for("team-a", "fn-orders")).is_err());
        let list = |namespace| Attributes {
            verb: "list",
            group: "faas.dev",
            resource: "functions",
            namespace,
            name: "",
        };
        assert!(
            authorize(&store, &pool, &list("team-a")).is_ok(),
            "by its group, in team-a"
        );
        assert!(
            authorize(&store, &pool, &list("team-b")).is_err(),
            "a RoleBinding is local"
        );
        assert!(
            authorize(&store, &pool, &list("")).is_err(),
            "and never cluster-wide"
        );
    }
}
